//! Exchanges a test writes by hand (method, path, status, body, events), for a replay that
//! needs no recording file and no hand-computed match key:
//!
//! ```
//! use ucwa_replay::replay::{Recorded, ReplayServer};
//!
//! # fn main() -> Result<(), ucwa_replay::Error> {
//! let app = "/ucwa/oauth/v1/applications/1";
//! let server = ReplayServer::from_exchanges(
//!     "https://fe1.contoso.com",
//!     [
//!         Recorded::get(&format!("{app}/me")).json(200, r#"{"name":"Alice"}"#),
//!         Recorded::get(&format!("{app}/events?ack=1"))
//!             .event("conversation", "/c/1", "participantMessaging", "/c/1/pm", "added"),
//!     ],
//! )
//! .start()?;
//! // … point the client at server.url(); dropping the server checks that both were played.
//! # server.stop();
//! # Ok(())
//! # }
//! ```
//!
//! They go through the same ingest step as recorded exchanges (redaction, kinds, the events
//! index, match keys), so they match exactly what a recording of the same requests would.

use serde_json::{Value, json};

use crate::recording::{Exchange, HeaderList};
use crate::ucwa::feed::ack_of;
use crate::ucwa::split_target;

/// One exchange, built by hand. Requests ask for JSON unless told otherwise
/// ([`Recorded::accept`]).
#[derive(Debug, Clone)]
#[must_use = "give it to ReplayServer::from_exchanges"]
pub struct Recorded {
    method: String,
    target: String,
    request_headers: Vec<(String, String)>,
    request_body: Vec<u8>,
    status: Option<u16>,
    error: Option<String>,
    response_headers: Vec<(String, String)>,
    response_body: Vec<u8>,
    /// Events of an events-feed answer, by sender.
    senders: Vec<Value>,
}

impl Recorded {
    /// A request (`target` is `path[?query]`) answered `200` with no body until told more.
    pub fn new(method: &str, target: &str) -> Self {
        Recorded {
            method: method.to_ascii_uppercase(),
            target: target.to_string(),
            request_headers: Vec::new(),
            request_body: Vec::new(),
            status: Some(200),
            error: None,
            response_headers: Vec::new(),
            response_body: Vec::new(),
            senders: Vec::new(),
        }
    }

    /// `GET target`.
    pub fn get(target: &str) -> Self {
        Recorded::new("GET", target)
    }

    /// `POST target`.
    pub fn post(target: &str) -> Self {
        Recorded::new("POST", target)
    }

    /// `DELETE target`.
    pub fn delete(target: &str) -> Self {
        Recorded::new("DELETE", target)
    }

    /// The request's `Accept` (`application/xml` for the XML representation).
    pub fn accept(self, media_type: &str) -> Self {
        self.header("Accept", media_type)
    }

    /// A request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request_headers
            .push((name.to_string(), value.to_string()));
        self
    }

    /// The request body and its `Content-Type`.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.request_body = body.into();
        self.header("Content-Type", content_type)
    }

    /// The response's status (`200` unless told).
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// A response header.
    pub fn response_header(mut self, name: &str, value: &str) -> Self {
        self.response_headers
            .push((name.to_string(), value.to_string()));
        self
    }

    /// The response: status, `Content-Type` and body.
    pub fn respond(mut self, status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.status = Some(status);
        self.response_body = body.into();
        self.response_header("Content-Type", content_type)
    }

    /// A JSON response.
    pub fn json(self, status: u16, body: &str) -> Self {
        self.respond(status, "application/json; charset=utf-8", body)
    }

    /// No response was recorded (the upstream failed): replayed as a UCWA `502`.
    pub fn failed(mut self, error: &str) -> Self {
        self.status = None;
        self.error = Some(error.to_string());
        self
    }

    /// An event of an events-feed answer (the target is `…/events?ack=N`): `sender_rel` /
    /// `sender_href` say who sent it, `link_rel` / `link_href` what it is about, `event_type`
    /// is `added`, `updated`, `deleted`, `started` or `completed`. The JSON batch, with its
    /// `self` and `next` links, is written when the exchange is built.
    pub fn event(
        mut self,
        sender_rel: &str,
        sender_href: &str,
        link_rel: &str,
        link_href: &str,
        event_type: &str,
    ) -> Self {
        let event = json!({"link": {"rel": link_rel, "href": link_href}, "type": event_type});
        match self.senders.last_mut() {
            Some(last) if last["rel"] == sender_rel && last["href"] == sender_href => {
                if let Some(events) = last["events"].as_array_mut() {
                    events.push(event);
                }
            }
            _ => self
                .senders
                .push(json!({"rel": sender_rel, "href": sender_href, "events": [event]})),
        }
        self
    }

    /// The exchange as the recorder would have stored it, before the ingest step.
    pub(crate) fn into_exchange(self, seq: u64, upstream: &str) -> Exchange {
        let (path, query) = split_target(&self.target);
        let mut request_headers = HeaderList::default();
        if !self
            .request_headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
        {
            request_headers.push("accept", "application/json");
        }
        for (n, v) in &self.request_headers {
            request_headers.push(n.to_ascii_lowercase(), v.as_bytes());
        }
        let mut response_headers = HeaderList::default();
        for (n, v) in &self.response_headers {
            response_headers.push(n.to_ascii_lowercase(), v.as_bytes());
        }
        let mut response_body = self.response_body;
        if !self.senders.is_empty() || (response_body.is_empty() && is_feed(path, query)) {
            let ack = ack_of(query).unwrap_or(1);
            let next = super::feed::next_href(path, query, ack);
            response_body = json!({
                "_links": {"self": {"href": self.target}, "next": {"href": next}},
                "sender": self.senders,
            })
            .to_string()
            .into_bytes();
            response_headers.remove("content-type");
            response_headers.push("content-type", "application/json; charset=utf-8");
        }
        Exchange {
            id: seq as i64,
            seq,
            method: self.method,
            path: path.to_string(),
            query: query.map(str::to_string),
            http_version: "HTTP/1.1".into(),
            request_headers,
            request_body: self.request_body,
            status: self.status,
            error: self.error,
            response_headers,
            response_body,
            upstream: Some(upstream.to_string()),
            ..Exchange::default()
        }
    }
}

fn is_feed(path: &str, query: Option<&str>) -> bool {
    crate::ucwa::feed::is_events_request("GET", path) && ack_of(query).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_a_batch_with_its_links() {
        let ex = Recorded::get("/app/1/events?ack=3")
            .event(
                "conversation",
                "/c",
                "participantMessaging",
                "/c/pm/1",
                "added",
            )
            .event(
                "conversation",
                "/c",
                "participantMessaging",
                "/c/pm/2",
                "added",
            )
            .event("me", "/me", "presence", "/me/presence", "updated")
            .into_exchange(1, "https://fe1.contoso.com");
        let v: Value = serde_json::from_slice(&ex.response_body).unwrap();
        assert_eq!(v["_links"]["next"]["href"], "/app/1/events?ack=4");
        assert_eq!(v["sender"].as_array().unwrap().len(), 2);
        assert_eq!(v["sender"][0]["events"].as_array().unwrap().len(), 2);
        assert_eq!(ex.request_headers.get("accept"), Some("application/json"));
    }
}
