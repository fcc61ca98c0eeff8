//! The page of one session: summary, replay findings (when a report is given), timeline,
//! events feed, and every exchange.

use super::escape::Html;
use super::overlay::{self, ReplayOverlay};
use super::page::{self, Head};
use super::{exchanges, feed, summary, timeline};
use crate::recording::{Exchange, SessionInfo};

/// The HTML page of a session. `recording` names the file it came from; `replay` lays a
/// replay's report over it.
pub fn session_page(
    recording: &str,
    session: &SessionInfo,
    exchanges: &[Exchange],
    replay: Option<&ReplayOverlay>,
) -> String {
    // Bodies dominate the size; leave room for markup.
    let bytes: usize = exchanges
        .iter()
        .map(|x| x.request_body.len() + x.response_body.len())
        .sum();
    let mut h = Html::with_capacity(64 * 1024 + bytes * 2 + exchanges.len() * 1500);
    let mut nav: Vec<(&str, &str)> = vec![("summary", "Summary")];
    if replay.is_some() {
        nav.push(("replay", "Replay"));
    }
    nav.extend([
        ("timeline", "Timeline"),
        ("feed", "Events feed"),
        ("tracks", "participantMessaging"),
        ("exchanges", "Exchanges"),
    ]);
    let title = format!("{} — ucwa-replay report", session.name);
    let sub = format!("{} · session {}", recording, session.name);
    page::open(
        &mut h,
        &Head {
            title: &title,
            heading: &format!("session {}", session.name),
            sub: &sub,
            nav: &nav,
        },
    );
    summary::render(&mut h, session, recording, exchanges);
    let flags = replay.map(ReplayOverlay::flags).unwrap_or_default();
    let notes = replay.map(ReplayOverlay::notes).unwrap_or_default();
    if let Some(r) = replay {
        overlay::render(&mut h, r);
    }
    h.raw("<section class=\"card\" id=\"timeline\"><h2>Timeline</h2>");
    if exchanges.is_empty() {
        h.raw("<p class=\"muted\">No exchange recorded.</p>");
    } else {
        timeline::render(&mut h, exchanges, &flags);
    }
    h.raw("</section>");
    feed::render(&mut h, exchanges);
    exchanges::render(&mut h, exchanges, &notes);
    page::close(&mut h);
    h.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::EventRow;

    fn info() -> SessionInfo {
        SessionInfo {
            id: 1,
            name: "s".into(),
            upstream: "https://fe1.contoso.com".into(),
            also_upstreams: vec![],
            started_at: "2026-01-01T00:00:00Z".into(),
            ended_at: None,
            tool_version: "0".into(),
            exchanges: 0,
            events: 0,
        }
    }

    fn exchange(seq: u64) -> Exchange {
        let feed = seq.is_multiple_of(10);
        Exchange {
            seq,
            started_us: seq as i64 * 1_000,
            duration_us: 500,
            method: "GET".into(),
            path: if feed {
                "/ucwa/oauth/v1/applications/1/events".into()
            } else {
                format!("/ucwa/oauth/v1/applications/1/x/{seq}")
            },
            status: Some(200),
            response_body: br#"{"a":"<b>"}"#.to_vec(),
            kind: if feed { "events" } else { "conversation" }.into(),
            events: if feed {
                vec![EventRow {
                    ack: Some(seq as i64),
                    sender_rel: "conversation".into(),
                    link_rel: "participantMessaging".into(),
                    link_href: format!("/c/participants/p{}/messaging", seq % 3),
                    event_type: ["added", "updated", "deleted"][(seq / 10 % 3) as usize].into(),
                    ..Default::default()
                }]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_session_still_makes_a_page() {
        let page = session_page("r.sqlite", &info(), &[], None);
        assert!(page.contains("No exchange recorded."));
        assert!(page.contains("This session has no events-feed request."));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn a_small_session_is_built_whole() {
        let xs: Vec<Exchange> = (1..=30).map(exchange).collect();
        let page = session_page("r.sqlite", &info(), &xs, None);
        assert!(!page.contains("<noscript"), "nothing folded");
        assert_eq!(page.matches("<details class=\"x ").count(), 30);
        assert_eq!(page.matches("<tr class=\"pm-track\"").count(), 3);
        assert!(
            page.contains("&quot;a&quot;: &quot;&lt;b&gt;&quot;"),
            "pretty JSON, escaped"
        );
    }

    #[test]
    fn a_large_session_folds_bodies_and_lines_beyond_the_first_page() {
        let xs: Vec<Exchange> = (1..=1_200).map(exchange).collect();
        let page = session_page("r.sqlite", &info(), &xs, None);
        // Lines 1-500 built, each body folded; lines 501-1000 and 1001-1200 in two blocks.
        assert_eq!(page.matches("<noscript class=\"xd-lazy\">").count(), 500);
        assert!(page.contains("data-lazy data-from=\"501\" data-to=\"1000\""));
        assert!(page.contains("data-lazy data-from=\"1001\" data-to=\"1200\""));
        // 120 feed answers: 100 batches built, 20 folded.
        assert!(page.contains("20 more batches are folded"));
        // Folded markup cannot close its <noscript> early: only the page's own tags.
        let opened = page.matches("<noscript").count();
        assert_eq!(opened, page.matches("</noscript>").count());
        assert_eq!(opened, 500 + 2 + 1);
    }
}
