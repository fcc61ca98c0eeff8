//! The summary at the top of a session's page: where and when it was recorded, how many
//! exchanges of which kind got which status, which failed, which representations and
//! credentials (as their redaction placeholders) the session used.

use std::collections::{BTreeMap, BTreeSet};

use super::body;
use super::escape::Html;
use super::format::{self, Lane};
use crate::recording::{Exchange, SessionInfo};

/// Where each redaction placeholder appears.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlaceholderUse {
    /// Exchanges holding it.
    pub exchanges: usize,
    /// Header names and `request body` / `response body` / `URL`.
    pub places: BTreeSet<String>,
}

/// Every placeholder of the session, by number.
pub fn placeholder_uses(exchanges: &[Exchange]) -> BTreeMap<u64, (String, PlaceholderUse)> {
    let mut out: BTreeMap<u64, (String, PlaceholderUse)> = BTreeMap::new();
    for x in exchanges {
        let mut seen_here = BTreeSet::new();
        let mut note = |s: &str, place: &str, seen_here: &mut BTreeSet<u64>| {
            for p in body::placeholders(s) {
                let n: u64 = p
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let entry = out
                    .entry(n)
                    .or_insert_with(|| (p.to_string(), PlaceholderUse::default()));
                entry.1.places.insert(place.to_string());
                if seen_here.insert(n) {
                    entry.1.exchanges += 1;
                }
            }
        };
        note(&x.path_and_query(), "URL", &mut seen_here);
        for (name, v) in x.request_headers.iter().chain(x.response_headers.iter()) {
            note(&String::from_utf8_lossy(v), name, &mut seen_here);
        }
        note(
            &String::from_utf8_lossy(&x.request_body),
            "request body",
            &mut seen_here,
        );
        note(
            &String::from_utf8_lossy(&x.response_body),
            "response body",
            &mut seen_here,
        );
    }
    out
}

fn kv(h: &mut Html, class: &str, key: &str, value: &str) {
    h.raw("<div")
        .attr("class", &format!("kv {class}"))
        .raw("><div class=\"k\">")
        .text(key)
        .raw("</div><div class=\"v\">")
        .text(value)
        .raw("</div></div>");
}

fn kv_big(h: &mut Html, class: &str, key: &str, value: &str) {
    h.raw("<div")
        .attr("class", &format!("kv {class}"))
        .raw("><div class=\"k\">")
        .text(key)
        .raw("</div><div class=\"v big\">")
        .text(value)
        .raw("</div></div>");
}

/// A 401's challenge, by its schemes (`challenge: Bearer, MsRtcOAuth`): the first step of
/// every sign-in, not a failure of the client.
fn challenge(x: &Exchange) -> Option<String> {
    if x.status != Some(401) {
        return None;
    }
    let schemes: Vec<&str> = x
        .response_headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .filter_map(|v| v.split_whitespace().next())
        .collect();
    (!schemes.is_empty()).then(|| format!("challenge: {}", schemes.join(", ")))
}

/// The UCWA error a failed answer carries (`Conflict/PGetReplaced`), when its body says.
pub fn ucwa_error(x: &Exchange) -> Option<String> {
    let body = crate::ucwa::media::strip_bom(&x.response_body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let code = v.get("code")?.as_str()?;
        return Some(match v.get("subcode").and_then(|s| s.as_str()) {
            Some(sub) => format!("{code}/{sub}"),
            None => code.to_string(),
        });
    }
    let text = std::str::from_utf8(body).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    let root = doc.root_element();
    if root.tag_name().name() != "reason" {
        return None;
    }
    let child = |n: &str| {
        root.children()
            .find(|c| c.tag_name().name() == n)
            .and_then(|c| c.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let code = child("code")?;
    Some(match child("subcode") {
        Some(sub) => format!("{code}/{sub}"),
        None => code.to_string(),
    })
}

pub fn render(h: &mut Html, session: &SessionInfo, recording: &str, exchanges: &[Exchange]) {
    let t0 = exchanges.iter().map(|x| x.started_us).min();
    let t1 = exchanges.iter().map(|x| x.ended_us()).max();
    let failed: Vec<&Exchange> = exchanges.iter().filter(|x| format::is_error(x)).collect();
    let events: usize = exchanges.iter().map(|x| x.events.len()).sum();
    let feed: Vec<&Exchange> = exchanges.iter().filter(|x| x.is_events()).collect();
    let longest_hold = feed.iter().map(|x| x.duration_us).max();
    let truncated = exchanges
        .iter()
        .filter(|x| x.request_truncated || x.response_truncated)
        .count();

    h.raw("<section class=\"card\" id=\"summary\"><h2>Summary</h2><div class=\"grid\">");
    kv_big(h, "", "exchanges", &exchanges.len().to_string());
    kv_big(h, "", "events", &events.to_string());
    kv_big(
        h,
        if failed.is_empty() { "ok" } else { "bad" },
        "failed requests",
        &failed.len().to_string(),
    );
    kv_big(
        h,
        "",
        "duration",
        &match (t0, t1) {
            (Some(a), Some(b)) => format::duration(b - a),
            _ => "—".into(),
        },
    );
    h.raw("</div><div class=\"grid\">");
    kv(h, "", "session", &session.name);
    let mut upstreams = session.upstream.clone();
    for also in &session.also_upstreams {
        upstreams.push_str(" · ");
        upstreams.push_str(also);
    }
    kv(h, "", "upstream", &upstreams);
    kv(
        h,
        "",
        "first request",
        &t0.map_or_else(|| session.started_at.clone(), format::wall_time),
    );
    kv(
        h,
        "",
        "last answer",
        &t1.map_or_else(
            || session.ended_at.clone().unwrap_or_default(),
            format::wall_time,
        ),
    );
    kv(
        h,
        "",
        "recorded",
        &format!(
            "{} → {}",
            session.started_at,
            session.ended_at.as_deref().unwrap_or("(not closed)")
        ),
    );
    kv(
        h,
        "",
        "events feed",
        &match longest_hold {
            Some(d) => format!(
                "{} P-GETs, longest hold {}",
                feed.len(),
                format::duration(d)
            ),
            None => "no P-GET".into(),
        },
    );
    let mut reprs: BTreeMap<&str, usize> = BTreeMap::new();
    for x in exchanges {
        *reprs.entry(x.representation.as_str()).or_default() += 1;
    }
    kv(
        h,
        "",
        "representations asked for",
        &reprs
            .iter()
            .map(|(r, n)| format!("{} {n}", r.to_uppercase()))
            .collect::<Vec<_>>()
            .join(" · "),
    );
    kv(
        h,
        if truncated > 0 { "warn" } else { "" },
        "truncated bodies",
        &truncated.to_string(),
    );
    kv(h, "", "recording", recording);
    kv(
        h,
        "",
        "written by",
        &format!("ucwa-replay {}", session.tool_version),
    );
    h.raw("</div>");

    h.raw("<div class=\"cols2\"><div>");
    by_kind(h, exchanges);
    h.raw("</div><div>");
    if !failed.is_empty() {
        failed_table(h, &failed, t0.unwrap_or(0));
    }
    credentials(h, exchanges);
    h.raw("</div></div></section>");
}

fn credentials(h: &mut Html, exchanges: &[Exchange]) {
    let mut creds: BTreeMap<&str, usize> = BTreeMap::new();
    for x in exchanges {
        if let Some(c) = x.credential.as_deref() {
            *creds.entry(c).or_default() += 1;
        }
    }
    let uses = placeholder_uses(exchanges);
    h.raw("<h3>Credentials and redacted values</h3>");
    if uses.is_empty() && creds.is_empty() {
        h.raw("<p class=\"muted\">No redaction placeholder in this session.</p>");
        return;
    }
    h.raw("<table><thead><tr><th>placeholder</th><th class=\"n\">as credential</th><th class=\"n\">exchanges</th><th>where</th></tr></thead><tbody>");
    for (placeholder, u) in uses.values() {
        let as_cred = creds.get(placeholder.as_str()).copied().unwrap_or(0);
        h.raw("<tr><td><mark class=\"ph\">")
            .text(placeholder)
            .raw("</mark></td><td class=\"n\">")
            .num(as_cred)
            .raw("</td><td class=\"n\">")
            .num(u.exchanges)
            .raw("</td><td>")
            .text(&u.places.iter().cloned().collect::<Vec<_>>().join(", "))
            .raw("</td></tr>");
    }
    h.raw("</tbody></table><p class=\"muted\">Secrets were replaced before anything was written; each distinct secret has one number everywhere it appears.</p>");
}

fn by_kind(h: &mut Html, exchanges: &[Exchange]) {
    // Kinds in the order of the lanes, then by first appearance.
    let mut kinds: Vec<(Lane, u64, String)> = Vec::new();
    let mut counts: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut durations: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for x in exchanges {
        if !counts.contains_key(x.kind.as_str()) {
            kinds.push((Lane::of(x), x.seq, x.kind.to_string()));
        }
        *counts
            .entry(x.kind.to_string())
            .or_default()
            .entry(format::status_class(x.status))
            .or_default() += 1;
        durations
            .entry(x.kind.to_string())
            .or_default()
            .push(x.duration_us);
    }
    kinds.sort();
    h.raw("<h3>Exchanges by resource kind and status</h3><table class=\"kinds\"><thead><tr><th>resource kind</th><th class=\"n\">all</th>");
    for c in format::STATUS_CLASSES {
        let label = if *c == "sx" {
            "none"
        } else {
            format::status_class_label(c)
        };
        h.raw("<th class=\"n\"")
            .attr("title", format::status_class_label(c))
            .raw(">")
            .text(label)
            .raw("</th>");
    }
    h.raw("<th class=\"n\">median</th></tr></thead><tbody>");
    for (lane, _, kind) in &kinds {
        let row = &counts[kind];
        let all: usize = row.values().sum();
        let mut d = durations[kind].clone();
        d.sort_unstable();
        h.raw("<tr><td>")
            .text(kind)
            .raw(" <span class=\"muted small\">")
            .text(lane.label())
            .raw("</span></td><td class=\"n\">")
            .num(all)
            .raw("</td>");
        for c in format::STATUS_CLASSES {
            let n = row.get(c).copied().unwrap_or(0);
            if n == 0 {
                h.raw("<td class=\"n zero\">0</td>");
            } else {
                h.raw("<td class=\"n\"><span")
                    .attr("class", &format!("st {c}"))
                    .raw(">")
                    .num(n)
                    .raw("</span></td>");
            }
        }
        h.raw("<td class=\"n\">")
            .text(&format::duration(d[d.len() / 2]))
            .raw("</td></tr>");
    }
    h.raw("</tbody></table>");
}

fn failed_table(h: &mut Html, failed: &[&Exchange], t0: i64) {
    h.raw("<h3>Failed requests</h3><table><thead><tr><th class=\"n\">#</th><th>at</th><th>request</th><th>status</th><th>why</th></tr></thead><tbody>");
    for x in failed.iter().take(500) {
        h.raw("<tr><td class=\"n\"><a")
            .attr("href", &format!("#x-{}", x.seq))
            .raw(">")
            .num(x.seq)
            .raw("</a></td><td class=\"muted nw\">")
            .text(&format::offset(x.started_us - t0))
            .raw("</td><td class=\"mono\">")
            .text(&x.method)
            .raw(" ");
        format::path_html(h, &x.path, x.query.as_deref());
        h.raw("</td><td><span")
            .attr("class", &format!("st {}", format::status_class(x.status)))
            .raw(">")
            .text(&format::status_text(x.status))
            .raw("</span></td><td>");
        let why = x
            .error
            .clone()
            .or_else(|| ucwa_error(x))
            .or_else(|| challenge(x))
            .unwrap_or_default();
        h.text(&why).raw("</td></tr>");
    }
    h.raw("</tbody></table>");
    if failed.len() > 500 {
        h.raw("<p class=\"muted\">")
            .num(failed.len() - 500)
            .raw(" more: filter the exchanges below by status.</p>");
    }
}
