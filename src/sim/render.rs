//! Writing resources and event batches as UCWA writes them. Resources are built once as JSON
//! values (key order kept) and mapped to XML by the rules of docs/UCWA.md, "Representations", so the two
//! representations cannot drift apart: `rel` + self href become `<resource rel href>`, links
//! become `<link>`, scalars `<property>`, arrays `<propertyList>`, `_embedded` nested
//! `<resource>`s, `true` becomes `True` and `\/Date(ms)\/` an ISO 8601 time.

use serde_json::{Map, Value, json};

use super::feed::{Event, EventLink, SenderBlock};
use crate::ucwa::XML_NS;
use crate::ucwa::error::xml_escape;

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// A UCWA date value (`\/Date(ms)\/` once serialised).
pub fn ucwa_date(ms: u64) -> Value {
    Value::String(format!("/Date({ms})/"))
}

/// `{"href": …}`, the shape of every link.
pub fn link(href: impl Into<String>) -> Value {
    json!({ "href": href.into() })
}

/// `{"href": …, "title": …}`.
pub fn titled_link(href: impl Into<String>, title: &str) -> Value {
    json!({ "href": href.into(), "title": title })
}

/// JSON text as UCWA writes it: `/` inside dates escaped as `\/`.
pub fn to_json(v: &Value) -> String {
    let text = v.to_string();
    if text.contains("\"/Date(") {
        text.replace("\"/Date(", "\"\\/Date(")
            .replace(")/\"", ")\\/\"")
    } else {
        text
    }
}

/// A whole XML document holding one resource.
pub fn resource_xml(v: &Value, fallback_rel: &str) -> String {
    let mut out = String::from(XML_DECL);
    write_resource(&mut out, v, fallback_rel, 0, true);
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn self_href(obj: &Map<String, Value>) -> &str {
    obj.get("_links")
        .and_then(|l| l.get("self"))
        .and_then(|s| s.get("href"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn write_link(out: &mut String, rel: &str, l: &Value, depth: usize) {
    let href = l.get("href").and_then(Value::as_str).unwrap_or("");
    indent(out, depth);
    out.push_str(&format!(
        "<link rel=\"{}\" href=\"{}\"",
        xml_escape(rel),
        xml_escape(href)
    ));
    if let Some(title) = l.get("title").and_then(Value::as_str) {
        out.push_str(&format!(" title=\"{}\"", xml_escape(title)));
    }
    out.push_str(" />\n");
}

/// Text of a scalar as UCWA's XML writes it.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => match parse_ucwa_date(s) {
            Some(ms) => iso8601(ms),
            None => s.clone(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn parse_ucwa_date(s: &str) -> Option<u64> {
    s.strip_prefix("/Date(")?.strip_suffix(")/")?.parse().ok()
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil-from-days, no
/// calendar crate needed for one format).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// `rel_attr`: the rel the element is written with. `None` takes the resource's own `rel`
/// (top level, events); nested `_embedded.r` resources are written `<resource rel="r">`.
fn write_resource(out: &mut String, v: &Value, fallback_rel: &str, depth: usize, ns: bool) {
    write_resource_as(out, v, None, fallback_rel, depth, ns);
}

fn write_resource_as(
    out: &mut String,
    v: &Value,
    rel_attr: Option<&str>,
    fallback_rel: &str,
    depth: usize,
    ns: bool,
) {
    let empty = Map::new();
    let obj = v.as_object().unwrap_or(&empty);
    let rel = rel_attr.unwrap_or_else(|| {
        obj.get("rel")
            .and_then(Value::as_str)
            .unwrap_or(fallback_rel)
    });
    indent(out, depth);
    out.push_str(&format!(
        "<resource rel=\"{}\" href=\"{}\"",
        xml_escape(rel),
        xml_escape(self_href(obj))
    ));
    if ns {
        out.push_str(&format!(" xmlns=\"{XML_NS}\""));
    }
    out.push_str(">\n");
    if let Some(Value::Object(links)) = obj.get("_links") {
        for (r, l) in links.iter().filter(|(r, _)| r.as_str() != "self") {
            match l {
                Value::Array(items) => items.iter().for_each(|i| write_link(out, r, i, depth + 1)),
                other => write_link(out, r, other, depth + 1),
            }
        }
    }
    for (name, value) in obj
        .iter()
        .filter(|(k, _)| k.as_str() != "_links" && k.as_str() != "_embedded")
    {
        indent(out, depth + 1);
        match value {
            Value::Array(items) if items.is_empty() => {
                out.push_str(&format!("<propertyList name=\"{}\" />\n", xml_escape(name)));
            }
            Value::Array(items) => {
                out.push_str(&format!("<propertyList name=\"{}\">\n", xml_escape(name)));
                for item in items {
                    indent(out, depth + 2);
                    out.push_str(&format!(
                        "<item>{}</item>\n",
                        xml_escape(&scalar_text(item))
                    ));
                }
                indent(out, depth + 1);
                out.push_str("</propertyList>\n");
            }
            Value::Null => out.push_str(&format!("<property name=\"{}\" />\n", xml_escape(name))),
            other => out.push_str(&format!(
                "<property name=\"{}\">{}</property>\n",
                xml_escape(name),
                xml_escape(&scalar_text(other))
            )),
        }
    }
    if let Some(Value::Object(embedded)) = obj.get("_embedded") {
        for (r, e) in embedded {
            match e {
                Value::Array(items) => items
                    .iter()
                    .for_each(|i| write_resource_as(out, i, Some(r), r, depth + 1, false)),
                other => write_resource_as(out, other, Some(r), r, depth + 1, false),
            }
        }
    }
    indent(out, depth);
    out.push_str("</resource>\n");
}

fn link_json(l: &EventLink) -> Value {
    let mut m = Map::new();
    m.insert("rel".into(), Value::String(l.rel.clone()));
    m.insert("href".into(), Value::String(l.href.clone()));
    if let Some(t) = &l.title {
        m.insert("title".into(), Value::String(t.clone()));
    }
    Value::Object(m)
}

fn event_json(e: &Event) -> Value {
    let mut m = Map::new();
    m.insert("link".into(), link_json(&e.link));
    if let Some(i) = &e.in_ {
        m.insert("in".into(), link_json(i));
    }
    if let Some(s) = e.status {
        m.insert("status".into(), Value::String(s.into()));
    }
    if let Some(r) = &e.reason {
        let mut reason = Map::new();
        reason.insert("code".into(), Value::String(r.code().into()));
        if let Some(sub) = &r.subcode {
            reason.insert("subcode".into(), Value::String(sub.clone()));
        }
        reason.insert("message".into(), Value::String(r.message.clone()));
        m.insert("reason".into(), Value::Object(reason));
    }
    if let Some(emb) = &e.embedded {
        let mut em = Map::new();
        em.insert(e.link.rel.clone(), emb.clone());
        m.insert("_embedded".into(), Value::Object(em));
    }
    m.insert("type".into(), Value::String(e.kind.as_str().into()));
    Value::Object(m)
}

/// A batch of the events feed as JSON.
pub fn events_json(self_href: &str, next_href: &str, senders: &[SenderBlock]) -> String {
    let senders: Vec<Value> = senders
        .iter()
        .map(|s| {
            json!({
                "rel": s.rel,
                "href": s.href,
                "events": s.events.iter().map(event_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    to_json(&json!({
        "_links": { "self": link(self_href), "next": link(next_href) },
        "sender": senders,
    }))
}

/// A batch of the events feed as XML (`<events>`; the event type is the element name).
pub fn events_xml(self_href: &str, next_href: &str, senders: &[SenderBlock]) -> String {
    let mut out = String::from(XML_DECL);
    out.push_str(&format!(
        "<events href=\"{}\" xmlns=\"{XML_NS}\">\n",
        xml_escape(self_href)
    ));
    write_link(&mut out, "next", &link(next_href), 1);
    for s in senders {
        out.push_str(&format!(
            "  <sender rel=\"{}\" href=\"{}\">\n",
            xml_escape(&s.rel),
            xml_escape(&s.href)
        ));
        for e in &s.events {
            write_event_xml(&mut out, e);
        }
        out.push_str("  </sender>\n");
    }
    out.push_str("</events>\n");
    out
}

fn write_event_xml(out: &mut String, e: &Event) {
    let kind = e.kind.as_str();
    out.push_str(&format!(
        "    <{kind} rel=\"{}\" href=\"{}\"",
        xml_escape(&e.link.rel),
        xml_escape(&e.link.href)
    ));
    if let Some(t) = &e.link.title {
        out.push_str(&format!(" title=\"{}\"", xml_escape(t)));
    }
    if let Some(s) = e.status {
        out.push_str(&format!(" status=\"{s}\""));
    }
    if e.in_.is_none() && e.reason.is_none() && e.embedded.is_none() {
        out.push_str(" />\n");
        return;
    }
    out.push_str(">\n");
    if let Some(i) = &e.in_ {
        out.push_str(&format!(
            "      <in rel=\"{}\" href=\"{}\"",
            xml_escape(&i.rel),
            xml_escape(&i.href)
        ));
        if let Some(t) = &i.title {
            out.push_str(&format!(" title=\"{}\"", xml_escape(t)));
        }
        out.push_str(" />\n");
    }
    if let Some(r) = &e.reason {
        out.push_str(&format!("      <reason><code>{}</code>", r.code()));
        if let Some(sub) = &r.subcode {
            out.push_str(&format!("<subcode>{}</subcode>", xml_escape(sub)));
        }
        out.push_str(&format!(
            "<message>{}</message></reason>\n",
            xml_escape(&r.message)
        ));
    }
    if let Some(emb) = &e.embedded {
        write_resource(out, emb, &e.link.rel, 3, false);
    }
    out.push_str(&format!("    </{kind}>\n"));
}

/// The answer to a wrong ack: only `_links.resync`.
pub fn resync_json(resync_href: &str) -> String {
    to_json(&json!({ "_links": { "resync": link(resync_href) } }))
}

/// The XML answer to a wrong ack.
pub fn resync_xml(self_href: &str, resync_href: &str) -> String {
    let mut out = String::from(XML_DECL);
    out.push_str(&format!(
        "<events href=\"{}\" xmlns=\"{XML_NS}\">\n",
        xml_escape(self_href)
    ));
    write_link(&mut out, "resync", &link(resync_href), 1);
    out.push_str("</events>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_maps_to_xml_like_the_seed() {
        let v = json!({
            "rel": "participantMessaging",
            "_links": { "self": link("/a/pm"), "participant": link("/a/p") }
        });
        let xml = resource_xml(&v, "x");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<resource rel=\"participantMessaging\" href=\"/a/pm\" xmlns=\"http://schemas.microsoft.com/rtc/2012/03/ucwa\">\n  <link rel=\"participant\" href=\"/a/p\" />\n  <property name=\"rel\">participantMessaging</property>\n</resource>\n"
        );
    }

    #[test]
    fn dates_and_booleans() {
        assert_eq!(iso8601(1_704_067_201_500), "2024-01-01T00:00:01.500Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        let v = json!({"rel":"message","timeStamp":ucwa_date(5),"anonymous":false,"_links":{"self":link("/m")}});
        assert!(to_json(&v).contains(r#""\/Date(5)\/""#));
        let xml = resource_xml(&v, "message");
        assert!(xml.contains("<property name=\"anonymous\">False</property>"));
        assert!(xml.contains("1970-01-01T00:00:00.005Z"));
    }
}
