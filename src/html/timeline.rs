//! The timeline: one SVG, time across, a lane per part of a UCWA session (sign-in,
//! application, events feed, conversation, messaging, other). Each exchange is a bar from its
//! request to its last response byte, coloured by status class; an events-feed P-GET is a
//! pale bar spanning its hold with its events stacked as ticks where the answer came; failed
//! requests get a red marker. Marks closer than a pixel in one lane and class are merged, so
//! a 10 000-exchange session stays a few hundred SVG elements. Each mark links to its
//! exchange below and has a tooltip (`<title>`), so the picture works without JavaScript.

use std::collections::HashMap;

use super::escape::Html;
use super::format::{self, Lane};
use crate::recording::Exchange;

/// The SVG's own coordinate width (it scales to the page).
pub const WIDTH: f64 = 1200.0;
/// Left column holding the lane names.
pub const LABEL_W: f64 = 128.0;
const RIGHT_PAD: f64 = 14.0;
const AXIS_H: f64 = 26.0;
const LANE_H: f64 = 34.0;
const FEED_LANE_H: f64 = 64.0;
/// The narrowest bar drawn (a 0.3 ms request in an hour-long session is still visible).
const MIN_BAR: f64 = 2.5;
/// Marks of one lane and class closer than this merge into one.
const MERGE_GAP: f64 = 1.0;
/// The most events stacked at one answer.
const MAX_STACK: usize = 7;

/// Maps time (µs since the epoch) to x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub t0: i64,
    pub span: i64,
    pub x0: f64,
    pub width: f64,
}

impl Scale {
    pub fn new(t0: i64, t1: i64, x0: f64, width: f64) -> Self {
        Scale {
            t0,
            span: (t1 - t0).max(1),
            x0,
            width,
        }
    }

    /// The scale of a session: its first request to its last byte.
    pub fn of_session(exchanges: &[Exchange], x0: f64, width: f64) -> Self {
        let t0 = exchanges.iter().map(|x| x.started_us).min().unwrap_or(0);
        let t1 = exchanges.iter().map(|x| x.ended_us()).max().unwrap_or(t0);
        Scale::new(t0, t1, x0, width)
    }

    pub fn x(&self, t: i64) -> f64 {
        let f = (t - self.t0) as f64 / self.span as f64;
        self.x0 + f.clamp(0.0, 1.0) * self.width
    }
}

/// A step for about `max` ticks over `span_us`: 1, 2, 5 × 10ⁿ µs below a second, then
/// seconds, minutes and hours people count in.
pub fn tick_step(span_us: i64, max: usize) -> i64 {
    const NICE: &[i64] = &[
        1,
        2,
        5,
        10,
        20,
        50,
        100,
        200,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        20_000,
        50_000,
        100_000,
        200_000,
        500_000,
        1_000_000,
        2_000_000,
        5_000_000,
        10_000_000,
        15_000_000,
        30_000_000,
        60_000_000,
        120_000_000,
        300_000_000,
        600_000_000,
        900_000_000,
        1_800_000_000,
        3_600_000_000,
        7_200_000_000,
        21_600_000_000,
        43_200_000_000,
        86_400_000_000,
    ];
    let max = max.max(1) as i64;
    NICE.iter()
        .copied()
        .find(|s| span_us / s <= max)
        .unwrap_or(86_400_000_000 * (span_us / (86_400_000_000 * max) + 1))
}

/// A tick's label: `0`, `500 µs`, `5 ms`, `1.5 s`, `2 min`, `1 h 30`.
pub fn tick_label(off: i64, step: i64) -> String {
    if off == 0 {
        "0".into()
    } else if step < 1_000 {
        format!("{off} µs")
    } else if step < 1_000_000 {
        let ms = off as f64 / 1e3;
        if step % 1_000 == 0 {
            format!("{ms:.0} ms")
        } else {
            format!("{ms:.1} ms")
        }
    } else if step < 60_000_000 {
        format!("{} s", trim_float(off as f64 / 1e6))
    } else if step < 3_600_000_000 {
        format!("{} min", trim_float(off as f64 / 6e7))
    } else {
        let m = off / 60_000_000;
        if m % 60 == 0 {
            format!("{} h", m / 60)
        } else {
            format!("{} h {:02}", m / 60, m % 60)
        }
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// What the replay overlay says about a recorded exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub unplayed: bool,
    pub near_miss: bool,
    pub fault: bool,
}

impl Flags {
    fn or(self, o: Flags) -> Flags {
        Flags {
            unplayed: self.unplayed || o.unplayed,
            near_miss: self.near_miss || o.near_miss,
            fault: self.fault || o.fault,
        }
    }
}

/// One drawn bar: an exchange, or several merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub x0: f64,
    pub x1: f64,
    pub class: &'static str,
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: usize,
    pub errors: usize,
    pub flags: Flags,
    /// Tooltip of a single exchange.
    pub title: String,
}

/// Merge marks of one class that touch or sit within a pixel of each other.
pub fn merge(mut marks: Vec<Mark>) -> Vec<Mark> {
    marks.sort_by(|a, b| a.x0.total_cmp(&b.x0).then(a.first_seq.cmp(&b.first_seq)));
    let mut out: Vec<Mark> = Vec::with_capacity(marks.len());
    let mut last_of_class: HashMap<&'static str, usize> = HashMap::new();
    for m in marks {
        if let Some(&i) = last_of_class.get(m.class) {
            let prev = &mut out[i];
            if m.x0 <= prev.x1 + MERGE_GAP {
                prev.x1 = prev.x1.max(m.x1);
                prev.first_seq = prev.first_seq.min(m.first_seq);
                prev.last_seq = prev.last_seq.max(m.last_seq);
                prev.count += m.count;
                prev.errors += m.errors;
                prev.flags = prev.flags.or(m.flags);
                continue;
            }
        }
        last_of_class.insert(m.class, out.len());
        out.push(m);
    }
    out
}

fn mark_title(m: &Mark) -> String {
    if m.count == 1 {
        m.title.clone()
    } else {
        format!(
            "#{}–#{}: {} exchanges ({}){}",
            m.first_seq,
            m.last_seq,
            m.count,
            format::status_class_label(m.class),
            if m.errors > 0 {
                format!(", {} failed", m.errors)
            } else {
                String::new()
            }
        )
    }
}

fn exchange_title(x: &Exchange, t0: i64) -> String {
    let mut t = format!(
        "#{} {} {} → {} · {} · {}",
        x.seq,
        &x.method,
        format::short_href(&x.path_and_query()),
        x.status
            .map_or_else(|| "no response".to_string(), |s| s.to_string()),
        format::duration(x.duration_us),
        format::offset(x.started_us - t0)
    );
    if let Some(e) = x.error.as_deref() {
        t.push_str(" · ");
        t.push_str(e);
    }
    if !x.events.is_empty() {
        t.push_str(&format!(" · {} events", x.events.len()));
    }
    t
}

/// The event types drawn with their own colour.
pub fn event_class(ty: &str) -> &'static str {
    match ty {
        "added" => "added",
        "updated" => "updated",
        "deleted" => "deleted",
        "started" => "started",
        "completed" => "completed",
        _ => "other",
    }
}

/// Draw the timeline of a session. `flags` carries the replay overlay by `seq`.
pub fn render(h: &mut Html, exchanges: &[Exchange], flags: &HashMap<u64, Flags>) {
    let plot_w = WIDTH - LABEL_W - RIGHT_PAD;
    let scale = Scale::of_session(exchanges, LABEL_W, plot_w);
    let lanes: Vec<Lane> = Lane::ALL
        .into_iter()
        .filter(|l| *l != Lane::Other || exchanges.iter().any(|x| Lane::of(x) == Lane::Other))
        .collect();
    let lane_h = |l: Lane| if l == Lane::Feed { FEED_LANE_H } else { LANE_H };
    let height = AXIS_H + lanes.iter().map(|l| lane_h(*l)).sum::<f64>() + 6.0;

    h.raw("<svg class=\"tl\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"timeline of the session\"")
        .attr("viewBox", &format!("0 0 {WIDTH} {height:.0}"))
        .raw(">");

    // Lane backgrounds, names and counts.
    let mut y = AXIS_H;
    let mut lane_y = HashMap::new();
    for (i, lane) in lanes.iter().enumerate() {
        let lh = lane_h(*lane);
        lane_y.insert(*lane, y);
        let n = exchanges.iter().filter(|x| Lane::of(x) == *lane).count();
        h.raw("<g")
            .attr("class", &format!("lane lane-{}", lane.id()))
            .raw("><rect")
            .attr("class", if i % 2 == 0 { "lane-bg" } else { "lane-bg alt" })
            .attr("x", "0")
            .attr("y", &format!("{y:.1}"))
            .attr("width", &format!("{WIDTH}"))
            .attr("height", &format!("{lh:.1}"))
            .raw("/><text class=\"lane-label\" x=\"10\"")
            .attr("y", &format!("{:.1}", y + lh / 2.0 - 1.0))
            .raw(">")
            .text(lane.label())
            .raw("</text><text class=\"lane-sub\" x=\"10\"")
            .attr("y", &format!("{:.1}", y + lh / 2.0 + 11.0))
            .raw(">")
            .num(n)
            .raw(if n == 1 { " exchange" } else { " exchanges" })
            .raw("</text></g>");
        y += lh;
    }

    // Axis: ticks along the top, grid lines down through the lanes.
    let step = tick_step(scale.span, 10);
    h.raw("<g class=\"axis-g\">");
    let mut off = 0;
    while off <= scale.span {
        let x = scale.x(scale.t0 + off);
        h.raw("<line class=\"grid\"")
            .attr("x1", &format!("{x:.1}"))
            .attr("x2", &format!("{x:.1}"))
            .attr("y1", &format!("{:.1}", AXIS_H - 4.0))
            .attr("y2", &format!("{:.1}", height - 6.0))
            .raw("/><text class=\"tick-label\"")
            .attr("x", &format!("{x:.1}"))
            .attr("y", &format!("{:.1}", AXIS_H - 9.0))
            .attr(
                "text-anchor",
                if off == 0 {
                    "start"
                } else if x > WIDTH - RIGHT_PAD - 30.0 {
                    "end"
                } else {
                    "middle"
                },
            )
            .raw(">")
            .text(&tick_label(off, step))
            .raw("</text>");
        off += step;
    }
    h.raw("<line class=\"axis\"")
        .attr("x1", &format!("{LABEL_W}"))
        .attr("x2", &format!("{:.1}", WIDTH - RIGHT_PAD))
        .attr("y1", &format!("{:.1}", AXIS_H - 4.0))
        .attr("y2", &format!("{:.1}", AXIS_H - 4.0))
        .raw("/></g>");

    for lane in &lanes {
        let top = lane_y[lane];
        let of_lane: Vec<&Exchange> = exchanges.iter().filter(|x| Lane::of(x) == *lane).collect();
        let marks: Vec<Mark> = of_lane
            .iter()
            .map(|x| {
                let x0 = scale.x(x.started_us);
                let x1 = scale.x(x.ended_us()).max(x0 + MIN_BAR);
                Mark {
                    x0,
                    x1,
                    class: format::status_class(x.status),
                    first_seq: x.seq,
                    last_seq: x.seq,
                    count: 1,
                    errors: usize::from(format::is_error(x)),
                    flags: flags.get(&x.seq).copied().unwrap_or_default(),
                    title: exchange_title(x, scale.t0),
                }
            })
            .collect();
        let feed = *lane == Lane::Feed;
        let (bar_y, bar_h) = if feed {
            (top + 42.0, 14.0)
        } else {
            (top + 10.0, 14.0)
        };
        h.raw("<g")
            .attr("class", &format!("marks marks-{}", lane.id()))
            .raw(">");
        for m in merge(marks) {
            draw_mark(h, &m, bar_y, bar_h, feed);
        }
        if feed {
            draw_event_ticks(h, &of_lane, &scale, bar_y);
        }
        h.raw("</g>");
    }
    h.raw("</svg>");
    legend(h, !flags.is_empty());
}

fn draw_mark(h: &mut Html, m: &Mark, y: f64, bh: f64, feed: bool) {
    let w = (m.x1 - m.x0).max(MIN_BAR);
    h.raw("<a")
        .attr("href", &format!("#x-{}", m.first_seq))
        .raw("><title>")
        .text(&mark_title(m))
        .raw("</title>");
    let class = if feed {
        format!("mk {} hold", m.class)
    } else {
        format!("mk {}", m.class)
    };
    rect(h, &class, m.x0, y, w, bh, 2.0);
    if feed {
        // The answer: a solid cap where the held request was released.
        rect(
            h,
            &format!("mk {} hold-end", m.class),
            m.x1 - 2.0,
            y,
            2.0,
            bh,
            0.0,
        );
    }
    if m.flags.unplayed {
        rect(
            h,
            "ov-unplayed",
            m.x0 - 1.5,
            y - 1.5,
            w + 3.0,
            bh + 3.0,
            3.0,
        );
    }
    if m.flags.near_miss {
        rect(h, "ov-near", m.x0 - 2.5, y - 2.5, w + 5.0, bh + 5.0, 3.0);
    }
    if m.flags.fault {
        let cx = m.x0 + w / 2.0;
        let cy = y + bh + 5.0;
        h.raw("<path class=\"ov-fault\"")
            .attr("d", &format!("M{cx:.1} {:.1}l4 4l-4 4l-4-4z", cy - 4.0))
            .raw("/>");
    }
    if m.errors > 0 {
        let cx = m.x0 + w / 2.0;
        let top = y - 9.0;
        h.raw("<path class=\"errmark\"")
            .attr("d", &format!("M{:.1} {top:.1}h9l-4.5 7z", cx - 4.5))
            .raw("/>");
    }
    h.raw("</a>");
}

fn rect(h: &mut Html, class: &str, x: f64, y: f64, w: f64, hh: f64, r: f64) {
    h.raw("<rect")
        .attr("class", class)
        .attr("x", &format!("{x:.1}"))
        .attr("y", &format!("{y:.1}"))
        .attr("width", &format!("{w:.1}"))
        .attr("height", &format!("{hh:.1}"));
    if r > 0.0 {
        h.attr("rx", &format!("{r}"));
    }
    h.raw("/>");
}

/// Events stacked as ticks above the place each P-GET was answered; answers in the same
/// pixel column share one stack.
fn draw_event_ticks(h: &mut Html, feed: &[&Exchange], scale: &Scale, bar_y: f64) {
    let mut columns: Vec<(i64, Vec<&Exchange>)> = Vec::new();
    for x in feed.iter().filter(|x| !x.events.is_empty()) {
        let col = scale.x(x.ended_us()).round() as i64;
        match columns.last_mut() {
            Some((c, xs)) if (*c - col).abs() <= 1 => xs.push(x),
            _ => columns.push((col, vec![x])),
        }
    }
    for (_, xs) in columns {
        let first = xs[0];
        let x =
            (scale.x(xs.iter().map(|x| x.ended_us()).max().unwrap_or(0)) - 1.0).max(scale.x0 + 1.0);
        let events: Vec<_> = xs
            .iter()
            .flat_map(|x| x.events.iter().map(move |e| (x, e)))
            .collect();
        let mut title = String::new();
        for (x, e) in events.iter().take(12) {
            title.push_str(&format!(
                "ack {} (#{}): {} {} {}\n",
                e.ack.map_or("?".into(), |a| a.to_string()),
                x.seq,
                &e.sender_rel,
                &e.link_rel,
                &e.event_type
            ));
        }
        if events.len() > 12 {
            title.push_str(&format!("… {} events in all", events.len()));
        }
        h.raw("<a")
            .attr("href", &format!("#x-{}", first.seq))
            .raw("><title>")
            .text(title.trim_end())
            .raw("</title>");
        for (k, (_, e)) in events.iter().take(MAX_STACK).enumerate() {
            let y = bar_y - 8.0 - k as f64 * 5.0;
            h.raw("<rect")
                .attr("class", &format!("evt {}", event_class(&e.event_type)))
                .attr("x", &format!("{:.1}", x - 3.0))
                .attr("y", &format!("{y:.1}"))
                .attr("width", "6")
                .attr("height", "4")
                .raw("/>");
        }
        if events.len() > MAX_STACK {
            h.raw("<text class=\"tick-label\"")
                .attr("x", &format!("{:.1}", x + 3.0))
                .attr("y", &format!("{:.1}", bar_y - 6.0 - MAX_STACK as f64 * 5.0))
                .raw(">")
                .num(events.len())
                .raw("</text>");
        }
        h.raw("</a>");
    }
}

fn legend(h: &mut Html, overlay: bool) {
    h.raw("<div class=\"legend\">");
    for class in format::STATUS_CLASSES {
        h.raw("<span><i")
            .attr("class", class)
            .raw("></i>")
            .text(format::status_class_label(class))
            .raw("</span>");
    }
    h.raw("<span><i class=\"hold\"></i>P-GET held</span><span><i class=\"tick\"></i>event (green added, amber updated, red deleted, blue started, purple completed)</span><span><i class=\"tri\"></i>failed request</span>");
    if overlay {
        h.raw("<span>dashed: never played · purple ring: near miss · ◆ injected fault</span>");
    }
    h.raw("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(x0: f64, x1: f64, class: &'static str, seq: u64) -> Mark {
        Mark {
            x0,
            x1,
            class,
            first_seq: seq,
            last_seq: seq,
            count: 1,
            errors: usize::from(class == "s5"),
            flags: Flags::default(),
            title: format!("#{seq}"),
        }
    }

    #[test]
    fn the_scale_maps_the_session_onto_the_plot_and_clamps() {
        let s = Scale::new(1_000, 2_000, 100.0, 1000.0);
        assert_eq!(s.x(1_000), 100.0);
        assert_eq!(s.x(1_500), 600.0);
        assert_eq!(s.x(2_000), 1100.0);
        assert_eq!(s.x(5_000), 1100.0);
        assert_eq!(s.x(0), 100.0);
        // An empty session has a span of one microsecond, never a division by zero.
        assert_eq!(Scale::new(7, 7, 0.0, 10.0).span, 1);
    }

    #[test]
    fn ticks_use_steps_people_count_in() {
        assert_eq!(tick_step(38_000, 10), 5_000); // 38 ms: every 5 ms
        assert_eq!(tick_step(3_600_000_000, 10), 600_000_000); // an hour: every 10 min
        assert_eq!(tick_step(90_000_000, 10), 10_000_000);
        assert_eq!(tick_label(0, 5_000), "0");
        assert_eq!(tick_label(15_000, 5_000), "15 ms");
        assert_eq!(tick_label(1_500_000, 500_000), "1500 ms");
        assert_eq!(tick_label(1_500_000, 1_500_000), "1.5 s");
        assert_eq!(tick_label(1_200_000_000, 600_000_000), "20 min");
        assert_eq!(tick_label(5_400_000_000, 1_800_000_000), "90 min");
        assert_eq!(tick_label(7_200_000_000, 3_600_000_000), "2 h");
    }

    #[test]
    fn close_marks_of_one_class_merge_and_others_stay_apart() {
        let merged = merge(vec![
            mark(10.0, 12.5, "s2", 1),
            mark(13.0, 15.5, "s2", 2),
            mark(13.2, 15.7, "s5", 3),
            mark(40.0, 42.5, "s2", 4),
        ]);
        assert_eq!(merged.len(), 3, "{merged:?}");
        assert_eq!(
            (merged[0].first_seq, merged[0].last_seq, merged[0].count),
            (1, 2, 2)
        );
        assert_eq!(merged[0].x1, 15.5);
        assert_eq!(merged[1].class, "s5");
        assert_eq!(merged[1].errors, 1);
        assert_eq!(merged[2].first_seq, 4);
        assert_eq!(mark_title(&merged[0]), "#1–#2: 2 exchanges (2xx)");
    }

    #[test]
    fn thousands_of_exchanges_become_at_most_a_few_marks_per_pixel() {
        let marks: Vec<Mark> = (0..10_000)
            .map(|i| {
                let x = 100.0 + i as f64 * 0.1;
                mark(x, x + 2.5, "s2", i)
            })
            .collect();
        let merged = merge(marks);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].count, 10_000);
    }
}
