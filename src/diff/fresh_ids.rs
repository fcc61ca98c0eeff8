//! Fresh client-generated ids for `verify`: a real client sends a new `EndpointId` with
//! every `POST applications` (and new `operationId`s, `sessionContext`s, …). Re-sending the
//! recorded one makes a live server answer as for a client it already knows (`200` with the
//! existing application instead of `201`), so verify would report a difference the client
//! never causes. The fields are those left out of match keys
//! ([`crate::recording::DEFAULT_IGNORED_BODY_FIELDS`]), in JSON, form and XML bodies.

use std::borrow::Cow;

use serde_json::Value;

use crate::recording::DEFAULT_IGNORED_BODY_FIELDS;

fn is_client_id(name: &str) -> bool {
    DEFAULT_IGNORED_BODY_FIELDS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
}

fn fresh() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `body` with every client-generated id given a new value; the body as it was when it
/// holds none (or is not JSON, a form or UCWA XML).
pub(super) fn refresh<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, [u8]> {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let changed = if mime == "application/json" || mime.ends_with("+json") {
        refresh_json(body)
    } else if mime == "application/x-www-form-urlencoded" {
        refresh_form(body)
    } else if mime.ends_with("xml") {
        refresh_xml(body)
    } else {
        None
    };
    changed.map_or(Cow::Borrowed(body), Cow::Owned)
}

fn refresh_json(body: &[u8]) -> Option<Vec<u8>> {
    fn walk(v: &mut Value) -> bool {
        match v {
            Value::Object(map) => {
                let mut changed = false;
                for (k, v) in map.iter_mut() {
                    if is_client_id(k) && v.is_string() {
                        *v = Value::String(fresh());
                        changed = true;
                    } else {
                        changed |= walk(v);
                    }
                }
                changed
            }
            Value::Array(items) => items.iter_mut().fold(false, |c, v| walk(v) | c),
            _ => false,
        }
    }
    let mut value: Value = serde_json::from_slice(crate::ucwa::media::strip_bom(body)).ok()?;
    walk(&mut value).then(|| value.to_string().into_bytes())
}

fn refresh_form(body: &[u8]) -> Option<Vec<u8>> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    if !pairs.iter().any(|(k, _)| is_client_id(k)) {
        return None;
    }
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        if is_client_id(k) {
            out.append_pair(k, &fresh());
        } else {
            out.append_pair(k, v);
        }
    }
    Some(out.finish().into_bytes())
}

/// UCWA XML input: `<property name="EndpointId">…</property>`.
fn refresh_xml(body: &[u8]) -> Option<Vec<u8>> {
    static PROPERTY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(<property\s+name\s*=\s*["']([^"']+)["']\s*>)([^<]*)(</property>)"#)
            .expect("static regex")
    });
    let text = std::str::from_utf8(body).ok()?;
    let mut changed = false;
    let out = PROPERTY.replace_all(text, |c: &regex::Captures<'_>| {
        if is_client_id(&c[2]) {
            changed = true;
            format!("{}{}{}", &c[1], fresh(), &c[4])
        } else {
            c[0].to_string()
        }
    });
    changed.then(|| out.into_owned().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(c: Cow<'_, [u8]>) -> String {
        String::from_utf8(c.into_owned()).unwrap()
    }

    #[test]
    fn client_ids_get_new_values_everything_else_stays() {
        let json =
            br#"{"UserAgent":"bot","EndpointId":"6d1e","Culture":"en-US","x":{"operationId":"1"}}"#;
        let out: Value =
            serde_json::from_str(&text(refresh(json, Some("application/json")))).unwrap();
        assert_eq!(out["UserAgent"], "bot");
        assert_eq!(out["Culture"], "en-US");
        assert_ne!(out["EndpointId"], "6d1e");
        assert_eq!(out["EndpointId"].as_str().unwrap().len(), 36);
        assert_ne!(out["x"]["operationId"], "1");
        // Two runs, two ids.
        assert_ne!(
            text(refresh(json, Some("application/json"))),
            text(refresh(json, Some("application/json")))
        );

        let form = b"EndpointId=1&UserAgent=bot";
        let out = text(refresh(
            form,
            Some("application/x-www-form-urlencoded; charset=utf-8"),
        ));
        assert!(
            out.ends_with("&UserAgent=bot") && !out.starts_with("EndpointId=1&"),
            "{out}"
        );

        let xml = br#"<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="UserAgent">bot</property><property name="EndpointId">1</property></input>"#;
        let out = text(refresh(xml, Some("application/vnd.microsoft.com.ucwa+xml")));
        assert!(
            out.contains(r#"<property name="UserAgent">bot</property>"#),
            "{out}"
        );
        assert!(
            !out.contains(r#"<property name="EndpointId">1</property>"#),
            "{out}"
        );

        // No client id: the very same bytes.
        let plain = br#"{ "SupportedModalities": ["Messaging"] }"#;
        assert!(matches!(
            refresh(plain, Some("application/json")),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            refresh(b"hello", Some("text/plain")),
            Cow::Borrowed(_)
        ));
    }
}
