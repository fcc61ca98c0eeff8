//! Every exchange, one line each, expandable with `<details>` (no JavaScript needed): request
//! and response line, headers in recorded order, bodies pretty-printed with redaction
//! placeholders as badges, truncation flagged, the events an events-feed answer delivered,
//! and the match key. The optional script only filters and expands.

use std::collections::HashMap;

use super::body;
use super::escape::Html;
use super::format::{self, Lane};
use super::timeline::event_class;
use crate::recording::{Exchange, HeaderList};

/// A badge the replay overlay (or the diff) puts on an exchange: CSS class and text.
pub type Badge = (&'static str, String);

/// Badges by `seq`.
pub type Notes = HashMap<u64, Vec<Badge>>;

/// Above this many exchanges, what a line folds (headers, bodies) is built only when opened.
pub const LAZY_OVER: usize = 200;
/// Lines built with the page; the others come in folded pages of this many.
pub const PAGE: usize = 500;

/// The list of a session's exchanges, with the filter bar the script shows.
pub fn render(h: &mut Html, exchanges: &[Exchange], notes: &Notes) {
    let t0 = exchanges.iter().map(|x| x.started_us).min().unwrap_or(0);
    h.raw("<section class=\"card\" id=\"exchanges\"><h2>Exchanges<span class=\"count\">")
        .num(exchanges.len())
        .raw("</span></h2>");
    filters(h, exchanges, !notes.is_empty());
    header_row(h);
    h.raw("<div class=\"xs\">");
    let lazy = exchanges.len() > LAZY_OVER;
    let badges = |x: &Exchange| notes.get(&x.seq).map(Vec::as_slice).unwrap_or(&[]);
    for (i, page) in exchanges.chunks(PAGE).enumerate() {
        if i == 0 {
            for x in page {
                render_one(h, x, t0, badges(x), "x-", lazy);
            }
            continue;
        }
        let (first, last) = (page[0].seq, page[page.len() - 1].seq);
        super::page::lazy_open(
            h,
            &format!(
                "Exchanges #{first}–#{last} ({}) are folded to keep the page fast.",
                page.len()
            ),
            Some((first, last)),
        );
        for x in page {
            render_one(h, x, t0, badges(x), "x-", false);
        }
        super::page::lazy_close(h);
    }
    h.raw("</div></section>");
}

/// The column names above the exchange lines.
pub fn header_row(h: &mut Html) {
    h.raw("<div class=\"xhead\" aria-hidden=\"true\"><span>#</span><span>at</span><span>method</span><span>path</span><span>status</span><span>kind</span><span class=\"n\">time</span><span></span></div>");
}

fn filters(h: &mut Html, exchanges: &[Exchange], overlay: bool) {
    h.raw("<div class=\"filters\" id=\"filters\" hidden><input type=\"search\" placeholder=\"filter by path, method, kind, status…\" aria-label=\"filter\"><span>lanes:");
    for lane in Lane::ALL {
        if !exchanges.iter().any(|x| Lane::of(x) == lane) {
            continue;
        }
        h.raw(" <label><input type=\"checkbox\" data-f=\"lane\" checked")
            .attr("value", lane.id())
            .raw("> ")
            .text(lane.label())
            .raw("</label>");
    }
    h.raw("</span><span>status:");
    for class in format::STATUS_CLASSES {
        h.raw(" <label><input type=\"checkbox\" data-f=\"status\" checked")
            .attr("value", class)
            .raw("> ")
            .text(format::status_class_label(class))
            .raw("</label>");
    }
    h.raw("</span><label><input type=\"checkbox\" data-only> ")
        .raw(if overlay {
            "only failed or flagged by the replay"
        } else {
            "only failed"
        })
        .raw("</label><button type=\"button\" data-expand>expand all</button><button type=\"button\" data-collapse>collapse all</button><span class=\"shown\"></span></div>");
    if exchanges.len() > PAGE {
        h.raw("<p class=\"muted\">")
            .num(exchanges.len())
            .raw(" exchanges: the first ")
            .num(PAGE)
            .raw(" are listed; the others are folded in pages below (filtering unfolds them all).</p>");
    }
}

/// One exchange: its line and, folded, everything recorded. `id` is `prefix` + `seq`. With
/// `lazy`, the folded part is built by the browser only when opened (see
/// [`super::page::lazy_open`]).
pub fn render_one(h: &mut Html, x: &Exchange, t0: i64, badges: &[Badge], prefix: &str, lazy: bool) {
    let class = format::status_class(x.status);
    let lane = Lane::of(x);
    let failed = format::is_error(x);
    h.raw("<details")
        .attr(
            "class",
            &format!("x {}{}", class, if failed { " err" } else { "" }),
        )
        .attr("id", &format!("{prefix}{}", x.seq))
        .attr("data-lane", lane.id())
        .attr("data-status", class);
    if failed || !badges.is_empty() {
        h.raw(" data-flag");
    }
    h.raw("><summary><span class=\"seq\">")
        .num(x.seq)
        .raw("</span><span class=\"t\">")
        .text(&format::offset(x.started_us - t0))
        .raw("</span><span class=\"m\">")
        .text(&x.method)
        .raw("</span><span class=\"p\"")
        .attr("title", &x.path_and_query())
        .raw(">");
    format::path_html(h, &x.path, x.query.as_deref());
    h.raw("</span><span><span")
        .attr("class", &format!("st {class}"))
        .raw(">")
        .text(&format::status_text(x.status))
        .raw("</span></span><span class=\"k\">")
        .text(x.kind.as_str())
        .raw("</span><span class=\"d\">")
        .text(&format::duration(x.duration_us))
        .raw("</span><span class=\"bd\">");
    if !x.events.is_empty() {
        h.raw("<span class=\"badge ev\">")
            .num(x.events.len())
            .raw(if x.events.len() == 1 {
                " event"
            } else {
                " events"
            })
            .raw("</span>");
    }
    if let Some(e) = x.error.as_deref() {
        h.raw("<span class=\"badge err\"")
            .attr("title", e)
            .raw(">error</span>");
    }
    if x.request_truncated || x.response_truncated {
        h.raw("<span class=\"badge trunc\">truncated</span>");
    }
    for (class, text) in badges {
        h.raw("<span")
            .attr("class", &format!("badge {class}"))
            .raw(">")
            .text(text)
            .raw("</span>");
    }
    h.raw("</span></summary>");
    if lazy {
        h.raw("<noscript class=\"xd-lazy\">");
    }
    h.raw("<div class=\"xd\">");
    if let Some(e) = x.error.as_deref() {
        h.raw("<div class=\"errline\">").text(e).raw("</div>");
    }
    h.raw("<div class=\"cols2\"><div><h4>Request</h4><div class=\"line\">")
        .text(&x.method)
        .raw(" ");
    body::text_with_placeholders(h, &x.path_and_query());
    h.raw(" <span class=\"muted\">")
        .text(&x.http_version)
        .raw("</span></div>");
    headers(h, &x.request_headers);
    body::render(
        h,
        &x.request_body,
        x.request_headers.get("content-type"),
        x.request_truncated,
    );
    h.raw("</div><div><h4>Response</h4><div class=\"line\">");
    match x.status {
        Some(s) => {
            h.raw("<span")
                .attr("class", &format!("st {class}"))
                .raw(">")
                .num(s)
                .raw("</span>");
        }
        None => {
            h.raw("no response");
        }
    }
    h.raw(" <span class=\"muted\">after ")
        .text(&format::duration(x.duration_us));
    if let Some(enc) = x.content_encoding.as_deref() {
        h.raw(" · stored decoded, sent as ").text(enc);
    }
    h.raw("</span></div>");
    if x.status.is_some() {
        headers(h, &x.response_headers);
        body::render(
            h,
            &x.response_body,
            x.response_headers.get("content-type"),
            x.response_truncated,
        );
    }
    h.raw("</div></div>");
    if !x.events.is_empty() {
        h.raw("<h4>Events delivered</h4><table class=\"xev\"><tbody>");
        for e in &x.events {
            h.raw("<tr><td>")
                .text(&e.sender_rel)
                .raw("</td><td><span")
                .attr("class", &format!("ty {}", event_class(&e.event_type)))
                .raw(">")
                .text(&e.event_type)
                .raw("</span></td><td>")
                .text(&e.link_rel)
                .raw("</td><td class=\"href\">")
                .text(&e.link_href)
                .raw("</td><td>")
                .text(e.in_rel.as_deref().unwrap_or(""))
                .raw("</td><td>")
                .text(e.status.as_deref().unwrap_or(""))
                .raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }
    h.raw("<div class=\"meta\">")
        .text(x.kind.as_str())
        .raw(" · asked for ")
        .text(x.representation.as_str())
        .raw(" · match key <code>");
    body::text_with_placeholders(h, &x.match_key.to_string());
    h.raw("</code> · ordinal ").num(x.ordinal);
    if let Some(c) = x.credential.as_deref() {
        h.raw(" · credential <mark class=\"ph\">")
            .text(c)
            .raw("</mark>");
    }
    if let Some(u) = x.upstream.as_deref() {
        h.raw(" · upstream ").text(u);
    }
    h.raw("</div></div>");
    if lazy {
        h.raw("</noscript>");
    }
    h.raw("</details>");
}

fn headers(h: &mut Html, list: &HeaderList) {
    if list.0.is_empty() {
        h.raw("<div class=\"bmeta\">no headers</div>");
        return;
    }
    h.raw("<pre class=\"hdrs\">");
    for (i, (name, value)) in list.iter().enumerate() {
        if i > 0 {
            h.raw("\n");
        }
        h.raw("<b>").text(name).raw("</b>: ");
        body::text_with_placeholders(h, &String::from_utf8_lossy(value));
    }
    h.raw("</pre>");
}
