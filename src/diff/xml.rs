//! XML bodies compared as element trees (roxmltree): names with namespaces resolved,
//! attribute order ignored, text trimmed. Children are matched by a label rather than by
//! position: `link[@rel=participant]`, `property[@name=rel]`, `propertyList[@name=x]`, else
//! the element name, with `[2]`, `[3]` … for repeats. Paths read like
//! `/resource/link[@rel=participant]/@href` and `/resource/property[@name=rel]/text()`.

use std::collections::HashMap;

use super::json::IgnorePatterns;
use super::normalize::Normalizer;
use super::{Change, ChangeKind, Part};

/// A normalised value with the raw value it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Val {
    pub norm: String,
    pub raw: String,
}

/// One element, ready to compare.
#[derive(Debug, Clone)]
pub struct Elem {
    /// Namespace URI (empty when none): part of identity, not of the displayed path.
    pub ns: String,
    /// Label among its siblings (`link[@rel=self]`), without the repeat index.
    pub label: String,
    /// Attributes sorted by display name (`href`, `{urn:x}a`).
    pub attrs: Vec<(String, Val)>,
    /// Trimmed text of the element's own text children, if any.
    pub text: Option<Val>,
    pub children: Vec<Elem>,
}

/// Parse and normalise an XML document (strings fed to `norm` in document order).
pub fn parse(text: &str, norm: &mut Normalizer) -> Option<Elem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = roxmltree::Document::parse(text).ok()?;
    Some(build(doc.root_element(), norm))
}

fn build(node: roxmltree::Node<'_, '_>, norm: &mut Normalizer) -> Elem {
    let name = node.tag_name().name().to_string();
    let rel = node.attribute("rel");
    let prop = node.attribute("name");
    let label = match (rel, prop) {
        (Some(r), _) => format!("{name}[@rel={r}]"),
        (None, Some(n)) if name == "property" || name == "propertyList" => {
            format!("{name}[@name={}]", norm.key(n))
        }
        _ => name.clone(),
    };
    let mut attrs: Vec<(String, Val)> = node
        .attributes()
        .map(|a| {
            let key = match a.namespace() {
                Some(ns) => format!("{{{ns}}}{}", a.name()),
                None => a.name().to_string(),
            };
            let v = Val {
                norm: norm.text(a.value()),
                raw: a.value().to_string(),
            };
            (key, v)
        })
        .collect();
    attrs.sort_by(|x, y| x.0.cmp(&y.0));
    let own: String = node
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect();
    let own = own.trim();
    let text = (!own.is_empty()).then(|| Val {
        norm: match (name.as_str(), prop) {
            ("property", Some(field)) => norm.field(field, own),
            _ => norm.text(own),
        },
        raw: own.to_string(),
    });
    let children = node
        .children()
        .filter(|c| c.is_element())
        .map(|c| build(c, norm))
        .collect();
    Elem {
        ns: node.tag_name().namespace().unwrap_or("").to_string(),
        label,
        attrs,
        text,
        children,
    }
}

/// Compare two documents; paths start with `/` and the root's label.
pub fn compare(a: &Elem, b: &Elem, ignore: &IgnorePatterns, out: &mut Vec<Change>) {
    if a.ns != b.ns || a.label != b.label {
        out.push(Change {
            part: Part::Body,
            path: "/".into(),
            kind: ChangeKind::Changed,
            a: Some(summary(a)),
            b: Some(summary(b)),
        });
        return;
    }
    // The root is named by its element name alone: `/resource/…`, `/events/…`.
    let root = a.label.split('[').next().unwrap_or(&a.label).to_string();
    let mut path = vec![root];
    walk(a, b, ignore, &mut path, out);
}

fn xml_path(path: &[String]) -> String {
    let mut s = String::new();
    for seg in path {
        s.push('/');
        s.push_str(seg);
    }
    s
}

fn push(
    out: &mut Vec<Change>,
    ignore: &IgnorePatterns,
    path: &[String],
    kind: ChangeKind,
    a: Option<String>,
    b: Option<String>,
) {
    if ignore.covers(path) {
        return;
    }
    out.push(Change {
        part: Part::Body,
        path: xml_path(path),
        kind,
        a,
        b,
    });
}

/// Report an attribute or text value at `path` that changed, was removed or was added.
fn compare_vals(
    a: Option<&Val>,
    b: Option<&Val>,
    ignore: &IgnorePatterns,
    path: &[String],
    out: &mut Vec<Change>,
) {
    let kind = match (a, b) {
        (Some(va), Some(vb)) if va.norm == vb.norm => return,
        (Some(_), Some(_)) => ChangeKind::Changed,
        (Some(_), None) => ChangeKind::Removed,
        (None, Some(_)) => ChangeKind::Added,
        (None, None) => return,
    };
    let raw = |v: Option<&Val>| v.map(|v| format!("{:?}", v.raw));
    push(out, ignore, path, kind, raw(a), raw(b));
}

/// A one-line picture of an element for added/removed reports.
fn summary(e: &Elem) -> String {
    let mut s = format!("<{}", e.label.split('[').next().unwrap_or(&e.label));
    for (k, v) in &e.attrs {
        s.push_str(&format!(" {k}=\"{}\"", v.raw));
    }
    match &e.text {
        Some(t) if e.children.is_empty() => s.push_str(&format!(">{}</…>", t.raw)),
        _ if e.children.is_empty() => s.push_str("/>"),
        _ => s.push_str(&format!(">…{} children</…>", e.children.len())),
    }
    s
}

/// Children keyed by (namespace, label, repeat index).
fn keyed(children: &[Elem]) -> Vec<((&str, &str, usize), &Elem)> {
    let mut counts: HashMap<(&str, &str), usize> = HashMap::new();
    children
        .iter()
        .map(|c| {
            let n = counts.entry((c.ns.as_str(), c.label.as_str())).or_insert(0);
            *n += 1;
            ((c.ns.as_str(), c.label.as_str(), *n), c)
        })
        .collect()
}

fn segment(label: &str, n: usize) -> String {
    if n == 1 {
        label.to_string()
    } else {
        format!("{label}[{n}]")
    }
}

fn walk(
    a: &Elem,
    b: &Elem,
    ignore: &IgnorePatterns,
    path: &mut Vec<String>,
    out: &mut Vec<Change>,
) {
    if ignore.covers(path) {
        return;
    }
    // Attributes (both sorted by name): merge.
    let bmap: HashMap<&str, &Val> = b.attrs.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for (k, va) in &a.attrs {
        path.push(format!("@{k}"));
        compare_vals(Some(va), bmap.get(k.as_str()).copied(), ignore, path, out);
        path.pop();
    }
    for (k, vb) in &b.attrs {
        if a.attrs.iter().any(|(ka, _)| ka == k) {
            continue;
        }
        path.push(format!("@{k}"));
        compare_vals(None, Some(vb), ignore, path, out);
        path.pop();
    }
    // Text.
    path.push("text()".into());
    compare_vals(a.text.as_ref(), b.text.as_ref(), ignore, path, out);
    path.pop();
    // Children by label.
    let ka = keyed(&a.children);
    let kb = keyed(&b.children);
    let bindex: HashMap<(&str, &str, usize), &Elem> = kb.iter().copied().collect();
    let aindex: HashMap<(&str, &str, usize), &Elem> = ka.iter().copied().collect();
    for (key, ca) in &ka {
        path.push(segment(key.1, key.2));
        match bindex.get(key) {
            Some(cb) => walk(ca, cb, ignore, path, out),
            None => push(
                out,
                ignore,
                path,
                ChangeKind::Removed,
                Some(summary(ca)),
                None,
            ),
        }
        path.pop();
    }
    for (key, cb) in &kb {
        if aindex.contains_key(key) {
            continue;
        }
        path.push(segment(key.1, key.2));
        push(
            out,
            ignore,
            path,
            ChangeKind::Added,
            None,
            Some(summary(cb)),
        );
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::normalize::NormalizeOptions;

    const A: &str = r#"<resource rel="participantMessaging" href="/x/participants/196/messaging" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="participant" href="/x/participants/196" /><property name="rel">participantMessaging</property></resource>"#;

    fn changes(a: &str, b: &str, opts: NormalizeOptions) -> Vec<Change> {
        let ea = parse(a, &mut Normalizer::new(opts, &[])).unwrap();
        let eb = parse(b, &mut Normalizer::new(opts, &[])).unwrap();
        let mut out = Vec::new();
        compare(&ea, &eb, &IgnorePatterns::default(), &mut out);
        out
    }

    #[test]
    fn attribute_order_and_prefixes_do_not_matter() {
        let b = r#"<u:resource xmlns:u="http://schemas.microsoft.com/rtc/2012/03/ucwa" href="/x/participants/196/messaging" rel="participantMessaging">
            <u:link href="/x/participants/196" rel="participant"/>
            <u:property name="rel">participantMessaging</u:property></u:resource>"#;
        assert!(changes(A, b, NormalizeOptions::none()).is_empty());
    }

    #[test]
    fn changed_link_is_named_by_rel() {
        let b = A.replace(r#"participants/196" />"#, r#"participants/197" />"#);
        let got = changes(A, &b, NormalizeOptions::none());
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].path, "/resource/link[@rel=participant]/@href");
        assert_eq!(got[0].kind, ChangeKind::Changed);
        let b = A.replace("<property name=\"rel\">participantMessaging</property>", "");
        let got = changes(A, &b, NormalizeOptions::none());
        assert_eq!(got[0].path, "/resource/property[@name=rel]");
        assert_eq!(got[0].kind, ChangeKind::Removed);
        // A different namespace is a different element.
        let b = A.replace("2012/03/ucwa", "2099/ucwa");
        assert_eq!(changes(A, &b, NormalizeOptions::none())[0].path, "/");
    }
}
