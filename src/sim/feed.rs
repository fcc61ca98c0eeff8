//! The events feed and its P-GET semantics (docs/UCWA.md, "The events feed").
//!
//! Events are queued in *units*: everything one action causes at once (an invitation's
//! `started` + conversation `added` + localParticipant `added`). A response carries exactly
//! one unit, never "whatever happened to be queued", so batch boundaries do not depend on
//! whether a P-GET was already waiting when the action happened: that is what keeps two runs
//! of one script byte-identical.
//!
//! Acks: a GET with `ack=N` acknowledges every batch below N and asks for batch N. A batch
//! already issued is served again unchanged; `N` one past the newest issued batch takes the
//! next unit (or waits for one until `timeout`, then issues an empty batch); any other `N`
//! gets only `_links.resync`. At most one P-GET waits per application: a newer one releases
//! the older with `409 PGetReplaced` (unless the older has a higher `priority`, in which case
//! the newer is refused the same way). `timeout` is clamped to 180–1800 s and remembered;
//! `low` and `medium` are accepted and ignored, since every unit is delivered at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Sim;
use super::exchange::{Fail, Handled, Reply, Req};
use super::render;
use super::resources::Paths;
use super::state::State;
use crate::ucwa::ErrorBody;

/// The event types UCWA uses: resources are added/updated/deleted, operations
/// started/updated/completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Updated,
    Deleted,
    Started,
    Completed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "added",
            EventKind::Updated => "updated",
            EventKind::Deleted => "deleted",
            EventKind::Started => "started",
            EventKind::Completed => "completed",
        }
    }
}

/// `link` or `in` of an event.
#[derive(Debug, Clone)]
pub struct EventLink {
    pub rel: String,
    pub href: String,
    pub title: Option<String>,
}

impl EventLink {
    pub fn new(rel: &str, href: impl Into<String>) -> Self {
        EventLink {
            rel: rel.into(),
            href: href.into(),
            title: None,
        }
    }

    pub fn titled(mut self, title: &str) -> Self {
        self.title = Some(title.into());
        self
    }
}

/// One event, with the resource snapshot embedded at the time it happened.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub link: EventLink,
    pub in_: Option<EventLink>,
    pub status: Option<&'static str>,
    pub reason: Option<ErrorBody>,
    pub embedded: Option<serde_json::Value>,
}

impl Event {
    pub fn new(kind: EventKind, link: EventLink) -> Self {
        Event {
            kind,
            link,
            in_: None,
            status: None,
            reason: None,
            embedded: None,
        }
    }

    pub fn embed(mut self, resource: serde_json::Value) -> Self {
        self.embedded = Some(resource);
        self
    }

    pub fn within(mut self, collection: EventLink) -> Self {
        self.in_ = Some(collection);
        self
    }

    pub fn status(mut self, status: &'static str) -> Self {
        self.status = Some(status);
        self
    }

    pub fn reason(mut self, reason: ErrorBody) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// The events of one sender, in order. A sender may appear several times in a batch.
#[derive(Debug, Clone)]
pub struct SenderBlock {
    pub rel: String,
    pub href: String,
    pub events: Vec<Event>,
}

/// Events one action caused, delivered together in one response.
pub type Unit = Vec<SenderBlock>;

/// Builds a unit sender by sender, merging consecutive events of the same sender.
#[derive(Debug, Default)]
pub struct UnitBuilder {
    unit: Unit,
}

impl UnitBuilder {
    pub fn event(&mut self, sender_rel: &str, sender_href: &str, event: Event) -> &mut Self {
        match self.unit.last_mut() {
            Some(s) if s.rel == sender_rel && s.href == sender_href => s.events.push(event),
            _ => self.unit.push(SenderBlock {
                rel: sender_rel.into(),
                href: sender_href.into(),
                events: vec![event],
            }),
        }
        self
    }

    pub fn build(self) -> Unit {
        self.unit
    }
}

/// Why a held P-GET was woken.
#[derive(Debug)]
pub enum Wake {
    Events,
    Replaced,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    priority: u64,
    tx: oneshot::Sender<Wake>,
}

/// The events feed of one application.
#[derive(Debug)]
pub struct Feed {
    /// Number of the newest batch issued (0: none yet; the first is 1).
    last_issued: u64,
    /// Batches issued and not yet acknowledged, by number.
    kept: BTreeMap<u64, Unit>,
    pending: VecDeque<Unit>,
    waiter: Option<Waiter>,
    /// The `timeout` the client asked for last (the server remembers it).
    timeout_secs: u64,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            last_issued: 0,
            kept: BTreeMap::new(),
            pending: VecDeque::new(),
            waiter: None,
            timeout_secs: DEFAULT_TIMEOUT,
        }
    }
}

const DEFAULT_TIMEOUT: u64 = 180;
const MIN_TIMEOUT: u64 = 180;
const MAX_TIMEOUT: u64 = 1800;

enum AckKind {
    Kept(u64),
    New(u64),
    Resync(u64),
}

impl Feed {
    /// Queue a unit and wake the held P-GET, if any.
    pub fn push(&mut self, unit: Unit) {
        if unit.is_empty() {
            return;
        }
        self.pending.push_back(unit);
        if let Some(w) = self.waiter.take() {
            // The waiter may have hung up; the unit stays queued for the next GET.
            let _ = w.tx.send(Wake::Events);
        }
    }

    fn classify(&self, ack: Option<u64>) -> AckKind {
        let first_kept = self
            .kept
            .keys()
            .next()
            .copied()
            .unwrap_or(self.last_issued + 1);
        match ack {
            Some(n) if n == self.last_issued + 1 => AckKind::New(n),
            Some(n) if self.kept.contains_key(&n) => AckKind::Kept(n),
            _ => AckKind::Resync(first_kept),
        }
    }

    fn acknowledge_below(&mut self, n: u64) {
        self.kept = self.kept.split_off(&n);
    }

    fn issue(&mut self, n: u64, unit: Unit) {
        self.last_issued = n;
        self.kept.insert(n, unit);
    }

    /// Whether a P-GET for this feed is being held (for the control API's state view).
    pub fn is_held(&self) -> bool {
        self.waiter.as_ref().is_some_and(|w| !w.tx.is_closed())
    }

    pub fn pending_units(&self) -> usize {
        self.pending.len()
    }
}

enum Step {
    Ready(Reply),
    Wait(oneshot::Receiver<Wake>, u64),
}

fn batch_reply(req: &Req, paths: &Paths, n: u64, unit: &Unit) -> Reply {
    // Real servers sometimes write the feed's own href absolute: so does the simulator,
    // which gives the recording proxy an origin to rewrite in every batch.
    let self_href = format!("{}{}", req.origin, paths.events(n));
    let next = paths.events(n + 1);
    let body = if req.neg.is_xml() {
        render::events_xml(&self_href, &next, unit)
    } else {
        render::events_json(&self_href, &next, unit)
    };
    Reply::body(StatusCode::OK, &req.neg.content_type, body)
}

fn replaced() -> Fail {
    Fail::conflict(
        Some("PGetReplaced"),
        "The pending GET was replaced by a newer one.",
    )
}

fn step(
    state: &mut State,
    req: &Req,
    app_id: &str,
    ack: Option<u64>,
    priority: u64,
    give_up: bool,
) -> Result<Step, Fail> {
    let waiter_id = state.new_waiter_id();
    let app = state.apps.get_mut(app_id).ok_or_else(Fail::app_not_found)?;
    let paths = Paths::new(app);
    let feed = &mut app.feed;
    match feed.classify(ack) {
        AckKind::Resync(first) => {
            let self_href = match ack {
                Some(n) => paths.events(n),
                None => format!("{}/events", paths.base()),
            };
            let body = if req.neg.is_xml() {
                render::resync_xml(&self_href, &paths.events(first))
            } else {
                render::resync_json(&paths.events(first))
            };
            Ok(Step::Ready(Reply::body(
                StatusCode::OK,
                &req.neg.content_type,
                body,
            )))
        }
        AckKind::Kept(n) => {
            feed.acknowledge_below(n);
            let unit = feed.kept.get(&n).cloned().unwrap_or_default();
            Ok(Step::Ready(batch_reply(req, &paths, n, &unit)))
        }
        AckKind::New(n) => {
            feed.acknowledge_below(n);
            let unit = match feed.pending.pop_front() {
                Some(unit) => unit,
                None if give_up => Unit::new(),
                None => {
                    // Among P-GETs for the same ack a higher `priority` wins; otherwise the
                    // newer one replaces the older.
                    if let Some(old) = &feed.waiter
                        && !old.tx.is_closed()
                        && old.priority > priority
                    {
                        return Err(replaced());
                    }
                    let (tx, rx) = oneshot::channel();
                    let waiter = Waiter {
                        id: waiter_id,
                        priority,
                        tx,
                    };
                    if let Some(old) = feed.waiter.replace(waiter) {
                        let _ = old.tx.send(Wake::Replaced);
                    }
                    return Ok(Step::Wait(rx, waiter_id));
                }
            };
            let reply = batch_reply(req, &paths, n, &unit);
            feed.issue(n, unit);
            Ok(Step::Ready(reply))
        }
    }
}

/// `GET …/events?ack=N[&timeout=S]`: answer at once or hold until events, timeout,
/// replacement or shutdown.
pub async fn pget(sim: &Arc<Sim>, req: &Req, app_id: &str) -> Handled {
    let ack = req
        .query_param("ack")
        .and_then(|a| a.trim().parse::<u64>().ok());
    let priority = req
        .query_param("priority")
        .and_then(|p| p.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let timeout_secs = {
        let mut state = sim.lock();
        let app = state.apps.get_mut(app_id).ok_or_else(Fail::app_not_found)?;
        if let Some(t) = req
            .query_param("timeout")
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            app.feed.timeout_secs = t.clamp(MIN_TIMEOUT, MAX_TIMEOUT);
        }
        app.feed.timeout_secs
    };
    let deadline = Instant::now() + sim.config.scaled(Duration::from_secs(timeout_secs));
    loop {
        let next = {
            let mut state = sim.lock();
            step(&mut state, req, app_id, ack, priority, false)?
        };
        let (rx, my_id) = match next {
            Step::Ready(reply) => return Ok(reply),
            Step::Wait(rx, id) => (rx, id),
        };
        tokio::select! {
            woken = rx => match woken {
                Ok(Wake::Events) | Err(_) => continue,
                Ok(Wake::Replaced) => return Err(replaced()),
            },
            _ = tokio::time::sleep_until(deadline) => {}
            _ = sim.shutdown.cancelled() => {}
        }
        // Timed out (or shutting down): release with whatever is due, usually nothing.
        let mut state = sim.lock();
        if let Some(app) = state.apps.get_mut(app_id)
            && app.feed.waiter.as_ref().is_some_and(|w| w.id == my_id)
        {
            app.feed.waiter = None;
        }
        return match step(&mut state, req, app_id, ack, priority, true)? {
            Step::Ready(reply) => Ok(reply),
            Step::Wait(..) => Err(Fail::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "event feed could not release the request",
            )),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(tag: &str) -> Unit {
        let mut b = UnitBuilder::default();
        b.event(
            "conversation",
            "/c",
            Event::new(EventKind::Added, EventLink::new(tag, "/x")),
        );
        b.build()
    }

    #[test]
    fn acks_classify() {
        let mut f = Feed::default();
        assert!(matches!(f.classify(Some(1)), AckKind::New(1)));
        assert!(matches!(f.classify(Some(2)), AckKind::Resync(1)));
        f.push(unit("a"));
        let u = f.pending.pop_front().unwrap();
        f.issue(1, u);
        assert!(matches!(f.classify(Some(1)), AckKind::Kept(1)));
        assert!(matches!(f.classify(Some(2)), AckKind::New(2)));
        f.acknowledge_below(2);
        assert!(matches!(f.classify(Some(1)), AckKind::Resync(2)));
        assert!(matches!(f.classify(None), AckKind::Resync(2)));
    }

    #[test]
    fn builder_merges_consecutive_senders_only() {
        let mut b = UnitBuilder::default();
        let e = || Event::new(EventKind::Added, EventLink::new("x", "/x"));
        b.event("a", "/a", e())
            .event("a", "/a", e())
            .event("b", "/b", e());
        b.event("a", "/a", e());
        let u = b.build();
        assert_eq!(u.len(), 3);
        assert_eq!(u[0].events.len(), 2);
    }
}
