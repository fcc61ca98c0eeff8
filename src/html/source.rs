//! The one place the HTML pages read the recording model. Everything else in `html/` sees
//! these borrowed views, so a change to the row types (where they live, `kind` and
//! `match_key` becoming types of their own) is fixed here and nowhere else.

use crate::recording::{EventRow, Exchange, SessionInfo};

/// A session as the page shows it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub name: String,
    pub upstream: String,
    pub also_upstreams: Vec<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub tool_version: String,
}

impl SessionView {
    pub fn of(s: &SessionInfo) -> Self {
        SessionView {
            name: s.name.clone(),
            upstream: s.upstream.clone(),
            also_upstreams: s.also_upstreams.clone(),
            started_at: s.started_at.clone(),
            ended_at: s.ended_at.clone(),
            tool_version: s.tool_version.clone(),
        }
    }
}

/// One exchange, borrowed from the recording.
#[derive(Debug, Clone)]
pub struct ExchangeView<'a> {
    pub seq: u64,
    pub started_us: i64,
    pub duration_us: i64,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub http_version: &'a str,
    pub request_headers: Vec<(&'a str, &'a [u8])>,
    pub request_body: &'a [u8],
    pub request_truncated: bool,
    pub status: Option<u16>,
    pub response_headers: Vec<(&'a str, &'a [u8])>,
    pub response_body: &'a [u8],
    pub response_truncated: bool,
    pub content_encoding: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The UCWA resource kind (`participantMessaging`, `events`, `token`, …).
    pub kind: String,
    /// `json`, `xml` or `other`: what the request asked for.
    pub representation: &'static str,
    pub match_key: String,
    pub ordinal: u32,
    pub credential: Option<&'a str>,
    pub upstream: Option<&'a str>,
    /// Whether the exchange belongs to the events feed (as the diff decides it).
    pub is_feed: bool,
    pub events: Vec<EventView<'a>>,
}

impl<'a> ExchangeView<'a> {
    pub fn of(e: &'a Exchange) -> Self {
        ExchangeView {
            seq: e.seq,
            started_us: e.started_us,
            duration_us: e.duration_us.max(0),
            method: &e.method,
            path: &e.path,
            query: e.query.as_deref(),
            http_version: &e.http_version,
            request_headers: e.request_headers.iter().collect(),
            request_body: &e.request_body,
            request_truncated: e.request_truncated,
            status: e.status,
            response_headers: e.response_headers.iter().collect(),
            response_body: &e.response_body,
            response_truncated: e.response_truncated,
            content_encoding: e.content_encoding.as_deref(),
            error: e.error.as_deref(),
            kind: e.kind.to_string(),
            representation: e.representation.as_str(),
            match_key: e.match_key.to_string(),
            ordinal: e.ordinal,
            credential: e.credential.as_deref(),
            upstream: e.upstream.as_deref(),
            is_feed: e.is_events(),
            events: e.events.iter().map(EventView::of).collect(),
        }
    }

    /// Path and query as the client wrote them.
    pub fn target(&self) -> String {
        match self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.to_string(),
        }
    }

    /// When the last byte of the response went out, microseconds since the epoch.
    pub fn ended_us(&self) -> i64 {
        self.started_us + self.duration_us
    }

    /// The first value of a response header (case-insensitive), as text.
    pub fn response_header(&self, name: &str) -> Option<&'a str> {
        header(&self.response_headers, name)
    }

    /// The first value of a request header (case-insensitive), as text.
    pub fn request_header(&self, name: &str) -> Option<&'a str> {
        header(&self.request_headers, name)
    }
}

fn header<'a>(headers: &[(&'a str, &'a [u8])], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// One event of an events-feed answer.
#[derive(Debug, Clone)]
pub struct EventView<'a> {
    pub ack: Option<i64>,
    pub position: u32,
    pub sender_rel: &'a str,
    pub sender_href: &'a str,
    pub link_rel: &'a str,
    pub link_href: &'a str,
    pub link_title: Option<&'a str>,
    pub in_rel: Option<&'a str>,
    pub in_href: Option<&'a str>,
    pub event_type: &'a str,
    pub status: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub embedded: Option<&'a str>,
}

impl<'a> EventView<'a> {
    pub fn of(e: &'a EventRow) -> Self {
        EventView {
            ack: e.ack,
            position: e.position,
            sender_rel: &e.sender_rel,
            sender_href: &e.sender_href,
            link_rel: &e.link_rel,
            link_href: &e.link_href,
            link_title: e.link_title.as_deref(),
            in_rel: e.in_rel.as_deref(),
            in_href: e.in_href.as_deref(),
            event_type: &e.event_type,
            status: e.status.as_deref(),
            reason: e.reason.as_deref(),
            embedded: e.embedded.as_deref(),
        }
    }
}

/// Views of every exchange, in `seq` order.
pub fn views(exchanges: &[Exchange]) -> Vec<ExchangeView<'_>> {
    exchanges.iter().map(ExchangeView::of).collect()
}
