//! The page of one session: summary, replay findings (when a report is given), timeline,
//! events feed, and every exchange.

use super::escape::Html;
use super::overlay::{self, ReplayOverlay};
use super::page::{self, Head};
use super::source::{self, SessionView};
use super::{exchanges, feed, summary, timeline};
use crate::store::{Exchange, SessionInfo};

/// The HTML page of a session. `recording` names the file it came from; `replay` lays a
/// replay's report over it.
pub fn session_page(
    recording: &str,
    session: &SessionInfo,
    exchanges: &[Exchange],
    replay: Option<&ReplayOverlay>,
) -> String {
    let session = SessionView::of(session);
    let views = source::views(exchanges);
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
    summary::render(&mut h, &session, recording, &views);
    let flags = replay.map(ReplayOverlay::flags).unwrap_or_default();
    let notes = replay.map(ReplayOverlay::notes).unwrap_or_default();
    if let Some(r) = replay {
        overlay::render(&mut h, r);
    }
    h.raw("<section class=\"card\" id=\"timeline\"><h2>Timeline</h2>");
    if views.is_empty() {
        h.raw("<p class=\"muted\">No exchange recorded.</p>");
    } else {
        timeline::render(&mut h, &views, &flags);
    }
    h.raw("</section>");
    feed::render(&mut h, &views);
    exchanges::render(&mut h, &views, &notes);
    page::close(&mut h);
    h.into_string()
}
