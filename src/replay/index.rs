//! The match index: which recorded exchanges answer a request. Built once at start-up from the
//! match keys the recorder stored (no body is re-parsed unless `--ignore-body-field` changes
//! how keys are computed), so a per-test server starts in milliseconds.
//!
//! The index holds what matching, the report and an answer's status need — a few dozen
//! bytes per exchange, each distinct key once — and none of the headers and bodies: those
//! stay in the recording file (or the exchanges held in memory) until a request is answered
//! (`session::Loaded`). A 100 000-exchange recording is indexed in a few tens of MB.
//!
//! Exchanges sharing a key form a *group*, in recorded order (their ordinals): the cursor
//! walks a group front to back. When a session was recorded with more than one credential
//! (two users in one session), the credential placeholder (`REDACTED-n`) is part of the
//! lookup, so each client gets the answers recorded for its own user.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::recording::{Exchange, KeyOptions, KeyRequest, MatchKey, ResourceKind};
use crate::store::ExchangeHead;
use crate::ucwa::Representation;
use crate::ucwa::feed::{ack_of, is_events_request};

/// Index of a group of same-key exchanges.
pub type GroupId = usize;

/// One recorded exchange, keyed: what the index keeps of it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where its headers and bodies are: the row id in the recording file, or the position
    /// among the exchanges held in memory.
    pub at: i64,
    pub seq: u64,
    pub method: Arc<str>,
    /// The path as recorded, when it is not the key's (which it nearly always is).
    path: Option<Box<str>>,
    /// The query as recorded.
    pub query: Option<Box<str>>,
    /// None when no response was recorded.
    pub status: Option<u16>,
    pub duration_us: i64,
    pub kind: ResourceKind,
    /// Shared by every entry of the group.
    key: Arc<MatchKey>,
    /// The credential placeholder, when it takes part in lookups.
    pub credential: Option<Arc<str>>,
    /// Whether it can answer more than once before a reset (see [`Entry::repeats`]).
    repeats: bool,
}

impl Entry {
    /// The key the exchange is looked up by.
    pub fn key(&self) -> &MatchKey {
        &self.key
    }

    /// The path as recorded.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or(&self.key.path)
    }

    /// Whether it can answer more than once before the replay is reset: the last answer of
    /// its group (repeated once the others are used up, `--exhausted repeat-last`) and the
    /// events feed's (a client asks for the same `ack` again after a lost connection). Every
    /// other answer is served once per pass, as the group's cursor moves past it.
    pub fn repeats(&self) -> bool {
        self.repeats
    }
}

/// What a group is found by.
type Lookup = (Option<Arc<str>>, Arc<MatchKey>);

/// The request route the fallbacks compare: everything in the key but the query and the body
/// (a recorded query may hold placeholders, which match any value). Held as the lookup of
/// the route's first group, compared and hashed on the route's parts only.
#[derive(Debug)]
struct Route(Lookup);

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        route_hash(self.0.0.as_deref(), &self.0.1, state);
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        RouteProbe {
            credential: other.0.0.as_deref(),
            key: &other.0.1,
        }
        .matches(self)
    }
}

impl Eq for Route {}

fn route_hash<H: Hasher>(credential: Option<&str>, key: &MatchKey, state: &mut H) {
    (credential, &key.method, &key.path, key.representation).hash(state);
}

/// A borrowed [`Route`].
struct RouteProbe<'a> {
    credential: Option<&'a str>,
    key: &'a MatchKey,
}

impl RouteProbe<'_> {
    fn matches(&self, route: &Route) -> bool {
        let (credential, key) = &route.0;
        self.credential == credential.as_deref()
            && self.key.method == key.method
            && self.key.path == key.path
            && self.key.representation == key.representation
    }
}

impl Hash for RouteProbe<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        route_hash(self.credential, self.key, state);
    }
}

impl hashbrown::Equivalent<Route> for RouteProbe<'_> {
    fn equivalent(&self, route: &Route) -> bool {
        self.matches(route)
    }
}

/// A borrowed [`Lookup`]: finds a group without cloning the request's key. Hashes exactly
/// like the tuple it stands for.
struct Probe<'a> {
    credential: Option<&'a str>,
    key: &'a MatchKey,
}

impl Hash for Probe<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.credential, self.key).hash(state);
    }
}

impl hashbrown::Equivalent<Lookup> for Probe<'_> {
    fn equivalent(&self, (credential, key): &Lookup) -> bool {
        self.credential == credential.as_deref() && self.key == &**key
    }
}

/// The lookup structure of one session.
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<Entry>,
    groups: Vec<Vec<usize>>,
    by_key: hashbrown::HashMap<Lookup, GroupId>,
    /// The groups of each route, in recorded order.
    by_route: hashbrown::HashMap<Route, Vec<GroupId>>,
    /// Highest recorded ack per (credential, events path).
    feed_max_ack: HashMap<(Option<String>, String), i64>,
    credentials_matter: bool,
}

/// Builds an [`Index`] from exchanges handed over one at a time (a recording's rows are
/// read one by one and dropped), sharing each distinct key, credential and method.
#[derive(Debug)]
pub struct IndexBuilder {
    entries: Vec<Entry>,
    keys: hashbrown::HashSet<Arc<MatchKey>>,
    credentials: hashbrown::HashSet<Arc<str>>,
    methods: hashbrown::HashSet<Arc<str>>,
}

/// The shared copy of `value` in `set`, made by `share` the first time.
fn intern<T: ?Sized + Eq + Hash>(
    set: &mut hashbrown::HashSet<Arc<T>>,
    value: &T,
    share: impl FnOnce(&T) -> Arc<T>,
) -> Arc<T> {
    match set.get(value) {
        Some(shared) => shared.clone(),
        None => {
            let shared = share(value);
            set.insert(shared.clone());
            shared
        }
    }
}

impl IndexBuilder {
    /// `expected` is how many exchanges will be pushed (room is made for them at once).
    pub fn new(expected: usize) -> Self {
        IndexBuilder {
            entries: Vec::with_capacity(expected),
            keys: hashbrown::HashSet::with_capacity(expected),
            credentials: hashbrown::HashSet::new(),
            methods: hashbrown::HashSet::new(),
        }
    }

    /// Add an exchange (in any order: the index is in `seq` order); `at` says where its
    /// headers and bodies are.
    pub fn push(&mut self, at: i64, head: &ExchangeHead<'_>) {
        let key = intern(&mut self.keys, &head.key, |_| head.key.clone());
        let credential = head
            .credential
            .map(|c| intern(&mut self.credentials, c, |c| Arc::from(c)));
        self.entries.push(Entry {
            at,
            seq: head.seq,
            method: intern(&mut self.methods, head.method, |m| Arc::from(m)),
            path: (head.path != key.path).then(|| head.path.into()),
            query: head.query.map(Box::from),
            status: head.status,
            duration_us: head.duration_us,
            kind: ResourceKind::from_rel(head.kind),
            key,
            credential,
            repeats: false,
        });
    }

    /// The index of everything pushed.
    pub fn finish(self) -> Index {
        let credentials_matter = self.credentials.len() > 1;
        let mut index = Index {
            credentials_matter,
            ..Index::default()
        };
        index.entries = self.entries;
        if !index.entries.is_sorted_by_key(|e| e.seq) {
            index.entries.sort_by_key(|e| e.seq);
        }
        index.by_key.reserve(self.keys.len());
        // Keys and credentials are shared copies, so a group is found by their addresses:
        // no key is hashed or compared more than once per group.
        let address = |c: &Option<Arc<str>>| c.as_ref().map_or(0, |c| c.as_ptr() as usize);
        let mut by_address: hashbrown::HashMap<(usize, usize), GroupId> =
            hashbrown::HashMap::with_capacity(self.keys.len());
        for (at, entry) in index.entries.iter_mut().enumerate() {
            if !credentials_matter {
                entry.credential = None;
            }
            let credential = entry.credential.clone();
            let key = &entry.key;
            let found = (address(&credential), Arc::as_ptr(key) as usize);
            let group = match by_address.get(&found) {
                Some(&g) => g,
                None => {
                    by_address.insert(found, index.groups.len());
                    let g = index.groups.len();
                    index.groups.push(Vec::new());
                    index.by_key.insert((credential.clone(), key.clone()), g);
                    let route = RouteProbe {
                        credential: credential.as_deref(),
                        key,
                    };
                    match index.by_route.get_mut(&route) {
                        Some(groups) => groups.push(g),
                        None => {
                            index
                                .by_route
                                .insert(Route((credential.clone(), key.clone())), vec![g]);
                        }
                    }
                    g
                }
            };
            index.groups[group].push(at);
            let events = is_events_request(&key.method, &key.path);
            entry.repeats = events;
            if events && let Some(ack) = ack_of(entry.query.as_deref()) {
                let max = index
                    .feed_max_ack
                    .entry((credential.as_deref().map(str::to_string), key.path.clone()))
                    .or_insert(ack);
                *max = (*max).max(ack);
            }
        }
        for group in &index.groups {
            if let Some(&last) = group.last() {
                index.entries[last].repeats = true;
            }
        }
        index
    }
}

impl Index {
    /// Index `exchanges` held in memory (in `seq` order; an entry's `at` is its position).
    /// `recompute` computes every key from the stored request with `opts` instead of reading
    /// the stored key.
    pub fn build(exchanges: &[Exchange], opts: &KeyOptions, recompute: bool) -> Self {
        let mut builder = IndexBuilder::new(exchanges.len());
        for (at, exchange) in exchanges.iter().enumerate() {
            let key = if recompute {
                KeyRequest::of_exchange(exchange).key(opts)
            } else {
                exchange.match_key.clone()
            };
            builder.push(at as i64, &ExchangeHead::of(exchange, Arc::new(key)));
        }
        builder.finish()
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
        self.by_key.get(&Probe { credential, key }).copied()
    }

    /// The groups with the same method, path and representation (any query, any body), in
    /// recorded order.
    pub fn same_route(&self, credential: Option<&str>, key: &MatchKey) -> Vec<GroupId> {
        self.by_route
            .get(&RouteProbe { credential, key })
            .cloned()
            .unwrap_or_default()
    }

    /// The highest ack recorded for an events path, if the path's feed was recorded.
    pub fn feed_max_ack(&self, credential: Option<&str>, path: &str) -> Option<i64> {
        self.feed_max_ack
            .get(&(credential.map(str::to_string), path.to_string()))
            .copied()
    }

    /// The successful answers recorded for an events path in `repr`, latest first: where the
    /// synthetic empty batch at the end of the feed takes its content type from.
    pub fn feed_answers<'a>(
        &'a self,
        path: &'a str,
        repr: Representation,
    ) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .rev()
            .filter(move |e| e.key().path == path && e.key().representation == repr)
            .filter(|e| e.status.is_some_and(|s| (200..300).contains(&s)))
    }
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
    fn last_answers_of_groups_and_feed_answers_repeat() {
        let feed = "/ucwa/oauth/v1/applications/1/events";
        let index = Index::build(
            &[
                recorded(1, "GET", "/a", None),
                recorded(2, "GET", "/a", None),
                recorded(3, "GET", "/b", None),
                recorded(4, "GET", &format!("{feed}?ack=1"), None),
                recorded(5, "GET", &format!("{feed}?ack=1"), None),
                recorded(6, "GET", "/a", None),
            ],
            &KeyOptions::default(),
            false,
        );
        let repeats: Vec<bool> = index.entries().iter().map(Entry::repeats).collect();
        assert_eq!(repeats, [false, false, true, true, true, true]);
    }

    #[test]
    fn groups_follow_recorded_order_and_credentials_only_when_several() {
        let one = Index::build(
            &[
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
            &[
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
    fn exchanges_handed_out_of_order_are_indexed_in_seq_order() {
        let mut builder = IndexBuilder::new(3);
        let mut spaced = recorded(1, "GET", "/a%20b", None);
        spaced.path = "/a b".into();
        for (at, e) in [
            recorded(3, "GET", "/a", None),
            spaced,
            recorded(2, "GET", "/a", None),
        ]
        .iter()
        .enumerate()
        {
            builder.push(
                at as i64 + 10,
                &ExchangeHead::of(e, Arc::new(e.match_key.clone())),
            );
        }
        let idx = builder.finish();
        let seqs: Vec<(u64, i64, &str)> = idx
            .entries()
            .iter()
            .map(|e| (e.seq, e.at, e.path()))
            .collect();
        assert_eq!(seqs, [(1, 11, "/a b"), (2, 12, "/a"), (3, 10, "/a")]);
        let g = idx.lookup(None, idx.entries()[1].key()).unwrap();
        assert_eq!(idx.group(g), [1, 2]);
        assert_eq!(idx.same_route(None, idx.entries()[2].key()), [g]);
    }

    #[test]
    fn feed_end_is_the_highest_recorded_ack() {
        let idx = Index::build(
            &[
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
