//! The events feed as it was delivered: a track per participantMessaging link (added →
//! updated → deleted, on the session's time axis), then every batch by ack with each event's
//! sender rel, type, link rel and href, and `in` rel.

use super::escape::Html;
use super::format;
use super::timeline::{Scale, event_class};
use crate::recording::{EventRow, Exchange};

/// The rel whose life the tracks follow (docs/UCWA.md, "participantMessaging").
pub const TRACKED_REL: &str = "participantMessaging";

const LIFE_W: f64 = 400.0;
/// Events listed per track; a resource that lives long shows the rest in its batches.
const CHIPS_SHOWN: usize = 12;
const LIFE_H: f64 = 22.0;

/// One event of a tracked link, with the answer that delivered it.
#[derive(Debug, Clone)]
pub struct TrackEvent<'a> {
    pub event: &'a EventRow,
    /// `seq` of the events-feed exchange.
    pub seq: u64,
    /// When the answer was sent (µs since the epoch).
    pub at_us: i64,
}

/// The life of one participantMessaging resource.
#[derive(Debug, Clone)]
pub struct Track<'a> {
    pub href: &'a str,
    pub events: Vec<TrackEvent<'a>>,
}

impl Track<'_> {
    /// Whether the last event deleted it.
    pub fn ended(&self) -> bool {
        self.events
            .last()
            .is_some_and(|e| e.event.event_type == "deleted")
    }
}

/// The tracks of every link with `rel`, in order of first appearance.
pub fn tracks<'a>(exchanges: &'a [Exchange], rel: &str) -> Vec<Track<'a>> {
    let mut out: Vec<Track<'a>> = Vec::new();
    for x in exchanges.iter().filter(|x| x.is_events()) {
        for e in x.events.iter().filter(|e| e.link_rel == rel) {
            let te = TrackEvent {
                event: e,
                seq: x.seq,
                at_us: x.ended_us(),
            };
            match out.iter_mut().find(|t| t.href == e.link_href) {
                Some(t) => t.events.push(te),
                None => out.push(Track {
                    href: &e.link_href,
                    events: vec![te],
                }),
            }
        }
    }
    out
}

pub fn render(h: &mut Html, exchanges: &[Exchange]) {
    let feed: Vec<&Exchange> = exchanges.iter().filter(|x| x.is_events()).collect();
    let events: usize = feed.iter().map(|x| x.events.len()).sum();
    let t0 = exchanges.iter().map(|x| x.started_us).min().unwrap_or(0);
    h.raw("<section class=\"card\" id=\"feed\"><h2>Events feed<span class=\"count\">")
        .num(feed.len())
        .raw(" P-GETs · ")
        .num(events)
        .raw(" events</span></h2>");
    if feed.is_empty() {
        h.raw("<p class=\"muted\">This session has no events-feed request.</p></section>");
        return;
    }
    let scale = Scale::of_session(exchanges, 4.0, LIFE_W - 8.0);
    let tracks = tracks(exchanges, TRACKED_REL);
    h.raw("<h3 id=\"tracks\">participantMessaging</h3>");
    if tracks.is_empty() {
        h.raw("<p class=\"muted\">No participantMessaging event in this session.</p>");
    } else {
        render_tracks(h, &tracks, &scale, t0);
    }
    render_batches(h, &feed, t0);
    h.raw("</section>");
}

fn render_tracks(h: &mut Html, tracks: &[Track<'_>], scale: &Scale, t0: i64) {
    h.raw("<table class=\"track\"><thead><tr><th>participant</th><th>over the session</th><th>events</th></tr></thead><tbody>");
    for t in tracks {
        let first = &t.events[0];
        h.raw("<tr class=\"pm-track\"")
            .attr("data-href", t.href)
            .raw("><td class=\"who\"")
            .attr("title", t.href)
            .raw(">")
            .text(format::person_of(t.href))
            .raw("<br><span class=\"muted\">in ")
            .text(first.event.in_rel.as_deref().unwrap_or("—"))
            .raw(if t.ended() {
                " · ended"
            } else {
                " · still on at the end"
            })
            .raw("</span></td><td class=\"life-cell\">");
        lifeline(h, t, scale, t0);
        h.raw("</td><td><ol class=\"chips\">");
        for e in t.events.iter().take(CHIPS_SHOWN) {
            h.raw("<li><span")
                .attr("class", &format!("ty {}", event_class(&e.event.event_type)))
                .raw(">")
                .text(&e.event.event_type)
                .raw("</span><small><a")
                .attr("href", &format!("#x-{}", e.seq))
                .raw(">ack ")
                .text(&e.event.ack.map_or("?".into(), |a| a.to_string()))
                .raw("</a> ")
                .text(&format::offset(e.at_us - t0))
                .raw("</small></li>");
        }
        if t.events.len() > CHIPS_SHOWN {
            h.raw("<li><small>… ")
                .num(t.events.len() - CHIPS_SHOWN)
                .raw(" more in the batches below</small></li>");
        }
        h.raw("</ol></td></tr>");
    }
    h.raw("</tbody></table>");
}

/// A small SVG on the session's time axis: a line while the resource exists, a dot per event.
fn lifeline(h: &mut Html, t: &Track<'_>, scale: &Scale, t0: i64) {
    let mid = LIFE_H / 2.0;
    h.raw("<svg class=\"tl life-svg\" xmlns=\"http://www.w3.org/2000/svg\"")
        .attr("viewBox", &format!("0 0 {LIFE_W} {LIFE_H}"))
        .raw("><line class=\"life\"")
        .attr("x1", &format!("{:.1}", scale.x0))
        .attr("x2", &format!("{:.1}", scale.x0 + scale.width))
        .attr("y1", &format!("{mid}"))
        .attr("y2", &format!("{mid}"))
        .raw("/>");
    let start = t.events.first().map(|e| e.at_us).unwrap_or(scale.t0);
    let end = if t.ended() {
        t.events.last().map(|e| e.at_us).unwrap_or(start)
    } else {
        scale.t0 + scale.span
    };
    h.raw("<line class=\"life on\"")
        .attr("x1", &format!("{:.1}", scale.x(start)))
        .attr(
            "x2",
            &format!("{:.1}", scale.x(end).max(scale.x(start) + 1.0)),
        )
        .attr("y1", &format!("{mid}"))
        .attr("y2", &format!("{mid}"))
        .raw("/>");
    let mut last_dot: Option<(i64, &str)> = None;
    for e in &t.events {
        // One dot per pixel and type: a long-lived resource stays a light drawing.
        let px = scale.x(e.at_us).round() as i64;
        if last_dot == Some((px, e.event.event_type.as_str())) {
            continue;
        }
        last_dot = Some((px, e.event.event_type.as_str()));
        h.raw("<a")
            .attr("href", &format!("#x-{}", e.seq))
            .raw("><title>")
            .text(&format!(
                "{} · ack {} · #{} · {}",
                e.event.event_type,
                e.event.ack.map_or("?".into(), |a| a.to_string()),
                e.seq,
                format::offset(e.at_us - t0)
            ))
            .raw("</title><circle")
            .attr(
                "class",
                &format!("dot {}", event_class(&e.event.event_type)),
            )
            .attr("cx", &format!("{:.1}", scale.x(e.at_us)))
            .attr("cy", &format!("{mid}"))
            .attr("r", "5")
            .raw("/></a>");
    }
    h.raw("</svg>");
}

/// Batches built with the page; the others are folded (see [`super::page::lazy_open`]).
pub const BATCHES_SHOWN: usize = 100;

fn render_batches(h: &mut Html, feed: &[&Exchange], t0: i64) {
    h.raw("<h3 id=\"batches\">Batches by ack</h3>");
    let (shown, folded) = feed.split_at(feed.len().min(BATCHES_SHOWN));
    batches_table(h, shown, t0);
    if !folded.is_empty() {
        super::page::lazy_open(
            h,
            &format!(
                "{} more batches are folded to keep the page fast.",
                folded.len()
            ),
            None,
        );
        batches_table(h, folded, t0);
        super::page::lazy_close(h);
    }
}

fn batches_table(h: &mut Html, feed: &[&Exchange], t0: i64) {
    h.raw("<table class=\"feed\"><colgroup><col class=\"c-ack\"><col class=\"c-sender\"><col class=\"c-type\"><col class=\"c-rel\"><col><col class=\"c-in\"><col class=\"c-status\"></colgroup><thead><tr><th>ack</th><th>sender</th><th>type</th><th>link rel</th><th>href</th><th>in</th><th>status</th></tr></thead>");
    for x in feed {
        let ack = crate::ucwa::feed::ack_of(x.query.as_deref());
        let empty = x.events.is_empty();
        h.raw("<tbody")
            .attr("class", if empty { "batch empty" } else { "batch" })
            .raw("><tr class=\"bh\"><td colspan=\"7\"><a")
            .attr("href", &format!("#x-{}", x.seq))
            .raw(">ack ")
            .text(&ack.map_or("?".into(), |a| a.to_string()))
            .raw("</a> · #")
            .num(x.seq)
            .raw(" · ")
            .text(&format::offset(x.started_us - t0))
            .raw(" · held ")
            .text(&format::duration(x.duration_us))
            .raw(" · <span")
            .attr("class", &format!("st {}", format::status_class(x.status)))
            .raw(">")
            .text(&format::status_text(x.status))
            .raw("</span> · ");
        if empty {
            if format::is_error(x) {
                let why = x
                    .error
                    .clone()
                    .or_else(|| super::summary::ucwa_error(x))
                    .unwrap_or_else(|| "failed".into());
                h.raw("<span class=\"badge err\">")
                    .text(&why)
                    .raw("</span>");
            } else {
                h.raw("no events");
            }
        } else {
            h.num(x.events.len()).raw(if x.events.len() == 1 {
                " event"
            } else {
                " events"
            });
        }
        h.raw("</td></tr>");
        for e in &x.events {
            h.raw("<tr><td class=\"muted\">")
                .text(&e.ack.map_or(String::new(), |a| a.to_string()))
                .raw("</td><td>")
                .text(&e.sender_rel)
                .raw("</td><td><span")
                .attr("class", &format!("ty {}", event_class(&e.event_type)))
                .raw(">")
                .text(&e.event_type)
                .raw("</span></td><td>")
                .text(&e.link_rel)
                .raw("</td><td class=\"href\"")
                .attr("title", &e.link_href)
                .raw(">")
                .text(format::short_href(&e.link_href))
                .raw("</td><td>")
                .text(e.in_rel.as_deref().unwrap_or(""))
                .raw("</td><td>")
                .text(e.status.as_deref().unwrap_or(""))
                .raw("</td></tr>");
        }
        h.raw("</tbody>");
    }
    h.raw("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{EventRow, Exchange};

    fn answer(seq: u64, events: &[(&str, &str)]) -> Exchange {
        Exchange {
            seq,
            started_us: seq as i64 * 100,
            duration_us: 50,
            method: "GET".into(),
            path: "/ucwa/oauth/v1/applications/1/events".into(),
            kind: "events".into(),
            status: Some(200),
            events: events
                .iter()
                .map(|(href, ty)| EventRow {
                    link_rel: TRACKED_REL.into(),
                    link_href: href.to_string(),
                    event_type: ty.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_track_follows_one_link_through_its_batches() {
        let xs = [
            answer(
                1,
                &[("/p/bob/messaging", "added"), ("/p/eve/messaging", "added")],
            ),
            answer(2, &[("/p/bob/messaging", "updated")]),
            answer(3, &[("/p/bob/messaging", "deleted")]),
        ];
        let tracks = tracks(&xs, TRACKED_REL);
        assert_eq!(tracks.len(), 2);
        assert_eq!(tracks[0].href, "/p/bob/messaging");
        let types: Vec<(&str, u64, i64)> = tracks[0]
            .events
            .iter()
            .map(|e| (e.event.event_type.as_str(), e.seq, e.at_us))
            .collect();
        assert_eq!(
            types,
            [("added", 1, 150), ("updated", 2, 250), ("deleted", 3, 350)]
        );
        assert!(tracks[0].ended());
        assert!(!tracks[1].ended());
    }
}
