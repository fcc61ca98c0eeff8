//! A diff of two sessions as one page, side by side: the verdict and counts, each differing
//! exchange with what changed in A and in B (the same normalisation as the text diff: this
//! page renders the same [`DiffReport`]), the two flattened event sequences aligned row by
//! row, and the exchanges involved, each difference linking to them.

use std::collections::{BTreeSet, HashMap};

use super::escape::Html;
use super::exchanges;
use super::format;
use super::page::{self, Head};
use super::timeline::event_class;
use crate::diff::{Change, ChangeKind, DiffReport, EventDiff, ExchangeDiff};
use crate::recording::{EventRow, Exchange};

/// Equal events in a row beyond this fold into one line.
const EQUAL_RUN_SHOWN: usize = 3;

/// One row of the aligned event sequences (indices into each side's flattened events).
#[derive(Debug, Clone, PartialEq)]
pub enum Row<'d> {
    Equal(usize, usize),
    Changed(usize, usize, &'d EventDiff),
    Removed(usize),
    Added(usize),
}

/// Rebuild the whole alignment from the differences alone: every event of A and of B that
/// no difference names was paired as equal, in order.
pub fn align_events<'d>(len_a: usize, len_b: usize, diffs: &'d [EventDiff]) -> Vec<Row<'d>> {
    let mut removed = BTreeSet::new();
    let mut added = BTreeSet::new();
    let mut changed: HashMap<usize, (usize, &EventDiff)> = HashMap::new();
    for d in diffs {
        match (d.kind, &d.a, &d.b) {
            (ChangeKind::Changed, Some(a), Some(b)) => {
                changed.insert(a.index, (b.index, d));
            }
            (ChangeKind::Removed, Some(a), _) => {
                removed.insert(a.index);
            }
            (ChangeKind::Added, _, Some(b)) => {
                added.insert(b.index);
            }
            _ => {}
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut rows = Vec::with_capacity(len_a.max(len_b));
    while i < len_a || j < len_b {
        if i < len_a && removed.contains(&i) {
            rows.push(Row::Removed(i));
            i += 1;
        } else if j < len_b && added.contains(&j) {
            rows.push(Row::Added(j));
            j += 1;
        } else if let Some(&(jb, d)) = changed.get(&i) {
            rows.push(Row::Changed(i, jb, d));
            i += 1;
            j = jb + 1;
        } else if i < len_a && j < len_b {
            rows.push(Row::Equal(i, j));
            i += 1;
            j += 1;
        } else if i < len_a {
            rows.push(Row::Removed(i));
            i += 1;
        } else {
            rows.push(Row::Added(j));
            j += 1;
        }
    }
    rows
}

/// A flattened event with the feed exchange that delivered it.
struct Flat<'a> {
    seq: u64,
    event: &'a EventRow,
}

fn flatten<'a>(views: &'a [Exchange]) -> Vec<Flat<'a>> {
    views
        .iter()
        .filter(|x| x.is_events())
        .flat_map(|x| {
            x.events.iter().map(move |e| Flat {
                seq: x.seq,
                event: e,
            })
        })
        .collect()
}

/// The page of a diff. `a` and `b` are the exchanges the report was made from.
pub fn diff_page(report: &DiffReport, a: &[Exchange], b: &[Exchange]) -> String {
    let mut h = Html::with_capacity(256 * 1024);
    let title = format!("diff {} ↔ {}", report.a.label, report.b.label);
    let sub = format!("A: {} · B: {}", report.a.label, report.b.label);
    page::open(
        &mut h,
        &Head {
            title: &title,
            heading: "diff",
            sub: &sub,
            nav: &[
                ("summary", "Summary"),
                ("exchange-diffs", "Exchanges"),
                ("events", "Events"),
                ("side-a", "A's exchanges"),
                ("side-b", "B's exchanges"),
            ],
        },
    );
    summary(&mut h, report);
    exchange_diffs(&mut h, &report.exchanges);
    events(&mut h, report, a, b);
    // The exchanges the differences name, so each link lands on its request and answer.
    let mut seqs_a = BTreeSet::new();
    let mut seqs_b = BTreeSet::new();
    for d in &report.exchanges {
        seqs_a.extend(d.a.as_ref().map(|r| r.seq));
        seqs_b.extend(d.b.as_ref().map(|r| r.seq));
    }
    for d in &report.events {
        seqs_a.extend(d.a.as_ref().map(|r| r.seq));
        seqs_b.extend(d.b.as_ref().map(|r| r.seq));
    }
    involved(&mut h, "side-a", "A", &report.a.label, a, &seqs_a, "a-");
    involved(&mut h, "side-b", "B", &report.b.label, b, &seqs_b, "b-");
    page::close(&mut h);
    h.into_string()
}

fn summary(h: &mut Html, r: &DiffReport) {
    let s = &r.summary;
    let e = &s.events;
    h.raw("<section class=\"card\" id=\"summary\"><h2>Summary</h2><p")
        .attr(
            "class",
            if r.equal {
                "verdict equal"
            } else {
                "verdict different"
            },
        )
        .raw(">")
        .text(if r.equal { "equal" } else { "different" })
        .raw("</p><p class=\"muted\">")
        .text(if r.normalized {
            "Ids in hrefs, acks, dates, ETags and correlation ids normalised (as the text diff does)."
        } else {
            "Raw values compared (--no-normalize)."
        })
        .raw("</p><div class=\"cols2\"><table><thead><tr><th></th><th class=\"n\">A</th><th class=\"n\">B</th></tr></thead><tbody>");
    let row = |h: &mut Html, k: &str, a: String, b: String| {
        h.raw("<tr><td>")
            .text(k)
            .raw("</td><td class=\"n\">")
            .text(&a)
            .raw("</td><td class=\"n\">")
            .text(&b)
            .raw("</td></tr>");
    };
    row(
        h,
        "exchanges",
        r.a.exchanges.to_string(),
        r.b.exchanges.to_string(),
    );
    row(
        h,
        "events-feed requests",
        r.a.feed_exchanges.to_string(),
        r.b.feed_exchanges.to_string(),
    );
    row(h, "events", e.a.to_string(), e.b.to_string());
    let errs = |m: &std::collections::BTreeMap<u16, usize>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    row(
        h,
        "events-feed error answers",
        errs(&e.feed_errors_a),
        errs(&e.feed_errors_b),
    );
    h.raw("</tbody></table><table><thead><tr><th></th><th class=\"n\">exchanges</th><th class=\"n\">events</th></tr></thead><tbody>");
    for (k, x, v) in [
        ("paired / aligned", s.paired, e.equal + e.changed),
        ("equal", s.equal, e.equal),
        ("changed", s.changed, e.changed),
        ("only in B (added)", s.added, e.added),
        ("only in A (removed)", s.removed, e.removed),
    ] {
        row(h, k, x.to_string(), v.to_string());
    }
    h.raw("</tbody></table></div><p class=\"mono muted\">")
        .text(&r.summary())
        .raw("</p></section>");
}

fn side_link(h: &mut Html, prefix: &str, label: &str, r: Option<&crate::diff::ExchangeRef>) {
    match r {
        Some(r) => {
            h.raw("<a")
                .attr("href", &format!("#{prefix}{}", r.seq))
                .raw(">")
                .text(label)
                .raw(" #")
                .num(r.seq)
                .raw("</a> <span")
                .attr("class", &format!("st {}", format::status_class(r.status)))
                .raw(">")
                .text(&format::status_text(r.status))
                .raw("</span>");
        }
        None => {
            h.raw("<span class=\"muted\">not in ")
                .text(label)
                .raw("</span>");
        }
    }
}

fn exchange_diffs(h: &mut Html, diffs: &[ExchangeDiff]) {
    h.raw("<section class=\"card\" id=\"exchange-diffs\"><h2>Exchanges<span class=\"count\">")
        .num(diffs.len())
        .raw(if diffs.len() == 1 {
            " difference"
        } else {
            " differences"
        })
        .raw("</span></h2>");
    if diffs.is_empty() {
        h.raw("<p class=\"muted\">Every paired exchange compares equal; none is only on one side.</p>");
    }
    for (n, d) in diffs.iter().enumerate() {
        let target =
            d.a.as_ref()
                .or(d.b.as_ref())
                .map(|r| r.target.as_str())
                .unwrap_or("");
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        h.raw("<div")
            .attr("class", &format!("dx {}", d.kind.as_str()))
            .attr("id", &format!("d-{}", n + 1))
            .raw("><div class=\"dh\"><span")
            .attr("class", &format!("kind {}", d.kind.as_str()))
            .raw(">")
            .text(d.kind.as_str())
            .raw("</span><span class=\"p\">")
            .text(&d.method)
            .raw(" ");
        format::path_html(h, path, query);
        h.raw(" <span class=\"muted\">#")
            .num(d.ordinal + 1)
            .raw("</span></span><span class=\"muted\">")
            .text(&d.resource)
            .raw(" · ")
            .text(&d.representation)
            .raw("</span><span>");
        side_link(h, "a-", "A", d.a.as_ref());
        h.raw(" ↔ ");
        side_link(h, "b-", "B", d.b.as_ref());
        h.raw("</span></div>");
        if !d.changes.is_empty() {
            changes_table(h, &d.changes);
        }
        h.raw("</div>");
    }
    h.raw("</section>");
}

fn changes_table(h: &mut Html, changes: &[Change]) {
    h.raw("<table><thead><tr><th>where</th><th>A</th><th>B</th></tr></thead><tbody>");
    for c in changes {
        let place = if c.path.is_empty() {
            c.part.as_str().to_string()
        } else if c.part == crate::diff::Part::Event {
            c.path.clone()
        } else {
            format!("{} {}", c.part.as_str(), c.path)
        };
        h.raw("<tr><td class=\"where\">").text(&place).raw("</td>");
        for (v, side) in [(&c.a, "a"), (&c.b, "b")] {
            match v {
                Some(v) => {
                    h.raw("<td").attr("class", &format!("val {side}")).raw(">");
                    super::body::text_with_placeholders(h, v);
                    h.raw("</td>");
                }
                None => {
                    h.raw("<td class=\"val none\">absent</td>");
                }
            }
        }
        h.raw("</tr>");
    }
    h.raw("</tbody></table>");
}

fn event_cell(h: &mut Html, side: &str, f: &Flat<'_>) {
    let e = f.event;
    h.raw("<a")
        .attr("href", &format!("#{side}-{}", f.seq))
        .raw(">ack ")
        .text(&e.ack.map_or("?".into(), |a| a.to_string()))
        .raw("</a> ")
        .text(&e.sender_rel)
        .raw(" <span")
        .attr("class", &format!("ty {}", event_class(&e.event_type)))
        .raw(">")
        .text(&e.event_type)
        .raw("</span> ")
        .text(&e.link_rel)
        .raw(" <span class=\"mono muted\"")
        .attr("title", &e.link_href)
        .raw(">")
        .text(format::short_href(&e.link_href))
        .raw("</span>");
    if let Some(r) = e.in_rel.as_deref() {
        h.raw(" <span class=\"muted\">in ").text(r).raw("</span>");
    }
    if let Some(s) = e.status.as_deref() {
        h.raw(" ").text(s);
    }
}

fn events(h: &mut Html, r: &DiffReport, va: &[Exchange], vb: &[Exchange]) {
    let fa = flatten(va);
    let fb = flatten(vb);
    let rows = align_events(fa.len(), fb.len(), &r.events);
    h.raw("<section class=\"card\" id=\"events\"><h2>Events<span class=\"count\">A ")
        .num(fa.len())
        .raw(" · B ")
        .num(fb.len())
        .raw(" · ")
        .num(r.events.len())
        .raw(if r.events.len() == 1 { " difference" } else { " differences" })
        .raw("</span></h2><p class=\"muted\">The two flattened event sequences, aligned (batching and acks may differ between runs).</p>");
    let open_table = |h: &mut Html| {
        h.raw("<table class=\"evs\"><colgroup><col class=\"side\"><col class=\"side\"></colgroup><tbody>");
    };
    let mut k = 0;
    open_table(h);
    while k < rows.len() {
        // A run of equal rows: the first and last few shown, the middle folded.
        let run = rows[k..]
            .iter()
            .take_while(|r| matches!(r, Row::Equal(..)))
            .count();
        if run > 2 * EQUAL_RUN_SHOWN + 1 {
            for row in &rows[k..k + EQUAL_RUN_SHOWN] {
                event_row(h, row, &fa, &fb);
            }
            h.raw("</tbody></table><details class=\"eqrun\"><summary>")
                .num(run - 2 * EQUAL_RUN_SHOWN)
                .raw(" equal events</summary>");
            open_table(h);
            for row in &rows[k + EQUAL_RUN_SHOWN..k + run - EQUAL_RUN_SHOWN] {
                event_row(h, row, &fa, &fb);
            }
            h.raw("</tbody></table></details>");
            open_table(h);
            for row in &rows[k + run - EQUAL_RUN_SHOWN..k + run] {
                event_row(h, row, &fa, &fb);
            }
            k += run;
            continue;
        }
        event_row(h, &rows[k], &fa, &fb);
        k += 1;
    }
    h.raw("</tbody></table></section>");
}

fn event_row(h: &mut Html, row: &Row<'_>, fa: &[Flat<'_>], fb: &[Flat<'_>]) {
    let (class, a, b, diff) = match *row {
        Row::Equal(i, j) => ("eq", fa.get(i), fb.get(j), None),
        Row::Changed(i, j, d) => ("changed", fa.get(i), fb.get(j), Some(d)),
        Row::Removed(i) => ("removed", fa.get(i), None, None),
        Row::Added(j) => ("added", None, fb.get(j), None),
    };
    h.raw("<tr").attr("class", class).raw(">");
    for (f, side) in [(a, "a"), (b, "b")] {
        match f {
            Some(f) => {
                h.raw("<td").attr("class", &format!("side {side}")).raw(">");
                event_cell(h, side, f);
                h.raw("</td>");
            }
            None => {
                h.raw("<td class=\"side gap\"></td>");
            }
        }
    }
    h.raw("</tr>");
    if let Some(d) = diff
        && !d.changes.is_empty()
    {
        h.raw("<tr class=\"changed\"><td colspan=\"2\">");
        changes_table(h, &d.changes);
        h.raw("</td></tr>");
    }
}

fn involved(
    h: &mut Html,
    id: &str,
    side: &str,
    label: &str,
    views: &[Exchange],
    seqs: &BTreeSet<u64>,
    prefix: &str,
) {
    let t0 = views.iter().map(|x| x.started_us).min().unwrap_or(0);
    h.raw("<section class=\"card\"")
        .attr("id", id)
        .raw("><h2>")
        .text(side)
        .raw("’s exchanges named above<span class=\"count\">")
        .text(label)
        .raw("</span></h2>");
    if seqs.is_empty() {
        h.raw("<p class=\"muted\">None.</p>");
    } else {
        exchanges::header_row(h);
    }
    // Many differences: what each line folds is built only when opened.
    let lazy = seqs.len() > exchanges::LAZY_OVER;
    for x in views.iter().filter(|x| seqs.contains(&x.seq)) {
        exchanges::render_one(h, x, t0, &[], prefix, lazy);
    }
    h.raw("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::EventRef;

    fn r(index: usize) -> EventRef {
        EventRef {
            index,
            seq: 1,
            ack: Some(1),
            sender_rel: "conversation".into(),
            link_rel: "participantMessaging".into(),
            link_href: "/pm".into(),
            in_rel: None,
            event_type: "added".into(),
            status: None,
        }
    }

    fn d(kind: ChangeKind, a: Option<usize>, b: Option<usize>) -> EventDiff {
        EventDiff {
            kind,
            a: a.map(r),
            b: b.map(r),
            changes: vec![],
        }
    }

    #[test]
    fn the_alignment_is_rebuilt_from_the_differences() {
        // A: e0 e1 e2 e3   B: e0 x e1' e3 y   (x added, e1 changed, e2 removed, y added)
        let diffs = vec![
            d(ChangeKind::Added, None, Some(1)),
            d(ChangeKind::Changed, Some(1), Some(2)),
            d(ChangeKind::Removed, Some(2), None),
            d(ChangeKind::Added, None, Some(4)),
        ];
        let rows = align_events(4, 5, &diffs);
        let shape: Vec<String> = rows
            .iter()
            .map(|r| match r {
                Row::Equal(i, j) => format!("={i}{j}"),
                Row::Changed(i, j, _) => format!("~{i}{j}"),
                Row::Removed(i) => format!("-{i}"),
                Row::Added(j) => format!("+{j}"),
            })
            .collect();
        assert_eq!(shape, ["=00", "+1", "~12", "-2", "=33", "+4"]);
        assert_eq!(align_events(2, 2, &[]).len(), 2);
        assert_eq!(align_events(0, 0, &[]), vec![]);
    }
}
