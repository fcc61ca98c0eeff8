//! The replayer's decisions: a loaded session, its cursors and play counts, and what answers a
//! request — a recorded exchange, the end of the events feed, an injected fault, or a miss —
//! and the record of it all (the report, the request log). No HTTP here: the server
//! ([`super::server`]) reads requests, waits (pacing, held P-GETs, delays) and writes
//! responses; the control API ([`super::control`]) resets, switches sessions and sets faults.
//!
//! What the client sent is redacted (the same redactor as recording) before it is matched,
//! logged or reported: a real token or password becomes a placeholder, which is what the
//! recording holds in its place, so it matches, and a secret never reaches a log line or a
//! report.
//!
//! All mutable state sits behind one `std::sync::Mutex` that is taken for a few map lookups
//! and counter updates and never held across an await: a held P-GET or a paced answer waits
//! on its own task and blocks nobody.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use http::{HeaderName, header};

use super::cursor::{Cursors, Pick};
use super::fault::{self, FaultRule, RuleState, RuleStatus};
use super::feed;
use super::hold::Holds;
use super::index::{Entry, GroupId};
use super::log::{Outcome, Received, RequestLog};
use super::miss::{Miss, MissReason, closest};
use super::near_miss::{NearMiss, body_text, differences};
use super::options::{BodyMatch, ReplayConfig};
use super::redacted::{equal_but_secrets, query_equal_but_secrets};
use super::report::{FaultFired, Forwarded, Rejected, ReplayReport, Unplayed};
use super::session::{Loaded, Source};
use crate::error::Error;
use crate::recording::{Exchange, KeyOptions, KeyRequest, MatchKey, SessionInfo};
use crate::redact::{ExchangeFields, Redactor};
use crate::store::RequestParts;
use crate::ucwa::feed::{ack_of, is_events_request};

/// A loaded session, ready to answer requests. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Replayer {
    source: Source,
    pub(super) config: ReplayConfig,
    key_options: KeyOptions,
    /// Scrubs what clients send before it is matched, logged or reported.
    redactor: Redactor,
    state: Mutex<State>,
    /// The P-GETs being held, one per feed.
    pub(super) holds: Holds,
}

/// Everything that changes while replaying; [`Replayer::reset`] puts it back.
#[derive(Debug)]
struct State {
    /// The session being replayed (switched by [`Replayer::switch_session`]).
    loaded: Arc<Loaded>,
    /// Bumped by every reset, so that a request decided before it cannot write into the
    /// log after it.
    epoch: u64,
    cursors: Cursors,
    /// Times each entry was served.
    played: Vec<u32>,
    served: u64,
    misses: Vec<Miss>,
    near_misses: Vec<NearMiss>,
    rejected: Vec<Rejected>,
    faults: Vec<FaultFired>,
    forwarded: Vec<Forwarded>,
    rules: Vec<RuleState>,
    requests: RequestLog,
}

impl State {
    fn new(loaded: Arc<Loaded>, rules: Vec<RuleState>, epoch: u64) -> Self {
        let groups = loaded.index.group_count();
        let entries = loaded.index.entries().len();
        State {
            loaded,
            epoch,
            cursors: Cursors::new(groups),
            played: vec![0; entries],
            served: 0,
            misses: Vec::new(),
            near_misses: Vec::new(),
            rejected: Vec::new(),
            faults: Vec::new(),
            forwarded: Vec::new(),
            rules,
            requests: RequestLog::new(),
        }
    }
}

/// Why a request whose key matched nothing is served anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// It differs only where the recording holds redaction placeholders.
    Secrets,
    /// `--body-match lenient` and a single candidate: a near miss.
    Lenient,
}

/// What answers a request.
#[derive(Debug)]
pub(super) enum Answer {
    /// The recorded exchange at this index entry.
    Serve(usize),
    /// The end of the events feed.
    FeedEnd { ack: i64 },
    /// Nothing recorded answers it.
    Miss(Miss),
    /// Spy mode: nothing recorded answers it; forward it.
    Forward,
}

/// A request as the replayer decided it.
#[derive(Debug)]
pub(super) struct Decided {
    /// Its number in the request log, and the log's epoch then.
    pub n: u64,
    pub epoch: u64,
    pub key: MatchKey,
    /// The session it was decided against.
    pub loaded: Arc<Loaded>,
    /// With a fault that does not serve the recorded answer, what *would* have answered
    /// (nothing consumed): a `truncate` cuts it.
    pub answer: Answer,
    pub fault: Option<FaultRule>,
}

/// A request's parts as they are matched and reported: redacted.
struct Scrubbed {
    path: String,
    query: Option<String>,
    body: Vec<u8>,
}

/// Whether a decision takes the recorded answer (moves cursors, counts plays and misses) or
/// only looks at what it would be (an injected fault stands in for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    Consume,
    Peek,
}

impl Replayer {
    /// Load `session` (or the only session when `None`) of the recording at `db`.
    pub fn load(
        db: impl AsRef<Path>,
        session: Option<&str>,
        config: ReplayConfig,
    ) -> Result<Self, Error> {
        Replayer::from_source(Source::File(db.as_ref().to_path_buf()), session, config)
    }

    /// Build from exchanges already read (in `seq` order); `recording` only names the source
    /// in reports.
    pub fn from_exchanges(
        recording: impl AsRef<Path>,
        session: SessionInfo,
        exchanges: Vec<Exchange>,
        config: ReplayConfig,
    ) -> Result<Self, Error> {
        Replayer::from_sessions(
            recording.as_ref().display().to_string(),
            vec![(session, exchanges)],
            None,
            config,
        )
    }

    /// Build from sessions held in memory (`name` names them in reports); replay `session`
    /// (the only one when `None`), and switch between them with `POST /_replay/session`.
    pub(crate) fn from_sessions(
        name: String,
        sessions: Vec<(SessionInfo, Vec<Exchange>)>,
        session: Option<&str>,
        config: ReplayConfig,
    ) -> Result<Self, Error> {
        let sessions = sessions
            .into_iter()
            .map(|(info, exchanges)| (info, Arc::new(exchanges)))
            .collect();
        Replayer::from_source(Source::Memory { name, sessions }, session, config)
    }

    fn from_source(
        source: Source,
        session: Option<&str>,
        config: ReplayConfig,
    ) -> Result<Self, Error> {
        let key_options = config.key_options();
        let redactor = Redactor::new(&config.redact)?;
        let recompute = !config.ignore_body_fields.is_empty();
        let loaded = Arc::new(source.load(session, &key_options, recompute)?);
        let rules = config.faults.iter().cloned().map(RuleState::new).collect();
        Ok(Replayer {
            source,
            config,
            key_options,
            redactor,
            state: Mutex::new(State::new(loaded, rules, 0)),
            holds: Holds::default(),
        })
    }

    /// The session being replayed.
    pub fn session(&self) -> SessionInfo {
        self.state().loaded.session.clone()
    }

    /// The options in force.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// The state lock; a panic elsewhere must not stop the replay from reporting.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session being replayed, with its index.
    pub(super) fn loaded(&self) -> Arc<Loaded> {
        self.state().loaded.clone()
    }

    /// Misses so far, in arrival order.
    pub fn misses(&self) -> Vec<Miss> {
        self.state().misses.clone()
    }

    /// Near misses so far, in arrival order.
    pub fn near_misses(&self) -> Vec<NearMiss> {
        self.state().near_misses.clone()
    }

    /// Every request received so far, in arrival order, with what answered it.
    pub fn received(&self) -> Vec<Received> {
        self.state().requests.entries()
    }

    /// Requests received but not kept in the log (beyond its limit).
    pub fn received_dropped(&self) -> u64 {
        self.state().requests.dropped()
    }

    /// Recorded exchanges not served so far, in recorded order.
    pub fn unplayed(&self) -> Vec<Unplayed> {
        let state = self.state();
        unplayed_in(&state)
    }

    /// The report so far.
    pub fn report(&self) -> ReplayReport {
        let state = self.state();
        ReplayReport {
            recording: self.source.name(),
            session: state.loaded.session.name.clone(),
            recorded: state.loaded.index.entries().len(),
            served: state.served,
            played: state.played.iter().filter(|n| **n > 0).count(),
            misses: state.misses.clone(),
            near_misses: state.near_misses.clone(),
            rejected: state.rejected.clone(),
            faults: state.faults.clone(),
            unfired_rules: state
                .rules
                .iter()
                .filter(|r| r.fired == 0)
                .map(|r| r.rule.to_string())
                .collect(),
            forwarded: state.forwarded.clone(),
            unplayed: unplayed_in(&state),
        }
    }

    /// Write the report to the configured `--report` file, if any.
    pub fn write_report(&self) -> Result<Option<ReplayReport>, Error> {
        match &self.config.report_path {
            None => Ok(None),
            Some(path) => {
                let report = self.report();
                report.write(path)?;
                Ok(Some(report))
            }
        }
    }

    /// Back to the start: cursors, play counts, misses, near misses, faults fired, the
    /// request log and every rule's occurrence count. The rules themselves stay.
    pub fn reset(&self) {
        let mut state = self.state();
        let loaded = state.loaded.clone();
        let rules = state
            .rules
            .iter()
            .map(|r| RuleState::new(r.rule.clone()))
            .collect();
        let epoch = state.epoch + 1;
        *state = State::new(loaded, rules, epoch);
    }

    /// Replay another session of the same recording, from the start (a reset included).
    pub fn switch_session(&self, name: &str) -> Result<SessionInfo, Error> {
        let recompute = !self.config.ignore_body_fields.is_empty();
        let loaded = Arc::new(self.source.load(Some(name), &self.key_options, recompute)?);
        let session = loaded.session.clone();
        let mut state = self.state();
        let rules = state
            .rules
            .iter()
            .map(|r| RuleState::new(r.rule.clone()))
            .collect();
        let epoch = state.epoch + 1;
        *state = State::new(loaded, rules, epoch);
        Ok(session)
    }

    /// Add fault rules (after those already set).
    pub fn add_faults(&self, rules: impl IntoIterator<Item = FaultRule>) {
        self.state()
            .rules
            .extend(rules.into_iter().map(RuleState::new));
    }

    /// Remove every fault rule (those given at start included).
    pub fn clear_faults(&self) {
        self.state().rules.clear();
    }

    /// The fault rules and what each has done so far.
    pub fn faults(&self) -> Vec<RuleStatus> {
        self.state().rules.iter().map(RuleStatus::from).collect()
    }

    /// Note a request the HTTP layer refused before it could be read.
    pub(crate) fn note_rejected(&self, mut rejected: Rejected) {
        let (mut path, mut query) = match rejected.target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (rejected.target.clone(), None),
        };
        self.redactor.redact(ExchangeFields {
            path: &mut path,
            query: &mut query,
            request_headers: &mut [],
            request_body: &mut Vec::new(),
            response_headers: &mut [],
            response_body: &mut Vec::new(),
            error: &mut None,
        });
        rejected.target = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let mut state = self.state();
        state.requests.push(|| Received {
            n: 0,
            method: rejected.method.clone().unwrap_or_default(),
            path,
            query,
            representation: crate::ucwa::Representation::Other,
            outcome: Outcome::Rejected,
            seq: None,
            status: Some(rejected.status),
            rule: None,
        });
        state.rejected.push(rejected);
    }

    /// Spy mode: the live server's answer to a forwarded request.
    pub(super) fn note_forwarded(&self, decided: &Decided, forwarded: Forwarded) {
        let mut state = self.state();
        if state.epoch != decided.epoch {
            return;
        }
        if let Some(entry) = state.requests.get_mut(decided.n) {
            entry.status = Some(forwarded.status);
        }
        state.forwarded.push(forwarded);
    }

    /// The log entry of a request (none after a reset, or beyond the log's limit).
    pub(super) fn logged(&self, decided: &Decided) -> Option<Received> {
        let state = self.state();
        if state.epoch != decided.epoch {
            return None;
        }
        state.requests.get(decided.n)
    }

    /// A held P-GET was released by a newer one on the same feed.
    pub(super) fn note_replaced(&self, decided: &Decided) {
        let mut state = self.state();
        if state.epoch != decided.epoch {
            return;
        }
        if let Some(entry) = state.requests.get_mut(decided.n) {
            entry.outcome = Outcome::PgetReplaced;
            entry.status = Some(409);
        }
    }

    /// Redact what the client sent, as the recorder would have.
    fn scrub(&self, parts: &http::request::Parts, body: &[u8]) -> Scrubbed {
        let mut path = parts.uri.path().to_string();
        let mut query = parts.uri.query().map(str::to_string);
        let mut headers: Vec<(String, Vec<u8>)> = parts
            .headers
            .iter()
            .filter(|(n, _)| *n == header::CONTENT_TYPE)
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect();
        let mut body = body.to_vec();
        self.redactor.redact(ExchangeFields {
            path: &mut path,
            query: &mut query,
            request_headers: &mut headers,
            request_body: &mut body,
            response_headers: &mut [],
            response_body: &mut Vec::new(),
            error: &mut None,
        });
        Scrubbed { path, query, body }
    }

    /// Decide what answers a request (its body read): an injected fault, the recorded
    /// exchange, the end of the events feed, a miss — or, when `forwarding` (spy mode), to
    /// forward it. Logged and counted here; nothing here waits.
    pub(super) fn decide(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        forwarding: bool,
    ) -> Decided {
        let header = |name: HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let scrubbed = self.scrub(parts, body);
        let content_type = header(header::CONTENT_TYPE);
        // Redacted as the recorder would have: a real secret becomes a placeholder and
        // matches the recording's.
        let scrubbed_key = KeyRequest {
            method: parts.method.as_str(),
            path: &scrubbed.path,
            query: scrubbed.query.as_deref(),
            accept: header(header::ACCEPT),
            content_type,
            body: &scrubbed.body,
        }
        .key(&self.key_options);
        // As sent: a recording that kept a value the default rules redact (a username)
        // still matches. Computed only when the redacted key matches nothing and redaction
        // changed something.
        let redacted = scrubbed.path != parts.uri.path()
            || scrubbed.query.as_deref() != parts.uri.query()
            || scrubbed.body != body;
        let mut raw_key = None;
        let placeholder = header(header::AUTHORIZATION).and_then(credential_placeholder);
        loop {
            let loaded = self.loaded();
            let credential = loaded.index.lookup_credential(placeholder);
            let (key, group) = match loaded.index.lookup(credential.as_deref(), &scrubbed_key) {
                None if redacted => {
                    let raw = raw_key.get_or_insert_with(|| {
                        KeyRequest::of_http(parts, body).key(&self.key_options)
                    });
                    match loaded.index.lookup(credential.as_deref(), raw) {
                        Some(g) => (raw.clone(), Some(g)),
                        None => (scrubbed_key.clone(), None),
                    }
                }
                group => (scrubbed_key.clone(), group),
            };
            let fallback = match group {
                Some(_) => None,
                None => self.fallback(
                    &loaded,
                    &key,
                    credential.as_deref(),
                    parts.uri.query(),
                    content_type,
                    body,
                ),
            };
            let mut state = self.state();
            if !Arc::ptr_eq(&state.loaded, &loaded) {
                continue; // the session was switched meanwhile: decide again
            }
            return self.decide_locked(
                &mut state,
                loaded,
                key,
                Asked {
                    group,
                    credential: credential.as_deref(),
                    placeholder,
                    scrubbed,
                    content_type,
                    fallback,
                    forwarding,
                },
            );
        }
    }

    fn decide_locked(
        &self,
        state: &mut State,
        loaded: Arc<Loaded>,
        key: MatchKey,
        asked: Asked<'_>,
    ) -> Decided {
        let Asked {
            group,
            credential,
            placeholder,
            scrubbed,
            content_type,
            ref fallback,
            forwarding,
        } = asked;
        let index = &loaded.index;
        // The rel the recording knows this resource by, for rules written `*/REL`.
        let rel = (!state.rules.is_empty())
            .then(|| group.or_else(|| fallback.as_ref().and_then(|(g, _)| g.first().copied())))
            .flatten()
            .map(|g| index.entries()[index.group(g)[0]].kind.as_str().to_string());
        let fault = fault::evaluate(&mut state.rules, &key.method, &key.path, rel.as_deref());
        let take = match &fault {
            Some(rule) if !rule.action().serves_recorded() => Take::Peek,
            _ => Take::Consume,
        };
        let (answer, near) = self.choose(
            state,
            &loaded,
            &key,
            group,
            credential,
            placeholder,
            scrubbed.query.as_deref(),
            fallback.clone(),
            take,
        );
        let seq_of = |entry: usize| index.entries()[entry].seq;
        let seq = match &answer {
            Answer::Serve(entry) => Some(seq_of(*entry)),
            _ => None,
        };
        let near_miss = near.then(|| {
            let entry = match answer {
                Answer::Serve(e) => e,
                _ => unreachable!("a near miss is served"),
            };
            let recorded = &index.entries()[entry];
            // Read under the lock, but only for a near miss (rare, and a report finding).
            let request = recorded_request(&loaded, recorded);
            NearMiss {
                seq: recorded.seq,
                method: key.method.clone(),
                path: scrubbed.path.clone(),
                query: scrubbed.query.clone(),
                representation: key.representation,
                differences: differences(
                    &self.key_options,
                    request.headers.get("content-type"),
                    &request.body,
                    content_type,
                    &scrubbed.body,
                ),
                recorded_body: body_text(&request.body),
                received_body: body_text(&scrubbed.body),
            }
        });
        let answer = match answer {
            Answer::Miss(miss) if forwarding && take == Take::Consume => {
                let _ = miss;
                Answer::Forward
            }
            other => other,
        };
        let (outcome, status) = match (&fault, &answer) {
            (Some(rule), _) if take == Take::Peek => (
                Outcome::Fault,
                match rule.action() {
                    fault::FaultAction::Error { status, .. } => Some(status.as_u16()),
                    fault::FaultAction::Truncate => Some(answer_status(index, &answer)),
                    _ => None,
                },
            ),
            (_, Answer::Serve(_)) if near_miss.is_some() => {
                (Outcome::NearMiss, Some(answer_status(index, &answer)))
            }
            (_, Answer::Serve(_)) => (Outcome::Recorded, Some(answer_status(index, &answer))),
            (_, Answer::FeedEnd { .. }) => (Outcome::FeedEnd, Some(200)),
            (_, Answer::Miss(_)) => (Outcome::Miss, Some(404)),
            (_, Answer::Forward) => (Outcome::Forwarded, None),
        };
        if let Some(rule) = &fault {
            state.faults.push(FaultFired {
                rule: rule.to_string(),
                method: key.method.clone(),
                path: scrubbed.path.clone(),
                query: scrubbed.query.clone(),
                action: rule.action().to_string(),
                seq,
            });
        }
        if take == Take::Consume {
            if let Some(n) = &near_miss {
                tracing::warn!(
                    method = %key.method,
                    target = %scrubbed.path,
                    recorded_seq = n.seq,
                    "replay near miss: the request body differs from the recording; serving the only recorded request of this method, path and representation (--body-match lenient)"
                );
                state.near_misses.push(n.clone());
            }
            if let Answer::Miss(miss) = &answer {
                state.misses.push(miss.clone());
            }
        }
        let n = state.requests.push(|| Received {
            n: 0,
            method: key.method.clone(),
            path: scrubbed.path,
            query: scrubbed.query,
            representation: key.representation,
            outcome,
            seq,
            status,
            rule: fault.as_ref().map(ToString::to_string),
        });
        Decided {
            n,
            epoch: state.epoch,
            key,
            loaded: loaded.clone(),
            answer,
            fault,
        }
    }

    /// Choose the answer under the lock; the flag says whether it is a near miss.
    #[allow(clippy::too_many_arguments)]
    fn choose(
        &self,
        state: &mut State,
        loaded: &Loaded,
        key: &MatchKey,
        group: Option<GroupId>,
        credential: Option<&str>,
        placeholder: Option<&str>,
        query: Option<&str>,
        fallback: Option<(Vec<GroupId>, Fallback)>,
        take: Take,
    ) -> (Answer, bool) {
        let index = &loaded.index;
        if is_events_request(&key.method, &key.path) {
            if let Some(g) = group {
                // Idempotent: every entry for this ack counts as played; one answer is served.
                return match feed::recorded_answer(index, g) {
                    Some(entry) => {
                        if take == Take::Consume {
                            for &i in index.group(g) {
                                state.played[i] += 1;
                            }
                            state.served += 1;
                        }
                        (Answer::Serve(entry), false)
                    }
                    None => {
                        if take == Take::Consume {
                            for &i in index.group(g) {
                                state.played[i] += 1;
                            }
                        }
                        (
                            Answer::FeedEnd {
                                ack: ack_of(query).unwrap_or(0),
                            },
                            false,
                        )
                    }
                };
            }
            if let (Some(ack), Some(max)) =
                (ack_of(query), index.feed_max_ack(credential, &key.path))
                && ack > max
            {
                return (Answer::FeedEnd { ack }, false);
            }
        }
        if let Some(g) = group {
            return match self.pick(state, loaded, g, take) {
                Some(entry) => (Answer::Serve(entry), false),
                None => {
                    let recorded = index.group(g).len();
                    (
                        Answer::Miss(self.miss(
                            loaded,
                            key,
                            placeholder,
                            query,
                            MissReason::Exhausted,
                            format!(
                                "all {recorded} recorded answers to this request were already served (--exhausted error)"
                            ),
                        )),
                        false,
                    )
                }
            };
        }
        // Several recorded requests equal but for secrets (two users' token POSTs) are
        // served in recorded order, like repeated identical requests: the first with an
        // answer not yet played, else the last (the exhaustion policy applies).
        let chosen = fallback.and_then(|(groups, why)| {
            let unplayed = groups
                .iter()
                .copied()
                .find(|&g| index.group(g).iter().any(|&i| state.played[i] == 0));
            unplayed.or(groups.last().copied()).map(|g| (g, why))
        });
        if let Some((g, why)) = chosen
            && let Some(entry) = self.pick(state, loaded, g, take)
        {
            if why == Fallback::Secrets {
                tracing::debug!(
                    method = %key.method,
                    target = %key.path,
                    recorded_seq = index.entries()[entry].seq,
                    "replay: request differs from the recording only where it was redacted"
                );
            }
            return (Answer::Serve(entry), why == Fallback::Lenient);
        }
        (
            Answer::Miss(self.miss(
                loaded,
                key,
                placeholder,
                query,
                MissReason::NoMatch,
                format!("no recorded request matches {key}"),
            )),
            false,
        )
    }

    /// For a request whose key matches nothing: the recorded requests of the same method,
    /// path and representation whose query equals this one (or differs only where the
    /// recording holds placeholders) and whose body equals this one but for placeholders (in
    /// recorded order); else (with `--body-match lenient`) the only such request there is,
    /// whatever its body. Read-only, so computed before locking.
    fn fallback(
        &self,
        loaded: &Loaded,
        key: &MatchKey,
        credential: Option<&str>,
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<(Vec<GroupId>, Fallback)> {
        let index = &loaded.index;
        let same: Vec<GroupId> = index
            .same_route(credential, key)
            .into_iter()
            .filter(|&g| {
                let recorded = index.entries()[index.group(g)[0]].key();
                recorded.query == key.query
                    || query_equal_but_secrets(
                        index.entries()[index.group(g)[0]].query.as_deref(),
                        query,
                    )
            })
            .collect();
        let secrets: Vec<GroupId> = same
            .iter()
            .copied()
            .filter(|&g| {
                let recorded = &index.entries()[index.group(g)[0]];
                recorded.key().body == key.body || {
                    let request = recorded_request(loaded, recorded);
                    equal_but_secrets(
                        &self.key_options,
                        content_type,
                        body,
                        request.headers.get("content-type"),
                        &request.body,
                    )
                }
            })
            .collect();
        match (&secrets[..], &same[..], self.config.body_match) {
            ([], [g], BodyMatch::Lenient) => Some((vec![*g], Fallback::Lenient)),
            ([], _, _) => None,
            _ => Some((secrets, Fallback::Secrets)),
        }
    }

    /// Advance a group's cursor and count the play (or only look, when peeking).
    fn pick(
        &self,
        state: &mut State,
        loaded: &Loaded,
        group: GroupId,
        take: Take,
    ) -> Option<usize> {
        let entries = loaded.index.group(group);
        let pick = match take {
            Take::Consume => state.cursors.pick(group, entries, self.config.exhausted),
            Take::Peek => state.cursors.peek(group, entries, self.config.exhausted),
        };
        match pick {
            Pick::Serve(entry) => {
                if take == Take::Consume {
                    state.played[entry] += 1;
                    state.served += 1;
                }
                Some(entry)
            }
            Pick::Exhausted { .. } => None,
        }
    }

    fn miss(
        &self,
        loaded: &Loaded,
        key: &MatchKey,
        placeholder: Option<&str>,
        query: Option<&str>,
        reason: MissReason,
        message: String,
    ) -> Miss {
        let credential = loaded.index.lookup_credential(placeholder);
        Miss {
            method: key.method.clone(),
            path: key.path.clone(),
            query: query.map(str::to_string),
            representation: key.representation,
            credential: credential.clone(),
            match_key: key.to_string(),
            reason,
            message,
            closest: closest(&loaded.index, credential.as_deref(), key),
        }
    }
}

/// What a request asked, as `decide_locked` needs it.
struct Asked<'a> {
    /// The group its key found, if any.
    group: Option<GroupId>,
    credential: Option<&'a str>,
    placeholder: Option<&'a str>,
    /// Its path, query and body as matched (moved into the request log at last).
    scrubbed: Scrubbed,
    content_type: Option<&'a str>,
    fallback: Option<(Vec<GroupId>, Fallback)>,
    forwarding: bool,
}

/// The status an answer goes out with.
fn answer_status(index: &super::index::Index, answer: &Answer) -> u16 {
    match answer {
        Answer::Serve(entry) => index.entries()[*entry].status.unwrap_or(502),
        Answer::FeedEnd { .. } => 200,
        Answer::Miss(_) => 404,
        Answer::Forward => 0,
    }
}

fn unplayed_in(state: &State) -> Vec<Unplayed> {
    state
        .loaded
        .index
        .entries()
        .iter()
        .zip(&state.played)
        .filter(|(_, n)| **n == 0)
        .map(|(entry, _)| Unplayed {
            seq: entry.seq,
            method: entry.method.to_string(),
            path: entry.path().to_string(),
            query: entry.query.as_deref().map(str::to_string),
            representation: entry.key().representation,
            status: entry.status,
            match_key: entry.key().to_string(),
        })
        .collect()
}

/// The recorded request of an entry, to compare bodies with; empty (and a log line) when the
/// recording cannot be read any more.
fn recorded_request(loaded: &Loaded, entry: &Entry) -> RequestParts {
    loaded.request(entry).unwrap_or_else(|e| {
        tracing::warn!(
            seq = entry.seq,
            "replay: the recorded request could not be read: {}",
            crate::error::Chain(&e)
        );
        RequestParts::default()
    })
}

/// The `REDACTED-n` placeholder inside an `Authorization` value (`Bearer cwt=REDACTED-2`).
pub fn credential_placeholder(authorization: &str) -> Option<&str> {
    const MARK: &str = "REDACTED-";
    let start = authorization.find(MARK)?;
    let rest = &authorization[start + MARK.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0).then(|| &authorization[start..start + MARK.len() + digits])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_placeholder_in_authorization() {
        assert_eq!(
            credential_placeholder("Bearer cwt=REDACTED-12"),
            Some("REDACTED-12")
        );
        assert_eq!(credential_placeholder("Bearer cwt=REDACTED-"), None);
        assert_eq!(credential_placeholder("Bearer cwt=AAEB"), None);
    }
}
