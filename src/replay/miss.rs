//! Misses that explain themselves: a request nothing recorded answers gets a UCWA-shaped 404
//! (`subcode` `ReplayMiss`) naming the closest recorded requests and how each differs, so the
//! developer sees at once "same path, different body" or "asked for XML, recorded JSON".

use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::index::Index;
use crate::body::Body;
use crate::recording::MatchKey;
use crate::ucwa::{ErrorBody, Representation, error_response};

/// Response header marking a replay miss (and an exhausted key).
pub const MISS_HEADER: &str = "x-ucwa-replay";

/// How many closest candidates a miss names.
const MAX_CLOSEST: usize = 3;

/// Why a request was not served from the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissReason {
    /// No recorded request has this key.
    NoMatch,
    /// It was recorded, but every recorded answer was already served (`--exhausted error`).
    Exhausted,
}

/// A recorded request close to a missed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closest {
    pub seq: u64,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The parts of the key that differ: `method`, `path`, `query`, `representation`,
    /// `body`, `credential`.
    pub differs: Vec<String>,
}

/// A request the replay could not answer from the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Miss {
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(serialize_with = "repr_name")]
    pub representation: Representation,
    /// The credential placeholder the request carried (when credentials matter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The request's match key, as it would be stored.
    pub match_key: String,
    pub reason: MissReason,
    pub message: String,
    pub closest: Vec<Closest>,
}

/// Serialise a representation by its stored name (`json`, `xml`, `other`).
pub(crate) fn repr_name<S: serde::Serializer>(r: &Representation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        write!(f, " ({}): {}", self.representation, self.message)?;
        for c in &self.closest {
            write!(
                f,
                "\n      closest: #{} {} {}{} differs in {}",
                c.seq,
                c.method,
                c.path,
                c.query
                    .as_deref()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default(),
                c.differs.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The recorded requests nearest to `key`, nearest first, each with what differs. A
/// candidate differing in both method and path is not "close" and is left out.
pub fn closest(index: &Index, credential: Option<&str>, key: &MatchKey) -> Vec<Closest> {
    let mut scored: Vec<(u32, usize, u64, Closest)> = Vec::new();
    // One candidate per distinct recorded request: a group, by its first exchange.
    for group in 0..index.group_count() {
        let entry = &index.entries()[index.group(group)[0]];
        let k = entry.key();
        let mut differs = Vec::new();
        let mut weight = 0;
        let mut check = |name: &str, same: bool, w: u32| {
            if !same {
                differs.push(name.to_string());
                weight += w;
            }
        };
        check("method", k.method == key.method, 4);
        check("path", k.path == key.path, 4);
        check("query", k.query == key.query, 2);
        check("representation", k.representation == key.representation, 1);
        check("body", k.body == key.body, 1);
        if index.credentials_matter() {
            check("credential", entry.credential.as_deref() == credential, 1);
        }
        if differs.is_empty()
            || (differs.contains(&"method".into()) && differs.contains(&"path".into()))
        {
            continue;
        }
        let common = common_prefix(&k.path, &key.path);
        scored.push((
            weight,
            usize::MAX - common,
            entry.seq,
            Closest {
                seq: entry.seq,
                method: entry.method.to_string(),
                path: entry.path().to_string(),
                query: entry.query.as_deref().map(str::to_string),
                differs,
            },
        ));
    }
    scored.sort_by_key(|s| (s.0, s.1, s.2));
    scored
        .into_iter()
        .take(MAX_CLOSEST)
        .map(|(_, _, _, c)| c)
        .collect()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// The 404 a miss is answered with, in the representation the client asked for.
pub fn miss_response(miss: &Miss) -> Response<Body> {
    let subcode = match miss.reason {
        MissReason::NoMatch => "ReplayMiss",
        MissReason::Exhausted => "ReplayExhausted",
    };
    let closest = serde_json::to_value(&miss.closest).unwrap_or_else(|_| json!([]));
    let err = ErrorBody::new(StatusCode::NOT_FOUND, Some(subcode), miss.message.clone())
        .with("closest", closest);
    let mut resp = error_response(&err, miss.representation);
    let marker = match miss.reason {
        MissReason::NoMatch => "miss",
        MissReason::Exhausted => "exhausted",
    };
    resp.headers_mut()
        .insert(MISS_HEADER, HeaderValue::from_static(marker));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Exchange, KeyOptions, KeyRequest};

    fn rec(seq: u64, method: &str, path: &str, accept: Option<&str>, body: &str) -> Exchange {
        let key = KeyRequest::new(method, path)
            .accept(accept)
            .body(Some("application/json"), body.as_bytes())
            .key(&KeyOptions::default());
        Exchange {
            id: seq as i64,
            seq,
            method: method.into(),
            path: path.into(),
            http_version: "HTTP/1.1".into(),
            request_body: body.as_bytes().to_vec(),
            status: Some(200),
            representation: key.representation,
            match_key: key,
            ..Default::default()
        }
    }

    #[test]
    fn names_what_differs_nearest_first() {
        let index = Index::build(
            &[
                rec(1, "GET", "/ucwa/me", None, ""),
                rec(2, "POST", "/ucwa/apps", None, r#"{"UserAgent":"a"}"#),
                rec(3, "GET", "/ucwa/apps", Some("application/xml"), ""),
                rec(4, "DELETE", "/other", None, ""),
            ],
            &KeyOptions::default(),
            false,
        );
        let asked = KeyRequest::new("POST", "/ucwa/apps")
            .body(Some("application/json"), br#"{"UserAgent":"b"}"#)
            .key(&KeyOptions::default());
        let got = closest(&index, None, &asked);
        assert_eq!(got[0].seq, 2);
        assert_eq!(got[0].differs, ["body"]);
        assert_eq!(got[1].seq, 3);
        assert_eq!(got[1].differs, ["method", "representation", "body"]);
        assert!(got.iter().all(|c| c.seq != 4), "{got:?}");
    }
}
