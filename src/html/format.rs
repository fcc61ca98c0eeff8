//! Small shared vocabulary of the pages: status classes, the timeline's lanes, and how times,
//! durations, sizes and long UCWA paths are written.

use super::escape::Html;
use crate::recording::Exchange;

/// The CSS class of a status: `s2` … `s5`, `sx` for no response (upstream failure, abort).
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "s2",
        Some(300..=399) => "s3",
        Some(400..=499) => "s4",
        Some(500..=599) => "s5",
        Some(_) => "s1",
        None => "sx",
    }
}

/// What the status class is called in filters and legends.
pub fn status_class_label(class: &str) -> &'static str {
    match class {
        "s2" => "2xx",
        "s3" => "3xx",
        "s4" => "4xx",
        "s5" => "5xx",
        "s1" => "1xx",
        _ => "no response",
    }
}

/// Every status class, in display order.
pub const STATUS_CLASSES: &[&str] = &["s2", "s3", "s4", "s5", "sx"];

/// Whether an exchange failed: an HTTP error status, or no response at all.
pub fn is_error(x: &Exchange) -> bool {
    x.error.is_some() || x.status.is_none_or(|s| s >= 400)
}

/// The status as shown: `200`, or `—` without a response.
pub fn status_text(status: Option<u16>) -> String {
    status.map_or_else(|| "—".to_string(), |s| s.to_string())
}

/// A row of the timeline: where in a UCWA session an exchange belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    SignIn,
    Application,
    Feed,
    Conversation,
    Messaging,
    Other,
}

impl Lane {
    pub const ALL: [Lane; 6] = [
        Lane::SignIn,
        Lane::Application,
        Lane::Feed,
        Lane::Conversation,
        Lane::Messaging,
        Lane::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Lane::SignIn => "sign-in",
            Lane::Application => "application",
            Lane::Feed => "events feed",
            Lane::Conversation => "conversation",
            Lane::Messaging => "messaging",
            Lane::Other => "other",
        }
    }

    /// The CSS class / filter value.
    pub fn id(self) -> &'static str {
        match self {
            Lane::SignIn => "signin",
            Lane::Application => "app",
            Lane::Feed => "feed",
            Lane::Conversation => "conv",
            Lane::Messaging => "msg",
            Lane::Other => "other",
        }
    }

    /// The lane of a resource kind (see `ucwa::classify` for the kinds).
    pub fn of_kind(kind: &str, is_feed: bool) -> Lane {
        if is_feed || kind == "events" {
            return Lane::Feed;
        }
        match kind {
            "root" | "user" | "token" | "xframe" | "redirect" => Lane::SignIn,
            "applications" | "application" | "me" | "makeMeAvailable" | "reportMyActivity"
            | "batch" | "policies" | "communication" | "people" | "presence" | "note"
            | "location" | "photo" | "myGroups" | "myContacts" | "onlineMeetings" => {
                Lane::Application
            }
            "startMessaging"
            | "messagingInvitations"
            | "messagingInvitation"
            | "accept"
            | "decline"
            | "conversations"
            | "conversation"
            | "participants"
            | "participant"
            | "localParticipant"
            | "conversationLogs" => Lane::Conversation,
            "participantMessaging"
            | "messaging"
            | "sendMessage"
            | "messages"
            | "message"
            | "stopMessaging"
            | "setIsTyping"
            | "typingParticipants"
            | "addMessaging" => Lane::Messaging,
            _ => Lane::Other,
        }
    }

    pub fn of(x: &Exchange) -> Lane {
        Lane::of_kind(x.kind.as_str(), x.is_events())
    }
}

/// A duration for people: `0.4 ms`, `12 ms`, `1.24 s`, `3 min 12 s`, `1 h 2 min`.
pub fn duration(us: i64) -> String {
    let us = us.max(0);
    if us < 10_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else if us < 60_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else if us < 3_600_000_000 {
        let s = us / 1_000_000;
        format!("{} min {} s", s / 60, s % 60)
    } else {
        let m = us / 60_000_000;
        format!("{} h {} min", m / 60, m % 60)
    }
}

/// An offset from the session's start: `+0.000 s`, `+12.345 s`, `+61:02.5`.
pub fn offset(us: i64) -> String {
    let us = us.max(0);
    if us < 60_000_000 {
        format!("+{:.3} s", us as f64 / 1e6)
    } else {
        let s = us / 1_000_000;
        let tenth = (us % 1_000_000) / 100_000;
        if s < 3600 {
            format!("+{}:{:02}.{tenth}", s / 60, s % 60)
        } else {
            format!("+{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
        }
    }
}

/// A wall-clock time (UTC, milliseconds) from microseconds since the epoch.
pub fn wall_time(us: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(us.max(0) as u64);
    let s = humantime::format_rfc3339_millis(t).to_string();
    format!("{} UTC", s.replacen('T', " ", 1).trim_end_matches('Z'))
}

/// A size: `512 B`, `12.3 KiB`, `4.0 MiB`.
pub fn bytes(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

/// Where the part of a UCWA path that every request of a session shares ends: after
/// `/applications/{id}`, else nothing.
fn prefix_end(path: &str) -> usize {
    if let Some(i) = path.find("/applications/") {
        let after = i + "/applications/".len();
        let id_len = path[after..].find('/').unwrap_or(path.len() - after);
        if id_len > 0 && after + id_len < path.len() {
            return after + id_len;
        }
    }
    0
}

/// A path with its shared application prefix dimmed (`<span class="pfx">`), all escaped.
pub fn path_html(h: &mut Html, path: &str, query: Option<&str>) {
    let cut = prefix_end(path);
    if cut > 0 {
        h.raw("<span class=\"pfx\">")
            .text(&path[..cut])
            .raw("</span>");
    }
    h.text(&path[cut..]);
    if let Some(q) = query {
        h.raw("<span class=\"q\">?").text(q).raw("</span>");
    }
}

/// The last segments of an href that tell resources apart (`participants/bob@contoso.com/messaging`).
pub fn short_href(href: &str) -> &str {
    let path = href.split('?').next().unwrap_or(href);
    let cut = prefix_end(path);
    if cut > 0 { &href[cut..] } else { href }
}

/// The person a participant-like href names (`…/participants/bob@contoso.com/messaging` →
/// `bob@contoso.com`), else the href's last segment.
pub fn person_of(href: &str) -> &str {
    let path = href.split('?').next().unwrap_or(href).trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    if let Some(i) = segs.iter().rposition(|s| *s == "participants")
        && let Some(p) = segs.get(i + 1)
    {
        return p;
    }
    segs.last().copied().unwrap_or(href)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_offsets_read_like_a_person_would_write_them() {
        assert_eq!(duration(374), "0.4 ms");
        assert_eq!(duration(37_400), "37 ms");
        assert_eq!(duration(1_240_000), "1.24 s");
        assert_eq!(duration(192_000_000), "3 min 12 s");
        assert_eq!(duration(3_720_000_000), "1 h 2 min");
        assert_eq!(offset(12_345_678), "+12.346 s");
        assert_eq!(offset(61_250_000), "+1:01.2");
        assert_eq!(offset(3_661_000_000), "+1:01:01");
        assert_eq!(wall_time(1_000_500), "1970-01-01 00:00:01.000 UTC");
    }

    #[test]
    fn lanes_follow_the_ucwa_session() {
        assert_eq!(Lane::of_kind("token", false), Lane::SignIn);
        assert_eq!(Lane::of_kind("anything", true), Lane::Feed);
        assert_eq!(
            Lane::of_kind("participantMessaging", false),
            Lane::Messaging
        );
        assert_eq!(Lane::of_kind("accept", false), Lane::Conversation);
        assert_eq!(Lane::of_kind("makeMeAvailable", false), Lane::Application);
        assert_eq!(Lane::of_kind("other", false), Lane::Other);
    }

    #[test]
    fn paths_dim_the_application_prefix_and_name_people() {
        let mut h = Html::default();
        path_html(
            &mut h,
            "/ucwa/oauth/v1/applications/779/communication/conversations/a2c8",
            Some("x=<1>"),
        );
        assert_eq!(
            h.as_str(),
            "<span class=\"pfx\">/ucwa/oauth/v1/applications/779</span>/communication/conversations/a2c8<span class=\"q\">?x=&lt;1&gt;</span>"
        );
        let mut h = Html::default();
        path_html(&mut h, "/ucwa/oauth/v1/applications/779", None);
        assert_eq!(h.as_str(), "/ucwa/oauth/v1/applications/779");
        assert_eq!(
            person_of(
                "/u/applications/1/communication/conversations/a/participants/bob@contoso.com/messaging"
            ),
            "bob@contoso.com"
        );
        assert_eq!(
            short_href("/ucwa/oauth/v1/applications/779/me/presence"),
            "/me/presence"
        );
        assert_eq!(status_class(Some(204)), "s2");
        assert_eq!(status_class(None), "sx");
    }
}
