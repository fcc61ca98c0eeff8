//! Recorded answers ready to send, kept up to a byte budget.
//!
//! A recorded response goes out as it was recorded except for the origins, and the rules that
//! rewrite it (`recording::headers`, the origin rewriter) depend only on the recorded bytes
//! and the replay's own base URL. So an answer that can be asked for again is prepared once
//! — read from the recording, head rules applied, body rewritten — and served again from
//! memory: a client that has used up the recorded answers to a request
//! (`--exhausted repeat-last`), one that asks the events feed for the same `ack` again, or
//! a suite that resets the replay between tests costs neither a read nor a rewrite. The
//! answers served once per pass are not kept (`Loaded::prepared` decides). The budget keeps
//! a replay of a large recording within bounded memory; the oldest answers prepared leave
//! first (a replay moves through its recording front to back, so the oldest are the least
//! likely to be asked again).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::{Body, full};
use crate::recording::headers::{ResponseRules, client_headers, retain_in_order};
use crate::store::ResponseParts;

/// How many bytes of prepared answers a replay keeps by default.
pub const DEFAULT_BUDGET: usize = 8 * 1024 * 1024;

/// What an answer weighs besides its bytes (maps, allocations), for the budget.
const OVERHEAD: usize = 512;

/// A recorded response with the replay's head rules applied and its origins rewritten.
#[derive(Debug)]
pub struct Prepared {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// An empty body whose recorded `Content-Length: 0` must stay where it was.
    unknown_size: bool,
    /// What it weighs against the budget, counted once: a kept answer is weighed when kept
    /// and again when it leaves, and walking its head each time showed in profiles.
    weight: usize,
}

impl Prepared {
    /// Prepare the recorded `status` and `parts` for a replay whose rules are `rules`.
    pub fn new(status: u16, parts: ResponseParts, rules: &ResponseRules) -> Self {
        // A body naming no recorded origin (most of them) is sent as read, not copied.
        let rewritten = match rules.to_public.rewrite(&parts.body) {
            Cow::Owned(body) => Some(body),
            Cow::Borrowed(_) => None,
        };
        let body = Bytes::from(rewritten.unwrap_or(parts.body));
        let mut headers = parts.headers;
        if parts.content_encoding.is_some() {
            // The body is stored decoded and sent whole.
            retain_in_order(&mut headers, |n| n != header::CONTENT_ENCODING);
        }
        client_headers(&mut headers, rules);
        if let Some(length) = headers.get_mut(header::CONTENT_LENGTH) {
            *length = HeaderValue::from(body.len());
        }
        // hyper moves the `Content-Length: 0` of a known-empty body to the end of the head;
        // a body of unknown size keeps the recorded field where it was.
        let unknown_size = body.is_empty() && headers.contains_key(header::CONTENT_LENGTH);
        let weight = OVERHEAD
            + body.len()
            + headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 96)
                .sum::<usize>();
        Prepared {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            headers,
            body,
            unknown_size,
            weight,
        }
    }

    /// The response to send (a cheap copy: the body is shared).
    pub fn response(&self) -> Response<Body> {
        respond(
            self.status,
            self.headers.clone(),
            self.body.clone(),
            self.unknown_size,
        )
    }

    /// The response to send, made of the answer itself (one not kept for later).
    pub fn into_response(self) -> Response<Body> {
        respond(self.status, self.headers, self.body, self.unknown_size)
    }

    /// What it weighs against the budget.
    fn weight(&self) -> usize {
        self.weight
    }
}

fn respond(
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    unknown_size: bool,
) -> Response<Body> {
    let body = if unknown_size {
        empty_of_unknown_size()
    } else {
        full(body)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// An empty body that does not announce its size.
pub fn empty_of_unknown_size() -> Body {
    let frames =
        futures_util::stream::empty::<Result<http_body::Frame<Bytes>, std::convert::Infallible>>();
    crate::body::boxed(http_body_util::StreamBody::new(frames))
}

/// The prepared answers of one session, for one base URL at a time (a replay is normally
/// reached at one base; another base starts afresh).
#[derive(Debug)]
pub struct Answers {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The base URL the answers and rules were prepared for.
    base: String,
    rules: Option<Arc<ResponseRules>>,
    by_entry: hashbrown::HashMap<usize, Arc<Prepared>>,
    /// Entries in the order they were prepared (the oldest leave first).
    order: VecDeque<usize>,
    weight: usize,
}

impl Answers {
    /// Keep up to `budget` bytes of prepared answers.
    pub fn new(budget: usize) -> Self {
        Answers {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rules for `base`, built by `make` when the base is new (which forgets the
    /// answers prepared for another base).
    pub fn rules(&self, base: &str, make: impl FnOnce() -> ResponseRules) -> Arc<ResponseRules> {
        let mut inner = self.inner();
        if inner.base == base
            && let Some(rules) = &inner.rules
        {
            return rules.clone();
        }
        let rules = Arc::new(make());
        *inner = Inner {
            base: base.to_string(),
            rules: Some(rules.clone()),
            ..Inner::default()
        };
        rules
    }

    /// The answer prepared for `entry` at `base`, if it is kept; `once` takes it out (an
    /// answer read ahead that will not be asked for again).
    pub fn get(&self, base: &str, entry: usize, once: bool) -> Option<Arc<Prepared>> {
        let mut inner = self.inner();
        if inner.base != base {
            return None;
        }
        if !once {
            return inner.by_entry.get(&entry).cloned();
        }
        let taken = inner.by_entry.remove(&entry)?;
        inner.weight -= taken.weight();
        // Its place in `order` goes when the oldest leave, or here once most places are
        // of answers taken, so `order` stays within twice the answers kept.
        if inner.order.len() > 2 * inner.by_entry.len() + 64 {
            let Inner {
                order, by_entry, ..
            } = &mut *inner;
            order.retain(|e| by_entry.contains_key(e));
        }
        Some(taken)
    }

    /// Keep `prepared` as the answer for `entry` at `base`, within the budget.
    pub fn keep(&self, base: &str, entry: usize, prepared: Arc<Prepared>) {
        let weight = prepared.weight();
        if weight > self.budget {
            return;
        }
        let mut inner = self.inner();
        if inner.base != base || inner.by_entry.contains_key(&entry) {
            return;
        }
        while inner.weight + weight > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.by_entry.remove(&oldest) {
                inner.weight -= gone.weight();
            }
        }
        inner.weight += weight;
        inner.order.push_back(entry);
        inner.by_entry.insert(entry, prepared);
    }

    /// Bytes of answers kept now.
    #[cfg(test)]
    fn weight(&self) -> usize {
        self.inner().weight
    }

    /// How many places `order` holds now.
    #[cfg(test)]
    fn places(&self) -> usize {
        self.inner().order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{HeaderList, Origin, OriginRewriter};

    fn rules() -> ResponseRules {
        let up = Origin::parse("https://fe1.contoso.com").unwrap();
        ResponseRules {
            to_public: OriginRewriter::to_public(&up, &[], "http://127.0.0.1:9"),
            upstream_hosts: vec!["fe1.contoso.com".into()],
        }
    }

    fn parts(body: &str) -> ResponseParts {
        let mut headers = HeaderList::default();
        headers.push("content-type", "application/json");
        headers.push("content-length", "1");
        headers.push("content-encoding", "gzip");
        headers.push("location", "https://fe1.contoso.com/ucwa/x");
        ResponseParts {
            headers: headers.to_http(),
            body: body.as_bytes().to_vec(),
            content_encoding: Some("gzip".into()),
            error: None,
        }
    }

    #[tokio::test]
    async fn prepared_once_sent_alike_every_time() {
        use http_body_util::BodyExt;
        let p = Prepared::new(201, parts(r#"{"a":"https://fe1.contoso.com/x"}"#), &rules());
        for _ in 0..2 {
            let resp = p.response();
            assert_eq!(resp.status(), 201);
            let names: Vec<_> = resp.headers().keys().map(|n| n.as_str()).collect();
            assert_eq!(names, ["content-type", "content-length", "location", "via"]);
            assert_eq!(resp.headers()["location"], "http://127.0.0.1:9/ucwa/x");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], br#"{"a":"http://127.0.0.1:9/x"}"#);
        }
    }

    #[test]
    fn the_budget_holds_and_the_oldest_leave_first() {
        let rules = rules();
        let one = Arc::new(Prepared::new(200, parts(&"x".repeat(1000)), &rules));
        let budget = one.weight() * 3;
        let answers = Answers::new(budget);
        let base = "http://127.0.0.1:9";
        answers.rules(base, || rules.clone());
        for entry in 0..5 {
            answers.keep(base, entry, one.clone());
            assert!(answers.weight() <= budget);
        }
        assert!(answers.get(base, 0, false).is_none() && answers.get(base, 1, false).is_none());
        assert!((2..5).all(|e| answers.get(base, e, false).is_some()));
        // Another base starts afresh.
        assert!(answers.get("http://127.0.0.1:10", 4, false).is_none());
        answers.rules("http://127.0.0.1:10", || rules.clone());
        assert!(answers.get(base, 4, false).is_none());
        assert_eq!(answers.weight(), 0);
        // An answer larger than the whole budget is not kept.
        let small = Answers::new(10);
        small.rules(base, || rules.clone());
        small.keep(base, 0, one);
        assert!(small.get(base, 0, false).is_none());
    }

    #[test]
    fn an_answer_taken_once_leaves_and_its_places_are_bounded() {
        let rules = rules();
        let one = Arc::new(Prepared::new(200, parts("x"), &rules));
        let answers = Answers::new(usize::MAX);
        let base = "http://127.0.0.1:9";
        answers.rules(base, || rules.clone());
        for entry in 0..10_000 {
            answers.keep(base, entry, one.clone());
            assert!(answers.get(base, entry, true).is_some());
            assert!(answers.get(base, entry, true).is_none());
            assert_eq!(answers.weight(), 0);
            assert!(answers.places() <= 65, "{}", answers.places());
        }
        // Taken or not, `get` without `once` leaves it.
        answers.keep(base, 1, one.clone());
        assert!(answers.get(base, 1, false).is_some());
        assert!(answers.get(base, 1, false).is_some());
    }
}
