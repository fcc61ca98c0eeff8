//! A replay's report (`replay --report FILE.json`, `GET /_replay/report`) laid over the
//! session it replayed: misses with their closest recorded requests, near misses with where
//! the bodies differed, injected faults, rules that never fired, and recorded exchanges never
//! played. The structs here are this page's own reading of that JSON: every member optional
//! except the three any replay report has (`session`, `misses`, `unplayed`), unknown members
//! ignored, so reports written by older and newer versions both load.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::HtmlError;
use super::body;
use super::escape::Html;
use super::exchanges::Notes;
use super::format;
use super::timeline::Flags;

/// A replay report as the page reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplayOverlay {
    #[serde(default)]
    pub recording: String,
    pub session: String,
    #[serde(default)]
    pub recorded: Option<u64>,
    #[serde(default)]
    pub served: Option<u64>,
    #[serde(default)]
    pub played: Option<u64>,
    pub misses: Vec<Miss>,
    pub unplayed: Vec<Unplayed>,
    #[serde(default)]
    pub near_misses: Vec<NearMiss>,
    #[serde(default)]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub unfired_rules: Vec<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Miss {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub representation: String,
    pub credential: Option<String>,
    pub match_key: String,
    pub reason: String,
    pub message: String,
    pub closest: Vec<Closest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Closest {
    pub seq: Option<u64>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub differs: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Unplayed {
    pub seq: Option<u64>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub representation: String,
    pub status: Option<u16>,
    pub match_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NearMiss {
    /// The recorded exchange that answered.
    pub seq: Option<u64>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub representation: String,
    pub differences: Vec<Difference>,
    pub recorded_body: Value,
    pub received_body: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Difference {
    #[serde(rename = "where")]
    pub place: String,
    pub recorded: Value,
    pub received: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Fault {
    pub rule: Value,
    pub method: String,
    pub path: String,
    pub action: Value,
    pub seq: Option<u64>,
}

impl ReplayOverlay {
    /// Parse a report; anything that is not one is refused with what was expected.
    pub fn parse(text: &str, path: &Path) -> Result<Self, HtmlError> {
        let not = |detail: String| HtmlError::NotAReplayReport {
            path: path.to_path_buf(),
            detail,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| not(format!("not JSON ({e})")))?;
        let Value::Object(map) = &value else {
            return Err(not("not a JSON object".into()));
        };
        let missing: Vec<&str> = ["session", "misses", "unplayed"]
            .into_iter()
            .filter(|k| !map.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(not(format!("no {} member", missing.join(", "))));
        }
        serde_json::from_value(value).map_err(|e| not(e.to_string()))
    }

    /// Read and parse a report file.
    pub fn load(path: &Path) -> Result<Self, HtmlError> {
        let bytes = std::fs::read(path).map_err(|io| HtmlError::Read {
            path: path.to_path_buf(),
            io,
        })?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Self::parse(text, path),
            Err(_) => Err(HtmlError::NotAReplayReport {
                path: path.to_path_buf(),
                detail: "not JSON: not UTF-8 text".into(),
            }),
        }
    }

    /// How many findings a CI run would fail on.
    pub fn findings(&self) -> usize {
        self.misses.len() + self.near_misses.len() + self.unplayed.len() + self.unfired_rules.len()
    }

    /// What the timeline draws on each recorded exchange.
    pub fn flags(&self) -> HashMap<u64, Flags> {
        let mut out: HashMap<u64, Flags> = HashMap::new();
        for u in &self.unplayed {
            if let Some(s) = u.seq {
                out.entry(s).or_default().unplayed = true;
            }
        }
        for n in &self.near_misses {
            if let Some(s) = n.seq {
                out.entry(s).or_default().near_miss = true;
            }
        }
        for f in &self.faults {
            if let Some(s) = f.seq {
                out.entry(s).or_default().fault = true;
            }
        }
        out
    }

    /// Badges for the exchange list.
    pub fn notes(&self) -> Notes {
        let mut out = Notes::new();
        for u in &self.unplayed {
            if let Some(s) = u.seq {
                out.entry(s)
                    .or_default()
                    .push(("unplayed", "never played".into()));
            }
        }
        for n in &self.near_misses {
            if let Some(s) = n.seq {
                out.entry(s).or_default().push(("near", "near miss".into()));
            }
        }
        for f in &self.faults {
            if let Some(s) = f.seq {
                out.entry(s)
                    .or_default()
                    .push(("fault", format!("fault: {}", value_text(&f.action))));
            }
        }
        for m in &self.misses {
            if let Some(s) = m.closest.first().and_then(|c| c.seq) {
                let badges = out.entry(s).or_default();
                if !badges.iter().any(|(c, _)| *c == "miss") {
                    badges.push(("miss", "closest to a miss".into()));
                }
            }
        }
        out
    }
}

/// A JSON value as text: strings as they are, anything else as JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn target(path: &str, query: &Option<String>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

fn seq_link(h: &mut Html, seq: Option<u64>) {
    match seq {
        Some(s) => {
            h.raw("<a")
                .attr("href", &format!("#x-{s}"))
                .raw(">#")
                .num(s)
                .raw("</a>");
        }
        None => {
            h.raw("—");
        }
    }
}

fn stat(h: &mut Html, class: &str, key: &str, n: Option<u64>) {
    h.raw("<div")
        .attr("class", &format!("kv {class}"))
        .raw("><div class=\"k\">")
        .text(key)
        .raw("</div><div class=\"v big\">")
        .text(&n.map_or("—".into(), |n| n.to_string()))
        .raw("</div></div>");
}

/// The replay section.
pub fn render(h: &mut Html, r: &ReplayOverlay) {
    let bad = |n: usize| if n > 0 { "bad" } else { "ok" };
    h.raw("<section class=\"card\" id=\"replay\"><h2>Replay<span class=\"count\">")
        .text(
            if r.findings() == 0 {
                "clean: every exchange played, nothing missed".to_string()
            } else {
                format!("{} findings", r.findings())
            }
            .as_str(),
        )
        .raw("</span></h2><div class=\"grid\">");
    stat(h, "", "recorded", r.recorded);
    stat(h, "", "played", r.played);
    stat(h, "", "requests served", r.served);
    stat(
        h,
        bad(r.misses.len()),
        "misses",
        Some(r.misses.len() as u64),
    );
    stat(
        h,
        bad(r.near_misses.len()),
        "near misses",
        Some(r.near_misses.len() as u64),
    );
    stat(
        h,
        if r.faults.is_empty() { "" } else { "warn" },
        "injected faults",
        Some(r.faults.len() as u64),
    );
    stat(
        h,
        bad(r.unplayed.len()),
        "never played",
        Some(r.unplayed.len() as u64),
    );
    stat(
        h,
        bad(r.unfired_rules.len()),
        "rules never fired",
        Some(r.unfired_rules.len() as u64),
    );
    h.raw("</div>");
    if !r.recording.is_empty() {
        h.raw("<p class=\"muted\">Replay of ")
            .text(&r.recording)
            .raw(" #")
            .text(&r.session)
            .raw("</p>");
    }

    if !r.misses.is_empty() {
        h.raw("<h3 id=\"misses\">Misses</h3><table><thead><tr><th>request</th><th>asked for</th><th>why</th><th>closest recorded</th></tr></thead><tbody>");
        for m in &r.misses {
            h.raw("<tr class=\"miss\"><td class=\"mono\">")
                .text(&m.method)
                .raw(" ");
            body::text_with_placeholders(h, &target(&m.path, &m.query));
            h.raw("</td><td>").text(&m.representation);
            if let Some(c) = &m.credential {
                h.raw(" <mark class=\"ph\">").text(c).raw("</mark>");
            }
            h.raw("</td><td><span class=\"badge miss\">")
                .text(&m.reason)
                .raw("</span> ")
                .text(&m.message)
                .raw("</td><td>");
            if m.closest.is_empty() {
                h.raw("<span class=\"muted\">nothing close</span>");
            }
            for c in &m.closest {
                h.raw("<div>");
                seq_link(h, c.seq);
                h.raw(" <span class=\"mono\">")
                    .text(&c.method)
                    .raw(" ")
                    .text(format::short_href(&target(&c.path, &c.query)))
                    .raw("</span> <span class=\"muted\">differs in ")
                    .text(&c.differs.join(", "))
                    .raw("</span></div>");
            }
            h.raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }

    if !r.near_misses.is_empty() {
        h.raw("<h3 id=\"near-misses\">Near misses</h3><p class=\"muted\">Served from the one recorded request with the same method, path and representation although the body differed.</p>");
        for n in &r.near_misses {
            h.raw("<div class=\"dx changed\"><div class=\"dh\"><span class=\"kind changed\">near miss</span>");
            seq_link(h, n.seq);
            h.raw("<span class=\"p\">")
                .text(&n.method)
                .raw(" ")
                .text(&target(&n.path, &n.query))
                .raw("</span><span class=\"muted\">")
                .text(&n.representation)
                .raw("</span></div><table><thead><tr><th>where</th><th>recorded</th><th>received</th></tr></thead><tbody>");
            for d in &n.differences {
                h.raw("<tr><td class=\"where\">")
                    .text(&d.place)
                    .raw("</td><td class=\"val a\">");
                body::text_with_placeholders(h, &value_text(&d.recorded));
                h.raw("</td><td class=\"val b\">");
                body::text_with_placeholders(h, &value_text(&d.received));
                h.raw("</td></tr>");
            }
            h.raw("</tbody></table>");
            let (rec, got) = (value_text(&n.recorded_body), value_text(&n.received_body));
            if !rec.is_empty() || !got.is_empty() {
                h.raw("<details><summary class=\"muted\">bodies</summary><div class=\"cols2\"><div><h4>recorded</h4>");
                body::render(h, rec.as_bytes(), None, false);
                h.raw("</div><div><h4>received</h4>");
                body::render(h, got.as_bytes(), None, false);
                h.raw("</div></div></details>");
            }
            h.raw("</div>");
        }
    }

    if !r.faults.is_empty() {
        h.raw("<h3 id=\"faults\">Injected faults</h3><table><thead><tr><th>rule</th><th>request</th><th>action</th><th>recorded exchange</th></tr></thead><tbody>");
        for f in &r.faults {
            h.raw("<tr><td class=\"mono\">")
                .text(&value_text(&f.rule))
                .raw("</td><td class=\"mono\">")
                .text(&f.method)
                .raw(" ")
                .text(&f.path)
                .raw("</td><td><span class=\"badge fault\">")
                .text(&value_text(&f.action))
                .raw("</span></td><td>");
            seq_link(h, f.seq);
            h.raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }

    if !r.unfired_rules.is_empty() {
        h.raw("<h3>Rules that never fired</h3><ul>");
        for rule in &r.unfired_rules {
            h.raw("<li class=\"mono\">")
                .text(&value_text(rule))
                .raw("</li>");
        }
        h.raw("</ul>");
    }

    if !r.unplayed.is_empty() {
        h.raw("<h3 id=\"unplayed\">Recorded but never played</h3><table><thead><tr><th class=\"n\">#</th><th>request</th><th>asked for</th><th>recorded status</th></tr></thead><tbody>");
        for u in &r.unplayed {
            h.raw("<tr><td class=\"n\">");
            seq_link(h, u.seq);
            h.raw("</td><td class=\"mono\">").text(&u.method).raw(" ");
            format::path_html(h, &u.path, u.query.as_deref());
            h.raw("</td><td>")
                .text(&u.representation)
                .raw("</td><td><span")
                .attr("class", &format!("st {}", format::status_class(u.status)))
                .raw(">")
                .text(&format::status_text(u.status))
                .raw("</span></td></tr>");
        }
        h.raw("</tbody></table>");
    }
    h.raw("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn todays_report_and_one_with_the_announced_members_both_load() {
        let today = r#"{"recording":"r.sqlite","session":"demo","recorded":30,"served":3,"played":2,
            "misses":[{"method":"GET","path":"/x","representation":"json","match_key":"k","reason":"no-match","message":"m","closest":[{"seq":4,"method":"GET","path":"/y","differs":["path"]}]}],
            "unplayed":[{"seq":7,"method":"GET","path":"/e","query":"ack=1","representation":"json","status":200,"match_key":"k"}]}"#;
        let r = ReplayOverlay::parse(today, Path::new("r.json")).unwrap();
        assert_eq!(r.misses[0].closest[0].seq, Some(4));
        assert!(r.flags()[&7].unplayed);
        assert_eq!(r.findings(), 2);

        let later = r#"{"session":"demo","misses":[],"unplayed":[],"something_new":{"x":1},
            "near_misses":[{"seq":5,"method":"POST","path":"/a","representation":"json","differences":[{"where":"/UserAgent","recorded":"\"a\"","received":"\"b\""}],"recorded_body":"{}","received_body":"{}"}],
            "faults":[{"rule":"delay /events","method":"GET","path":"/events","action":"reset","seq":null}],
            "unfired_rules":["error 500 /me"]}"#;
        let r = ReplayOverlay::parse(later, Path::new("r.json")).unwrap();
        assert!(r.flags()[&5].near_miss);
        assert_eq!(r.faults[0].seq, None);
        assert_eq!(r.notes()[&5][0].1, "near miss");
        assert_eq!(r.findings(), 2);
    }

    #[test]
    fn other_json_is_refused_with_what_was_expected() {
        let err = ReplayOverlay::parse(r#"{"schema":"ucwa-replay.diff/1"}"#, Path::new("d.json"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "d.json: not a replay report (no session, misses, unplayed member); give the file `replay --report` wrote"
        );
        let err = ReplayOverlay::parse("<html>", Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x: not a replay report (not JSON"), "{err}");
        assert!(ReplayOverlay::parse("[1]", Path::new("x")).is_err());
    }
}
