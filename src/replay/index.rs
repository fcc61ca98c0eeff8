//! The match index: which recorded exchanges answer a request. Built once at start-up from the
//! match keys the recorder stored (no body is re-parsed unless `--ignore-body-field` changes
//! how keys are computed), so a per-test server starts in milliseconds.
//!
//! Exchanges sharing a key form a *group*, in recorded order (their ordinals): the cursor
//! walks a group front to back. When a session was recorded with more than one credential
//! (two users in one session), the credential placeholder (`REDACTED-n`) is part of the
//! lookup, so each client gets the answers recorded for its own user.

use std::collections::{BTreeSet, HashMap};

use crate::recording::{Exchange, KeyOptions, KeyRequest, MatchKey};
use crate::ucwa::Representation;
use crate::ucwa::feed::{ack_of, is_events_request};

/// Index of a group of same-key exchanges.
pub type GroupId = usize;

/// One recorded exchange, keyed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub exchange: Exchange,
    /// The credential placeholder, when it takes part in lookups.
    pub credential: Option<String>,
}

impl Entry {
    /// The key the exchange is looked up by.
    pub fn key(&self) -> &MatchKey {
        &self.exchange.match_key
    }
}

/// The request route the fallbacks compare: everything in the key but the query and the body
/// (a recorded query may hold placeholders, which match any value).
type Route = (Option<String>, String, String, Representation);

/// The lookup structure of one session.
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<Entry>,
    groups: Vec<Vec<usize>>,
    by_key: HashMap<(Option<String>, MatchKey), GroupId>,
    by_route: HashMap<Route, BTreeSet<GroupId>>,
    /// Highest recorded ack per (credential, events path).
    feed_max_ack: HashMap<(Option<String>, String), i64>,
    credentials_matter: bool,
}

impl Index {
    /// Index `exchanges` (in `seq` order). `recompute` computes every key from the stored
    /// request with `opts` instead of reading the stored key.
    pub fn build(exchanges: Vec<Exchange>, opts: &KeyOptions, recompute: bool) -> Self {
        let distinct: BTreeSet<&str> = exchanges
            .iter()
            .filter_map(|e| e.credential.as_deref())
            .collect();
        let credentials_matter = distinct.len() > 1;
        let mut index = Index {
            credentials_matter,
            ..Index::default()
        };
        for mut exchange in exchanges {
            if recompute {
                exchange.match_key = KeyRequest::of_exchange(&exchange).key(opts);
            }
            let key = exchange.match_key.clone();
            let credential = if credentials_matter {
                exchange.credential.clone()
            } else {
                None
            };
            let at = index.entries.len();
            let lookup = (credential.clone(), key.clone());
            let group = match index.by_key.get(&lookup) {
                Some(&g) => g,
                None => {
                    let g = index.groups.len();
                    index.groups.push(Vec::new());
                    index.by_key.insert(lookup, g);
                    g
                }
            };
            index.groups[group].push(at);
            index
                .by_route
                .entry(route(credential.as_deref(), &key))
                .or_default()
                .insert(group);
            if is_events_request(&key.method, &key.path)
                && let Some(ack) = ack_of(exchange.query.as_deref())
            {
                let max = index
                    .feed_max_ack
                    .entry((credential.clone(), key.path.clone()))
                    .or_insert(ack);
                *max = (*max).max(ack);
            }
            index.entries.push(Entry {
                exchange,
                credential,
            });
        }
        index
    }

    /// Whether the credential placeholder takes part in lookups.
    pub fn credentials_matter(&self) -> bool {
        self.credentials_matter
    }

    /// The credential a request is looked up with (None when credentials do not matter).
    pub fn lookup_credential(&self, placeholder: Option<&str>) -> Option<String> {
        if self.credentials_matter {
            placeholder.map(str::to_string)
        } else {
            None
        }
    }

    /// All entries, in recorded order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry indices of a group, in recorded order.
    pub fn group(&self, group: GroupId) -> &[usize] {
        &self.groups[group]
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The group answering exactly this key.
    pub fn lookup(&self, credential: Option<&str>, key: &MatchKey) -> Option<GroupId> {
        self.by_key
            .get(&(credential.map(str::to_string), key.clone()))
            .copied()
    }

    /// The groups with the same method, path and representation (any query, any body), in
    /// recorded order.
    pub fn same_route(&self, credential: Option<&str>, key: &MatchKey) -> Vec<GroupId> {
        self.by_route
            .get(&route(credential, key))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The highest ack recorded for an events path, if the path's feed was recorded.
    pub fn feed_max_ack(&self, credential: Option<&str>, path: &str) -> Option<i64> {
        self.feed_max_ack
            .get(&(credential.map(str::to_string), path.to_string()))
            .copied()
    }

    /// The content type the recording answered an events path with in `repr`, for the
    /// synthetic empty batch at the end of the feed.
    pub fn feed_content_type(&self, path: &str, repr: Representation) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.key().path == path && e.key().representation == repr)
            .filter(|e| e.exchange.status.is_some_and(|s| (200..300).contains(&s)))
            .find_map(|e| e.exchange.response_headers.get("content-type"))
    }
}

fn route(credential: Option<&str>, key: &MatchKey) -> Route {
    (
        credential.map(str::to_string),
        key.method.clone(),
        key.path.clone(),
        key.representation,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(seq: u64, method: &str, pq: &str, cred: Option<&str>) -> Exchange {
        let (path, query) = match pq.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (pq.to_string(), None),
        };
        let key = KeyRequest::new(method, pq).key(&KeyOptions::default());
        Exchange {
            id: seq as i64,
            seq,
            method: method.into(),
            path,
            query,
            http_version: "HTTP/1.1".into(),
            status: Some(200),
            match_key: key,
            credential: cred.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn groups_follow_recorded_order_and_credentials_only_when_several() {
        let one = Index::build(
            vec![
                recorded(1, "GET", "/a", Some("REDACTED-1")),
                recorded(2, "GET", "/b", Some("REDACTED-1")),
                recorded(3, "GET", "/a", Some("REDACTED-1")),
            ],
            &KeyOptions::default(),
            false,
        );
        assert!(!one.credentials_matter());
        let key = one.entries()[0].key().clone();
        let g = one.lookup(None, &key).unwrap();
        assert_eq!(one.group(g), [0, 2]);

        let two = Index::build(
            vec![
                recorded(1, "GET", "/a", Some("REDACTED-1")),
                recorded(2, "GET", "/a", Some("REDACTED-2")),
            ],
            &KeyOptions::default(),
            false,
        );
        assert!(two.credentials_matter());
        assert_eq!(two.lookup(None, &key), None);
        assert_eq!(
            two.group(two.lookup(Some("REDACTED-2"), &key).unwrap()),
            [1]
        );
    }

    #[test]
    fn feed_end_is_the_highest_recorded_ack() {
        let idx = Index::build(
            vec![
                recorded(1, "GET", "/app/1/events?ack=1", None),
                recorded(2, "GET", "/app/1/events?ack=2&timeout=5", None),
            ],
            &KeyOptions::default(),
            true,
        );
        assert_eq!(idx.feed_max_ack(None, "/app/1/events"), Some(2));
        assert_eq!(idx.feed_max_ack(None, "/app/2/events"), None);
    }
}
