//! JSON bodies compared by value, differences named by JSON pointer (`/_links/participant/href`).
//!
//! Why not `json_patch::diff`: its RFC 6902 operations are meant to be applied in order, so
//! the index in a `remove` path is shifted by earlier removals and a removed value is not
//! carried at all. A report needs, for every difference, a pointer that is valid in *both*
//! documents and the values on both sides; a walk of the two (normalised) trees, carrying the
//! raw trees along for display, gives that in a few lines and skips `--ignore`d subtrees
//! without cloning the documents.

use serde_json::Value;

use super::{Change, ChangeKind, Part};

/// `--ignore` patterns: JSON pointers where `*` stands for any one segment. A pattern also
/// covers everything below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnorePatterns(Vec<Vec<String>>);

impl IgnorePatterns {
    /// Parse pointers (`/_links/*/href`); `""` (the whole document) is refused.
    pub fn parse<I, S>(patterns: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref();
            let Some(rest) = p.strip_prefix('/') else {
                return Err(format!(
                    "{p:?} is not a JSON pointer (it must start with '/', e.g. /_links/self/href)"
                ));
            };
            out.push(
                rest.split('/')
                    .map(|s| s.replace("~1", "/").replace("~0", "~"))
                    .collect(),
            );
        }
        Ok(IgnorePatterns(out))
    }

    /// Whether `path` (unescaped segments) is at or below an ignored pointer.
    pub fn covers(&self, path: &[String]) -> bool {
        self.0.iter().any(|pat| {
            pat.len() <= path.len() && pat.iter().zip(path).all(|(p, s)| p == "*" || p == s)
        })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Drop ignored members from a value (used for embedded resources of events).
    pub fn strip(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        let mut path = Vec::new();
        strip_at(self, value, &mut path);
    }
}

fn strip_at(ignore: &IgnorePatterns, value: &mut Value, path: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| {
                path.push(k.clone());
                let keep = !ignore.covers(path);
                path.pop();
                keep
            });
            for (k, v) in map.iter_mut() {
                path.push(k.clone());
                strip_at(ignore, v, path);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                strip_at(ignore, v, path);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A JSON pointer from unescaped segments.
pub fn pointer(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        out.push('/');
        out.push_str(&seg.replace('~', "~0").replace('/', "~1"));
    }
    out
}

/// Both sides of one document: the normalised tree decides, the raw tree is shown.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub norm: &'a Value,
    pub raw: &'a Value,
}

/// Compare two documents, appending a [`Change`] (part `body`, or `part` when given) per
/// difference, with `prefix` segments before every pointer.
pub fn compare(
    a: Side<'_>,
    b: Side<'_>,
    ignore: &IgnorePatterns,
    part: Part,
    prefix: &[String],
    out: &mut Vec<Change>,
) {
    let mut path = prefix.to_vec();
    walk(a, b, ignore, part, &mut path, out);
}

fn show(v: &Value) -> String {
    v.to_string()
}

fn walk(
    a: Side<'_>,
    b: Side<'_>,
    ignore: &IgnorePatterns,
    part: Part,
    path: &mut Vec<String>,
    out: &mut Vec<Change>,
) {
    if ignore.covers(path) {
        return;
    }
    match (a.norm, b.norm) {
        (Value::Object(ma), Value::Object(mb)) => {
            for (k, va) in ma {
                path.push(k.clone());
                let ra = a.raw.get(k).unwrap_or(va);
                match mb.get(k) {
                    Some(vb) => {
                        let rb = b.raw.get(k).unwrap_or(vb);
                        walk(
                            Side { norm: va, raw: ra },
                            Side { norm: vb, raw: rb },
                            ignore,
                            part,
                            path,
                            out,
                        );
                    }
                    None if !ignore.covers(path) => out.push(Change {
                        part,
                        path: pointer(path),
                        kind: ChangeKind::Removed,
                        a: Some(show(ra)),
                        b: None,
                    }),
                    None => {}
                }
                path.pop();
            }
            for (k, vb) in mb {
                if ma.contains_key(k) {
                    continue;
                }
                path.push(k.clone());
                if !ignore.covers(path) {
                    out.push(Change {
                        part,
                        path: pointer(path),
                        kind: ChangeKind::Added,
                        a: None,
                        b: Some(show(b.raw.get(k).unwrap_or(vb))),
                    });
                }
                path.pop();
            }
        }
        (Value::Array(xa), Value::Array(xb)) => {
            for i in 0..xa.len().max(xb.len()) {
                path.push(i.to_string());
                match (xa.get(i), xb.get(i)) {
                    (Some(va), Some(vb)) => walk(
                        Side {
                            norm: va,
                            raw: a.raw.get(i).unwrap_or(va),
                        },
                        Side {
                            norm: vb,
                            raw: b.raw.get(i).unwrap_or(vb),
                        },
                        ignore,
                        part,
                        path,
                        out,
                    ),
                    (Some(va), None) if !ignore.covers(path) => out.push(Change {
                        part,
                        path: pointer(path),
                        kind: ChangeKind::Removed,
                        a: Some(show(a.raw.get(i).unwrap_or(va))),
                        b: None,
                    }),
                    (None, Some(vb)) if !ignore.covers(path) => out.push(Change {
                        part,
                        path: pointer(path),
                        kind: ChangeKind::Added,
                        a: None,
                        b: Some(show(b.raw.get(i).unwrap_or(vb))),
                    }),
                    _ => {}
                }
                path.pop();
            }
        }
        (na, nb) if na == nb => {}
        _ => out.push(Change {
            part,
            path: pointer(path),
            kind: ChangeKind::Changed,
            a: Some(show(a.raw)),
            b: Some(show(b.raw)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(a: &Value, b: &Value, ignore: &[&str]) -> Vec<Change> {
        let ignore = IgnorePatterns::parse(ignore).unwrap();
        let mut out = Vec::new();
        compare(
            Side { norm: a, raw: a },
            Side { norm: b, raw: b },
            &ignore,
            Part::Body,
            &[],
            &mut out,
        );
        out
    }

    #[test]
    fn pointers_name_changes_on_both_sides() {
        let a = json!({"_links":{"participant":{"href":"/p/196"}},"x":[1,2,3],"gone":1});
        let b = json!({"_links":{"participant":{"href":"/p/197"}},"x":[1,3],"new":true});
        let got: Vec<(String, ChangeKind)> = run(&a, &b, &[])
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("/_links/participant/href".to_string(), ChangeKind::Changed),
                ("/x/1".to_string(), ChangeKind::Changed),
                ("/x/2".to_string(), ChangeKind::Removed),
                ("/gone".to_string(), ChangeKind::Removed),
                ("/new".to_string(), ChangeKind::Added),
            ]
        );
        let c = &run(&a, &b, &[])[0];
        assert_eq!(c.a.as_deref(), Some("\"/p/196\""));
    }

    #[test]
    fn ignore_patterns_with_wildcards() {
        let a = json!({"_links":{"self":{"href":"a"},"next":{"href":"b"}},"k":{"a/b":1}});
        let b = json!({"_links":{"self":{"href":"x"},"next":{"href":"y"}},"k":{"a/b":2}});
        assert!(run(&a, &b, &["/_links/*/href", "/k/a~1b"]).is_empty());
        assert_eq!(run(&a, &b, &["/_links/self"]).len(), 2);
        assert!(IgnorePatterns::parse(["nope"]).is_err());
        let mut v = a.clone();
        IgnorePatterns::parse(["/_links/*/href"])
            .unwrap()
            .strip(&mut v);
        assert_eq!(v, json!({"_links":{"self":{},"next":{}},"k":{"a/b":1}}));
    }
}
