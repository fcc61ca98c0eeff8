//! The UCWA resource kind of a request: by the rel of the link that led to its path (learned
//! from the session's responses), else by the shapes real servers use (docs/UCWA.md, "Sign-in").
//!
//! Kinds by path shape: `root` (autodiscover), `user`, `token`, `applications`,
//! `application`, `events`, `batch`, `me`, `makeMeAvailable`, `reportMyActivity`,
//! `communication`, `startMessaging` (POST) / `messagingInvitations`, `messagingInvitation`,
//! `accept`, `decline`, `conversations`, `conversation`, `participants`, `participant`,
//! `participantMessaging`, `messaging`, `sendMessage` (POST) / `messages`, `message`,
//! `stopMessaging`, `setIsTyping`, `typingParticipants`, else `other` (see [`ResourceKind`]).
//! The proxy's `/_upstream/HOST` prefix is ignored.

use std::sync::Mutex;

use serde_json::Value;

use super::kind::ResourceKind;
use super::learned::Learned;
use super::origin::strip_published;
use crate::ucwa::Representation;
use crate::ucwa::media::strip_bom;

/// Rels that say where to go next rather than what a resource is.
const NAVIGATION_RELS: &[&str] = &["self", "next", "resync", "resume"];

/// Learns which rel points at which href from the responses of a session, so that a
/// resource is classified by the rel that led to it, else by its path.
#[derive(Debug, Default)]
pub struct Classifier {
    /// Normalised path → rel, in bounded memory.
    learned: Mutex<Learned>,
    /// Fingerprints of the bodies learned from lately. Learning from a body again teaches
    /// nothing (the first rel for a path wins, and a link only ever replaces a resource's
    /// own rel; at most it would bring back a path forgotten since, which is then classified
    /// by its shape), and a client polling a resource gets the same body many times: each
    /// would be parsed again, on the client's path.
    seen: Mutex<hashbrown::HashSet<u64>>,
    fingerprint: hashbrown::DefaultHashBuilder,
}

/// Most body fingerprints remembered (then they are forgotten all at once).
const MAX_SEEN: usize = 4096;

impl Classifier {
    pub fn new() -> Self {
        Classifier::default()
    }

    /// Remember the rels of the links in a response body (JSON `_links` / `_embedded` /
    /// events `{rel, href}` objects, XML elements with `rel` and `href`). Bodies that do not
    /// parse teach nothing.
    pub fn learn(&self, repr: Representation, body: &[u8]) {
        use std::hash::BuildHasher;
        let fingerprint = self.fingerprint.hash_one((repr as u8, body));
        let seen = || self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen().contains(&fingerprint) {
            return;
        }
        self.learn_links(repr, body);
        // Only once learned: the same body arriving meanwhile on another exchange is
        // learned again rather than sent on before its links are known.
        let mut seen = seen();
        if seen.len() >= MAX_SEEN {
            seen.clear();
        }
        seen.insert(fingerprint);
    }

    fn learn_links(&self, repr: Representation, body: &[u8]) {
        let mut found = Vec::new();
        match repr {
            Representation::Xml => learn_xml(body, &mut found),
            Representation::Json => {
                let body = strip_bom(body);
                if let Ok(v) = serde_json::from_slice::<Value>(body) {
                    learn_json(&v, None, &mut found);
                }
            }
            Representation::Other => return,
        }
        if found.is_empty() {
            return;
        }
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        for (href, rel, weak) in found {
            if let Some(path) = href_path(&href) {
                learned.learn(path, rel, weak);
            }
        }
    }

    /// The kind of a request (`participantMessaging`, `events`, `application`, `token` …).
    pub fn kind(&self, method: &str, path: &str) -> ResourceKind {
        let path = strip_published(path);
        let path = path.split(['?', '#']).next().unwrap_or(path);
        if let Some(k) = fixed_kind(path) {
            return k;
        }
        let key = normalise(path);
        if let Some(rel) = self
            .learned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return ResourceKind::from_rel(rel);
        }
        ResourceKind::from_rel(kind_by_path(method, path))
    }
}

/// Kinds that never depend on the rel (the feed's `next` link must not rename it).
fn fixed_kind(path: &str) -> Option<ResourceKind> {
    let lower = path.trim_end_matches('/').to_ascii_lowercase();
    if lower.ends_with("/events") && lower.contains("/applications/") {
        Some(ResourceKind::Events)
    } else if lower.ends_with("/oauthtoken") {
        Some(ResourceKind::Token)
    } else {
        None
    }
}

fn learn_json(v: &Value, rel_hint: Option<&str>, found: &mut Vec<(String, String, bool)>) {
    match v {
        Value::Object(m) => {
            // `{rel, href}` objects: event senders, links and `in`.
            if let (Some(Value::String(rel)), Some(Value::String(href))) =
                (m.get("rel"), m.get("href"))
                && !NAVIGATION_RELS.contains(&rel.as_str())
            {
                found.push((href.clone(), rel.clone(), false));
            }
            let own_rel = rel_hint.or_else(|| m.get("rel").and_then(Value::as_str));
            if let Some(Value::Object(links)) = m.get("_links") {
                for (rel, link) in links {
                    let links: Vec<&Value> = match link {
                        Value::Array(items) => items.iter().collect(),
                        other => vec![other],
                    };
                    for link in links {
                        let Some(href) = link.get("href").and_then(Value::as_str) else {
                            continue;
                        };
                        if rel == "self" {
                            if let Some(own) = own_rel {
                                found.push((href.to_string(), own.to_string(), true));
                            }
                        } else if !NAVIGATION_RELS.contains(&rel.as_str()) {
                            found.push((href.to_string(), rel.clone(), false));
                        }
                    }
                }
            }
            for (k, inner) in m {
                match k.as_str() {
                    "_links" => {}
                    "_embedded" => {
                        if let Value::Object(emb) = inner {
                            for (rel, r) in emb {
                                match r {
                                    Value::Array(items) => {
                                        items.iter().for_each(|i| learn_json(i, Some(rel), found))
                                    }
                                    other => learn_json(other, Some(rel), found),
                                }
                            }
                        }
                    }
                    _ => learn_json(inner, None, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| learn_json(i, None, found)),
        _ => {}
    }
}

fn learn_xml(body: &[u8], found: &mut Vec<(String, String, bool)>) {
    let body = strip_bom(body);
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return;
    };
    for node in doc.descendants().filter(|n| n.is_element()) {
        if let (Some(rel), Some(href)) = (node.attribute("rel"), node.attribute("href"))
            && !NAVIGATION_RELS.contains(&rel)
        {
            // A `<resource>`'s own rel is weak; a link's or an event's rel is the pointer.
            let weak = node.tag_name().name() == "resource";
            found.push((href.to_string(), rel.to_string(), weak));
        }
    }
}

/// The path of an href (absolute or relative), normalised; None for `data:`, `sip:` ….
fn href_path(href: &str) -> Option<String> {
    let href = href.trim();
    let path = if let Some(rest) = href
        .strip_prefix("https://")
        .or_else(|| href.strip_prefix("http://"))
        .or_else(|| href.strip_prefix("//"))
    {
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    } else if href.starts_with('/') {
        href
    } else {
        return None;
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Some(normalise(strip_published(path)))
}

fn normalise(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let trimmed = decoded.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The kind by the shapes real servers use.
fn kind_by_path(method: &str, path: &str) -> &'static str {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let seg = |i: usize| segs.get(i).map(String::as_str);
    let post = method.eq_ignore_ascii_case("POST");
    let joined = segs.join("/");
    if segs.is_empty() {
        return "root";
    }
    if let Some(i) = segs.iter().position(|s| s == "autodiscoverservice.svc") {
        return match segs.last().map(String::as_str) {
            Some("user") => "user",
            Some("root") if i + 1 < segs.len() => "root",
            _ if joined.contains("/root/") => "user",
            _ => "root",
        };
    }
    if joined.ends_with("webticket/oauthtoken") || seg(segs.len() - 1) == Some("oauthtoken") {
        return "token";
    }
    let Some(a) = segs.iter().position(|s| s == "applications") else {
        return "other";
    };
    let rest: Vec<&str> = segs[a + 1..].iter().map(String::as_str).collect();
    match rest.as_slice() {
        [] => "applications",
        [_] => "application",
        [_, "events"] => "events",
        [_, "batch"] => "batch",
        [_, "me"] => "me",
        [_, "me", "makemeavailable"] => "makeMeAvailable",
        [_, "me", "reportmyactivity"] => "reportMyActivity",
        [_, "communication"] => "communication",
        [_, "communication", "messaginginvitations"] => {
            if post {
                "startMessaging"
            } else {
                "messagingInvitations"
            }
        }
        [_, "communication", "messaginginvitations", _] => "messagingInvitation",
        [_, "communication", "messaginginvitations", _, "accept"] => "accept",
        [_, "communication", "messaginginvitations", _, "decline"] => "decline",
        [_, "communication", "conversations"] => "conversations",
        [_, "communication", "conversations", _] => "conversation",
        [_, "communication", "conversations", _, "participants"] => "participants",
        [_, "communication", "conversations", _, "participants", _] => "participant",
        [
            _,
            "communication",
            "conversations",
            _,
            "participants",
            _,
            "messaging",
        ]
        | [
            _,
            "communication",
            "conversations",
            _,
            "participants",
            _,
            "participantmessaging",
        ] => "participantMessaging",
        [_, "communication", "conversations", _, "messaging"] => "messaging",
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "messages",
        ] => {
            if post {
                "sendMessage"
            } else {
                "messages"
            }
        }
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "messages",
            _,
        ] => "message",
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "terminate",
        ] => "stopMessaging",
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "typing",
        ] => "setIsTyping",
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "typingparticipants",
        ] => "typingParticipants",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "/ucwa/oauth/v1/applications/105";

    #[test]
    fn by_path_shape() {
        let c = Classifier::new();
        let conv = format!("{APP}/communication/conversations/eee0");
        let cases = [
            ("GET", "/".to_string(), "root"),
            (
                "GET",
                "/_upstream/lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root/oauth/user"
                    .to_string(),
                "user",
            ),
            (
                "GET",
                "/autodiscover/autodiscoverservice.svc/root".to_string(),
                "root",
            ),
            ("POST", "/WebTicket/oauthtoken".to_string(), "token"),
            (
                "POST",
                "/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken".to_string(),
                "token",
            ),
            ("POST", "/ucwa/oauth/v1/applications".to_string(), "applications"),
            ("GET", APP.to_string(), "application"),
            ("DELETE", format!("{APP}/"), "application"),
            ("GET", format!("{APP}/events"), "events"),
            ("POST", format!("{APP}/batch"), "batch"),
            ("GET", format!("{APP}/me"), "me"),
            ("POST", format!("{APP}/me/makeMeAvailable"), "makeMeAvailable"),
            ("POST", format!("{APP}/me/reportMyActivity"), "reportMyActivity"),
            ("GET", format!("{APP}/communication"), "communication"),
            (
                "POST",
                format!("{APP}/communication/messagingInvitations"),
                "startMessaging",
            ),
            (
                "GET",
                format!("{APP}/communication/messagingInvitations"),
                "messagingInvitations",
            ),
            (
                "GET",
                format!("{APP}/communication/messagingInvitations/6408"),
                "messagingInvitation",
            ),
            (
                "POST",
                format!("{APP}/communication/messagingInvitations/6408/accept"),
                "accept",
            ),
            (
                "POST",
                format!("{APP}/communication/messagingInvitations/6408/decline"),
                "decline",
            ),
            ("GET", format!("{APP}/communication/conversations"), "conversations"),
            ("GET", conv.clone(), "conversation"),
            ("GET", format!("{conv}/participants"), "participants"),
            ("GET", format!("{conv}/participants/toshm@contoso.com"), "participant"),
            (
                "GET",
                format!("{conv}/participants/toshm@contoso.com/messaging"),
                "participantMessaging",
            ),
            ("GET", format!("{conv}/messaging"), "messaging"),
            ("POST", format!("{conv}/messaging/messages"), "sendMessage"),
            ("GET", format!("{conv}/messaging/messages"), "messages"),
            ("GET", format!("{conv}/messaging/messages/3"), "message"),
            ("POST", format!("{conv}/messaging/terminate"), "stopMessaging"),
            ("POST", format!("{conv}/messaging/typing"), "setIsTyping"),
            (
                "GET",
                format!("{conv}/messaging/typingParticipants"),
                "typingParticipants",
            ),
            ("GET", "/favicon.ico".to_string(), "other"),
            ("GET", format!("{APP}/people/contacts"), "other"),
        ];
        for (method, path, want) in cases {
            assert_eq!(c.kind(method, &path).as_str(), want, "{method} {path}");
        }
    }

    #[test]
    fn a_body_learned_again_is_skipped_and_changes_nothing() {
        // A resource's own rel (weak), a link naming it (strong), a second link, in every
        // order with repeats: the remembered bodies change nothing a full learn would do.
        let own = format!(r#"{{"_links":{{"self":{{"href":"{APP}/r"}}}},"rel":"weakRel"}}"#);
        let link = format!(r#"{{"_links":{{"strongRel":{{"href":"{APP}/r"}}}}}}"#);
        let other = format!(
            r#"{{"_links":{{"otherRel":{{"href":"{APP}/r"}},"more":{{"href":"{APP}/m"}}}}}}"#
        );
        let bodies = [own.as_str(), link.as_str(), other.as_str()];
        let orders: [&[usize]; 6] = [
            &[0, 1, 0, 1],
            &[1, 0, 1, 0],
            &[0, 0, 2, 1, 0],
            &[2, 0, 2, 1],
            &[0, 2, 0, 1, 1],
            &[1, 1, 2, 2, 0],
        ];
        for order in orders {
            let cached = Classifier::new();
            let full = Classifier::new();
            for &b in order {
                cached.learn(Representation::Json, bodies[b].as_bytes());
                full.learn_links(Representation::Json, bodies[b].as_bytes());
            }
            for path in ["r", "m"] {
                let path = format!("{APP}/{path}");
                assert_eq!(
                    cached.kind("GET", &path),
                    full.kind("GET", &path),
                    "{order:?}"
                );
            }
        }
        // The same bytes in the other representation are not the same body.
        let c = Classifier::new();
        c.learn(Representation::Xml, link.as_bytes());
        c.learn(Representation::Json, link.as_bytes());
        assert_eq!(c.kind("GET", &format!("{APP}/r")).as_str(), "strongRel");
    }

    #[test]
    fn by_learned_rel_json() {
        let c = Classifier::new();
        // Real hrefs that differ from the reference shapes.
        let body = format!(
            r#"{{"_links":{{"self":{{"href":"https://fe1.contoso.com:443{APP}"}},
               "events":{{"href":"{APP}/events?ack=1"}},
               "odd":[{{"href":"{APP}/x/1"}},{{"href":"{APP}/x/2"}}]}},
              "_embedded":{{"me":{{"_links":{{"self":{{"href":"{APP}/my-self"}},
                 "makeMeAvailable":{{"href":"{APP}/my-self/available%20now"}}}},"rel":"me"}}}},
              "rel":"application"}}"#
        );
        c.learn(Representation::Json, format!("\u{feff}{body}").as_bytes());
        assert_eq!(c.kind("GET", APP).as_str(), "application");
        assert_eq!(c.kind("GET", &format!("{APP}/my-self")).as_str(), "me");
        assert_eq!(
            c.kind("POST", &format!("{APP}/my-self/available now"))
                .as_str(),
            "makeMeAvailable"
        );
        assert_eq!(c.kind("GET", &format!("{APP}/x/2")).as_str(), "odd");
        assert_eq!(c.kind("GET", &format!("{APP}/events")).as_str(), "events");

        // Events: the sender, the link and `in` teach their rels; `next` does not.
        let events = format!(
            r#"{{"_links":{{"next":{{"href":"{APP}/events?ack=2"}}}},
               "sender":[{{"rel":"conversation","href":"{APP}/c/9",
                 "events":[{{"link":{{"rel":"participantMessaging","href":"{APP}/c/9/p/z/pm"}},
                   "in":{{"rel":"localParticipant","href":"{APP}/c/9/p/z"}},"type":"added"}}]}}]}}"#
        );
        c.learn(Representation::Json, events.as_bytes());
        assert_eq!(
            c.kind("GET", &format!("{APP}/c/9/p/z/pm")).as_str(),
            "participantMessaging"
        );
        assert_eq!(
            c.kind("GET", &format!("{APP}/c/9/p/z")).as_str(),
            "localParticipant"
        );
        assert_eq!(
            c.kind("GET", &format!("{APP}/c/9")).as_str(),
            "conversation"
        );
        // Garbage teaches nothing and does not panic.
        c.learn(Representation::Json, b"{\"_links\": [");
        c.learn(Representation::Xml, b"<a");
        c.learn(Representation::Other, b"\xff");
    }

    #[test]
    fn by_learned_rel_xml() {
        let c = Classifier::new();
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<resource rel="participantMessaging" href="/t/pm/1" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">
  <link rel="participant" href="/t/people/1" />
  <property name="rel">participantMessaging</property>
</resource>"#;
        c.learn(Representation::Xml, body.as_bytes());
        assert_eq!(c.kind("GET", "/t/pm/1").as_str(), "participantMessaging");
        assert_eq!(c.kind("GET", "/t/people/1").as_str(), "participant");
        assert_eq!(c.kind("GET", "/t/people/2").as_str(), "other");
    }
}
