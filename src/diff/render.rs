//! Printing a [`DiffReport`]: readable text or JSON.
//!
//! # Text
//! One line per difference, grouped by exchange, then the events, then the summary:
//! ```text
//! GET …/participants/196/messaging #2: status: 200 → 500
//! GET …/participants/196/messaging #2: body /_links/participant/href: "…/participants/196" → "…/participants/197"
//! POST …/messaging/messages #1: only in B (seq 31, status 201)
//! event 7 (ack 4 → ack 5): conversation participantMessaging updated: /type: "updated" → "deleted"
//! event +8 (B ack 5, seq 40): conversation message completed …/messages/2
//! events feed: A's 6 and B's 7 requests compared as one event sequence, not paired
//! different: paired 30, equal 29, changed 1, added 1, removed 0; events: A 12, B 13, equal 11, changed 1, added 1, removed 0
//! ```
//! `#N` counts requests with the same alignment key from 1. Paths and hrefs are shortened to
//! the part after what both sides share. Colours (removed red, added green, changed yellow)
//! are written as ANSI sequences; give the output to `anstream` so that they are stripped
//! when stdout is not a terminal or `NO_COLOR` is set.
//!
//! # JSON (`--format json`), schema `ucwa-replay.diff/1`
//! ```text
//! {
//!   "schema": "ucwa-replay.diff/1",
//!   "a": {"label": "a.sqlite#s1", "exchanges": 30, "feed_exchanges": 6},
//!   "b": {…same…},
//!   "normalized": true,
//!   "equal": false,
//!   "summary": {"paired": 30, "equal": 29, "changed": 1, "added": 0, "removed": 0,
//!               "events": {"a": 12, "b": 13, "equal": 11, "changed": 1, "added": 1, "removed": 0,
//!                          "feed_errors_a": {}, "feed_errors_b": {"404": 1}}},
//!   "verify": {"upstream": "https://fe1…", "session": "s-verify-…", "sent": 30,
//!              "answered": 28, "held": 1,
//!              "failed": [{"seq": 9, "method": "GET", "target": "/ucwa/…", "error": "…"}]},
//!              (verify only)
//!   "exchanges": [ {
//!       "kind": "changed" | "added" | "removed",
//!       "method": "GET", "resource": "participantMessaging", "representation": "json",
//!       "key": "GET /ucwa/…/participants/{part1}/messaging json -", "ordinal": 1,
//!       "a": {"seq": 12, "target": "/ucwa/…?x=1", "status": 200} | null,
//!       "b": {…} | null,
//!       "changes": [ {"part": "status" | "header" | "body",
//!                     "path": "/_links/participant/href",
//!                     "kind": "changed" | "added" | "removed",
//!                     "a": "\"/ucwa/…/participants/196\"" | null,
//!                     "b": "\"/ucwa/…/participants/197\"" | null} ] } ],
//!   "events": [ {
//!       "kind": "changed" | "added" | "removed",
//!       "a": {"index": 7, "seq": 20, "ack": 4, "sender_rel": "conversation",
//!             "link_rel": "participantMessaging", "link_href": "…", "in_rel": "participant",
//!             "type": "updated", "status": null} | null,
//!       "b": {…} | null,
//!       "changes": [ {"part": "event", "path": "/type", …} ] } ]
//! }
//! ```
//! `path` is `""` for status, the lower-case header name for headers, a JSON pointer, an XML
//! path (`/resource/link[@rel=participant]/@href`), `/line/N` (text) or `""` (whole body) for
//! bodies, a pointer into the event envelope for events. `a`/`b` values are JSON text for JSON
//! bodies and quoted strings otherwise. Members are only ever added in later versions of the
//! same schema.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::{Change, ChangeKind, DiffReport, EventDiff, ExchangeDiff};

fn style(kind: ChangeKind) -> Style {
    let color = match kind {
        ChangeKind::Changed => AnsiColor::Yellow,
        ChangeKind::Added => AnsiColor::Green,
        ChangeKind::Removed => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into()))
}

/// Write the report as JSON (pretty, trailing newline).
pub fn write_json(report: &DiffReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}

/// Write the report as text; `color` adds ANSI styles.
pub fn write_text(report: &DiffReport, out: &mut dyn Write, color: bool) -> io::Result<()> {
    let paint = |s: Style| if color { s } else { Style::new() };
    let bold = paint(Style::new().bold());
    writeln!(out, "{bold}A{bold:#}: {}", report.a.label)?;
    writeln!(out, "{bold}B{bold:#}: {}", report.b.label)?;
    for ex in &report.exchanges {
        write_exchange(ex, out, &paint)?;
    }
    for ev in &report.events {
        write_event(ev, out, &paint)?;
    }
    let e = &report.summary.events;
    if e.feed_errors_a != e.feed_errors_b {
        let s = paint(style(ChangeKind::Changed));
        let show = |m: &std::collections::BTreeMap<u16, usize>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} ×{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        writeln!(
            out,
            "{bold}events feed{bold:#}: error answers: {s}{} → {}{s:#}",
            show(&e.feed_errors_a),
            show(&e.feed_errors_b)
        )?;
    }
    let (fa, fb) = (report.a.feed_exchanges, report.b.feed_exchanges);
    if fa + fb > 0 {
        // Otherwise "paired 6" of a 9-exchange session reads like 3 went missing.
        let requests = if fa.max(fb) == 1 {
            "request"
        } else {
            "requests"
        };
        writeln!(
            out,
            "events feed: A's {fa} and B's {fb} {requests} compared as one event sequence, not paired"
        )?;
    }
    if let Some(verify) = &report.verify {
        let s = if verify.failed.is_empty() {
            Style::new()
        } else {
            paint(style(ChangeKind::Removed))
        };
        writeln!(out, "{s}{verify}{s:#}")?;
    }
    let verdict = if report.equal {
        paint(style(ChangeKind::Added))
    } else {
        paint(style(ChangeKind::Removed))
    };
    writeln!(
        out,
        "{verdict}{}{verdict:#}: {}",
        if report.equal { "equal" } else { "different" },
        report.summary()
    )
}

/// Long hrefs cut to their last two segments (`"…/participants/196"`), or, when those are
/// the same on both sides, to the part from the last segment both share before they differ.
fn shorten_pair(a: &str, b: &str) -> (String, String) {
    let (Some(ia), Some(ib)) = (unquote(a), unquote(b)) else {
        return (a.to_string(), b.to_string());
    };
    let sa: Vec<&str> = ia.split('/').collect();
    let sb: Vec<&str> = ib.split('/').collect();
    if sa.len() < 4 || sb.len() < 4 {
        return (a.to_string(), b.to_string());
    }
    let (ta, tb) = (&sa[sa.len() - 2..], &sb[sb.len() - 2..]);
    if ta != tb {
        return (
            format!("\"…/{}\"", ta.join("/")),
            format!("\"…/{}\"", tb.join("/")),
        );
    }
    let common = sa.iter().zip(&sb).take_while(|(x, y)| x == y).count();
    let keep_from = common.saturating_sub(1).min(sa.len() - 1).min(sb.len() - 1);
    if keep_from <= 1 {
        return (a.to_string(), b.to_string());
    }
    (
        format!("\"…/{}\"", sa[keep_from..].join("/")),
        format!("\"…/{}\"", sb[keep_from..].join("/")),
    )
}

fn unquote(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    (inner.starts_with('/') || inner.starts_with("http")).then_some(inner)
}

/// A path cut to its last two segments.
fn short_path(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    if segs.len() <= 4 {
        path.to_string()
    } else {
        format!("…/{}", segs[segs.len() - 2..].join("/"))
    }
}

fn change_text(c: &Change, paint: &dyn Fn(Style) -> Style) -> String {
    let s = paint(style(c.kind));
    let what = if c.path.is_empty() {
        c.part.as_str().to_string()
    } else {
        format!("{} {}", c.part.as_str(), c.path)
    };
    let what = if c.part == super::Part::Event {
        c.path.clone()
    } else {
        what
    };
    match (c.kind, &c.a, &c.b) {
        (ChangeKind::Changed, Some(a), Some(b)) => {
            let (a, b) = shorten_pair(a, b);
            format!("{what}: {s}{a} → {b}{s:#}")
        }
        (ChangeKind::Added, _, Some(b)) => format!("{what}: {s}added {b}{s:#}"),
        (ChangeKind::Removed, Some(a), _) => format!("{what}: {s}removed {a}{s:#}"),
        (kind, _, _) => format!("{what}: {s}{}{s:#}", kind.as_str()),
    }
}

fn write_exchange(
    ex: &ExchangeDiff,
    out: &mut dyn Write,
    paint: &dyn Fn(Style) -> Style,
) -> io::Result<()> {
    let side = ex.a.as_ref().or(ex.b.as_ref());
    let path = side
        .map(|r| r.target.split('?').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let bold = paint(Style::new().bold());
    let label = format!(
        "{bold}{} {} #{}{bold:#}",
        ex.method,
        short_path(&path),
        ex.ordinal + 1
    );
    match ex.kind {
        ChangeKind::Changed => {
            for c in &ex.changes {
                writeln!(out, "{label}: {}", change_text(c, paint))?;
            }
        }
        kind => {
            let s = paint(style(kind));
            let (which, r) = if kind == ChangeKind::Added {
                ("B", ex.b.as_ref())
            } else {
                ("A", ex.a.as_ref())
            };
            let detail = r
                .map(|r| {
                    let status = r.status.map_or("none".to_string(), |s| s.to_string());
                    format!(" (seq {}, status {status})", r.seq)
                })
                .unwrap_or_default();
            writeln!(out, "{label}: {s}only in {which}{detail}{s:#}")?;
        }
    }
    Ok(())
}

fn ack(a: Option<i64>) -> String {
    a.map_or("?".into(), |n| n.to_string())
}

fn write_event(
    ev: &EventDiff,
    out: &mut dyn Write,
    paint: &dyn Fn(Style) -> Style,
) -> io::Result<()> {
    let bold = paint(Style::new().bold());
    match (ev.kind, &ev.a, &ev.b) {
        (ChangeKind::Changed, Some(a), Some(b)) => {
            let label = format!(
                "{bold}event {} (ack {} → ack {}){bold:#}: {} {} {}",
                a.index + 1,
                ack(a.ack),
                ack(b.ack),
                a.sender_rel,
                a.link_rel,
                a.event_type
            );
            for c in &ev.changes {
                writeln!(out, "{label}: {}", change_text(c, paint))?;
            }
        }
        (kind, a, b) => {
            let s = paint(style(kind));
            let (sign, which, r) = match (a, b) {
                (_, Some(b)) if kind == ChangeKind::Added => ("+", "B", b),
                (Some(a), _) => ("-", "A", a),
                (_, Some(b)) => ("+", "B", b),
                (None, None) => return Ok(()),
            };
            writeln!(
                out,
                "{bold}event {sign}{} ({which} ack {}, seq {}){bold:#}: {s}{} {} {} {} ({} only in {which}){s:#}",
                r.index + 1,
                ack(r.ack),
                r.seq,
                r.sender_rel,
                r.link_rel,
                r.event_type,
                short_path(&r.link_href),
                kind.as_str()
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_are_cut_after_the_shared_part() {
        let (a, b) = shorten_pair(
            "\"/ucwa/oauth/v1/applications/105/conversations/1/participants/196\"",
            "\"/ucwa/oauth/v1/applications/105/conversations/1/participants/197\"",
        );
        assert_eq!(a, "\"…/participants/196\"");
        assert_eq!(b, "\"…/participants/197\"");
        assert_eq!(
            shorten_pair("\"x\"", "\"y\""),
            ("\"x\"".into(), "\"y\"".into())
        );
        let (a, b) = shorten_pair(
            "\"/u/v/conversations/1/participants/x\"",
            "\"/u/v/conversations/2/participants/x\"",
        );
        assert_eq!(
            (a.as_str(), b.as_str()),
            (
                "\"…/conversations/1/participants/x\"",
                "\"…/conversations/2/participants/x\""
            )
        );
        assert_eq!(short_path("/ucwa/oauth/v1/a/b"), "…/a/b");
    }
}
