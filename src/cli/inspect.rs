//! `ucwa-replay sessions|show|events`: read-only views of a recording.
//!
//! Text output is a plain table (no colours, no borders, control characters in recorded
//! values escaped as `\n`, `\u{1b}`); `--format json` prints one JSON
//! array of objects on stdout:
//! - `sessions`: `name`, `upstream`, `also_upstreams`, `started_at`, `ended_at`,
//!   `tool_version`, `exchanges`, `events`;
//! - `show`: `seq`, `method`, `path`, `query`, `status` (null without a response), `kind`,
//!   `representation`, `duration_ms`, `error`, `request_truncated`, `response_truncated`,
//!   `credential`, `events`;
//! - `events`: `seq` (of the feed exchange), `feed_path`, `ack`, `position`, `sender_rel`,
//!   `sender_href`, `type`, `link_rel`, `link_href`, `link_title`, `in_rel`, `in_href`,
//!   `status`.
//!
//! A missing, foreign, damaged or newer file and an unknown session are refused by the store
//! with one line (exit 2); the file is opened read-only.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::{CellAlignment, Table, presets};
use serde::Serialize;
use ucwa_replay::store::Recording;

use super::text::{plural, printable};
use super::{Ctx, OutputFormat};

const DEFAULT_DB: &str = "recordings/ucwa.sqlite";

#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    /// The recording file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Output format.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// The arguments of `show` and `events`: one session of a recording.
#[derive(Debug, clap::Args)]
pub struct SessionViewArgs {
    /// The recording file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// The session (optional when the file holds one).
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Output format.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub type ShowArgs = SessionViewArgs;
pub type EventsArgs = SessionViewArgs;

/// One row of `show --format json`.
#[derive(Debug, Serialize)]
struct ExchangeRow<'a> {
    seq: u64,
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    status: Option<u16>,
    kind: &'a str,
    representation: &'static str,
    duration_ms: f64,
    error: Option<&'a str>,
    request_truncated: bool,
    response_truncated: bool,
    credential: Option<&'a str>,
    events: usize,
}

/// One row of `events --format json`.
#[derive(Debug, Serialize)]
struct EventOut<'a> {
    seq: u64,
    feed_path: &'a str,
    ack: Option<i64>,
    position: u32,
    sender_rel: &'a str,
    sender_href: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    link_rel: &'a str,
    link_href: &'a str,
    link_title: Option<&'a str>,
    in_rel: Option<&'a str>,
    in_href: Option<&'a str>,
    status: Option<&'a str>,
}

pub async fn sessions(a: SessionsArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let rec = Recording::open(&a.db)?;
    let sessions = rec.sessions()?;
    match a.format {
        OutputFormat::Json => print_json(&sessions)?,
        OutputFormat::Text => {
            let rows = sessions.iter().map(|s| {
                vec![
                    s.name.clone(),
                    s.upstream.clone(),
                    s.started_at.clone(),
                    s.exchanges.to_string(),
                    s.events.to_string(),
                ]
            });
            print_table(
                &["SESSION", "UPSTREAM", "STARTED", "EXCHANGES", "EVENTS"],
                &[3, 4],
                rows,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(a: ShowArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let rec = Recording::open(&a.db)?;
    let session = rec.session(a.session.as_deref())?;
    let exchanges = rec.exchanges(&session)?;
    match a.format {
        OutputFormat::Json => {
            let rows: Vec<ExchangeRow<'_>> = exchanges
                .iter()
                .map(|e| ExchangeRow {
                    seq: e.seq,
                    method: &e.method,
                    path: &e.path,
                    query: e.query.as_deref(),
                    status: e.status,
                    kind: e.kind.as_str(),
                    representation: e.representation.as_str(),
                    duration_ms: e.duration_us as f64 / 1000.0,
                    error: e.error.as_deref(),
                    request_truncated: e.request_truncated,
                    response_truncated: e.response_truncated,
                    credential: e.credential.as_deref(),
                    events: e.events.len(),
                })
                .collect();
            print_json(&rows)?;
        }
        OutputFormat::Text => {
            let rows = exchanges.iter().map(|e| {
                let mut note = Vec::new();
                if let Some(err) = &e.error {
                    note.push(format!("error: {err}"));
                }
                if e.request_truncated {
                    note.push("request truncated".into());
                }
                if e.response_truncated {
                    note.push("response truncated".into());
                }
                if !e.events.is_empty() {
                    note.push(plural(e.events.len() as u64, "event"));
                }
                vec![
                    e.seq.to_string(),
                    e.method.clone(),
                    e.path_and_query(),
                    e.status.map_or_else(|| "-".to_string(), |s| s.to_string()),
                    e.kind.to_string(),
                    format!("{:.1}", e.duration_us as f64 / 1000.0),
                    note.join("; "),
                ]
            });
            print_table(
                &["SEQ", "METHOD", "PATH", "STATUS", "KIND", "MS", "NOTE"],
                &[0, 5],
                rows,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn events(a: EventsArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let rec = Recording::open(&a.db)?;
    let session = rec.session(a.session.as_deref())?;
    let timeline = rec.timeline(&session)?;
    match a.format {
        OutputFormat::Json => {
            let rows: Vec<EventOut<'_>> = timeline
                .iter()
                .map(|t| EventOut {
                    seq: t.seq,
                    feed_path: &t.feed_path,
                    ack: t.event.ack,
                    position: t.event.position,
                    sender_rel: &t.event.sender_rel,
                    sender_href: &t.event.sender_href,
                    event_type: &t.event.event_type,
                    link_rel: &t.event.link_rel,
                    link_href: &t.event.link_href,
                    link_title: t.event.link_title.as_deref(),
                    in_rel: t.event.in_rel.as_deref(),
                    in_href: t.event.in_href.as_deref(),
                    status: t.event.status.as_deref(),
                })
                .collect();
            print_json(&rows)?;
        }
        OutputFormat::Text => {
            let rows = timeline.iter().map(|ev| {
                let e = &ev.event;
                vec![
                    ev.seq.to_string(),
                    e.ack.map_or_else(|| "-".to_string(), |a| a.to_string()),
                    e.sender_rel.clone(),
                    e.event_type.clone(),
                    e.link_rel.clone(),
                    e.link_href.clone(),
                    e.in_rel.clone().unwrap_or_else(|| "-".into()),
                    e.status.clone().unwrap_or_default(),
                ]
            });
            print_table(
                &[
                    "SEQ", "ACK", "SENDER", "TYPE", "REL", "HREF", "IN", "STATUS",
                ],
                &[0, 1],
                rows,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Print a borderless table (columns separated by two spaces, never wrapped, never
/// coloured), the `right` columns right-aligned.
fn print_table(
    header: &[&str],
    right: &[usize],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> std::io::Result<()> {
    // Recorded values reach the terminal: an ESC or a newline in them is escaped.
    let mut rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| {
            row.iter()
                .map(|cell| printable(cell).into_owned())
                .collect()
        })
        .collect();
    let mut t = Table::new();
    t.load_style(presets::NOTHING).set_header(header.to_vec());
    // On a terminal the widest column (a path) is shortened in the middle so that each row
    // stays one line of the terminal's width; piped, rows stay whole for grep and cut.
    if let Some(width) = std::io::stdout().is_terminal().then(|| t.width()).flatten() {
        fit(header, &mut rows, usize::from(width));
    }
    t.force_no_tty();
    for row in rows {
        t.add_row(row);
    }
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = std::io::stdout().lock();
    for line in t.lines() {
        let line = line.strip_prefix(' ').unwrap_or(&line);
        writeln!(out, "{}", line.trim_end())?;
    }
    out.flush()
}

/// Shorten the widest column's cells in the middle (`/ucwa/oauth/v1/app…/messaging`) so that
/// a table without borders fits `width`; nothing when even that would leave it too narrow.
fn fit(header: &[&str], rows: &mut [Vec<String>], width: usize) {
    let chars = |s: &str| s.chars().count();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| chars(c))
                .chain([chars(header[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Each cell is padded by one space on both sides; the line's first and last are cut.
    let total: usize = widths
        .iter()
        .map(|w| w + 2)
        .sum::<usize>()
        .saturating_sub(2);
    let Some((widest, &w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
        return;
    };
    if total <= width {
        return;
    }
    let room = w.saturating_sub(total - width);
    if room < 16 || room < chars(header[widest]) {
        return;
    }
    for row in rows.iter_mut() {
        if let Some(cell) = row.get_mut(widest)
            && chars(cell) > room
        {
            *cell = middle_ellipsis(cell, room);
        }
    }
}

/// `text` cut to `room` characters by replacing its middle with `…`.
fn middle_ellipsis(text: &str, room: usize) -> String {
    let keep = room.saturating_sub(1);
    let head = keep / 2;
    let tail = keep - head;
    let count = text.chars().count();
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widest_column_is_cut_in_the_middle_to_fit() {
        let header = ["SEQ", "PATH", "STATUS"];
        let long = "/ucwa/oauth/v1/applications/779/communication/conversations/a2c8/messaging";
        let mut rows = vec![
            vec!["1".to_string(), long.to_string(), "200".to_string()],
            vec!["2".to_string(), "/short".to_string(), "204".to_string()],
        ];
        fit(&header, &mut rows, 60);
        let line_width =
            |r: &Vec<String>| r.iter().map(|c| c.chars().count() + 2).sum::<usize>() - 2;
        assert!(rows.iter().all(|r| line_width(r) <= 60), "{rows:?}");
        assert!(rows[0][1].starts_with("/ucwa/oauth/v1/"), "{}", rows[0][1]);
        assert!(rows[0][1].ends_with("a2c8/messaging"), "{}", rows[0][1]);
        assert!(rows[0][1].contains('…'));
        assert_eq!(rows[1][1], "/short");
    }

    #[test]
    fn a_table_that_fits_or_cannot_be_helped_is_left_alone() {
        let header = ["A", "B"];
        let mut rows = vec![vec!["x".repeat(30), "y".repeat(30)]];
        let before = rows.clone();
        fit(&header, &mut rows, 80);
        assert_eq!(rows, before, "fits");
        fit(&header, &mut rows, 40);
        assert_eq!(rows, before, "the cut column would be under 16 characters");
    }
}
