//! The replayer's decisions: a loaded session, its cursors and play counts, and what answers a
//! request — a recorded exchange, the end of the events feed, or a miss. No HTTP here: the
//! server ([`super::server`]) reads requests, waits (pacing, held P-GETs) and writes
//! responses.
//!
//! All mutable state (cursors, play counts, misses) sits behind one `std::sync::Mutex` that
//! is taken for a few integer operations and never held across an await: a held P-GET or a
//! paced answer waits on its own task and blocks nobody.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use http::{HeaderName, header};

use super::cursor::{Cursors, Pick};
use super::feed;
use super::index::{GroupId, Index};
use super::miss::{Miss, MissReason, closest};
use super::options::{BodyMatch, Exhausted, ReplayConfig};
use super::redacted::equal_but_secrets;
use super::report::{ReplayReport, Unplayed};
use crate::error::Error;
use crate::recording::headers::ResponseRules;
use crate::recording::{Exchange, KeyOptions, KeyRequest, MatchKey, SessionInfo, Upstreams};
use crate::store::Recording;
use crate::ucwa::feed::{ack_of, is_events_request};

/// A loaded session, ready to answer requests. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Replayer {
    recording: PathBuf,
    session: SessionInfo,
    pub(super) index: Index,
    pub(super) config: ReplayConfig,
    key_options: KeyOptions,
    pub(super) upstreams: Upstreams,
    state: Mutex<State>,
    /// The response-head rules for the last public base answered at (a replay is normally
    /// reached at one base, so they are built once rather than per response).
    pub(super) head_rules: Mutex<Option<(String, Arc<ResponseRules>)>>,
}

/// Everything that changes while replaying.
#[derive(Debug)]
struct State {
    cursors: Cursors,
    /// Times each entry was served.
    played: Vec<u32>,
    served: u64,
    misses: Vec<Miss>,
}

/// Why a request whose key matched nothing is served anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// It differs only where the recording holds redaction placeholders.
    Secrets,
    /// `--body-match lenient` and a single candidate.
    Lenient,
}

/// What the handler decided under the lock; acted upon (and awaited) after releasing it.
pub(super) enum Decision {
    /// The recorded exchange at this index entry.
    Serve(usize),
    FeedEnd {
        ack: i64,
    },
    Miss(Miss),
}

impl Replayer {
    /// Load `session` (or the only session when `None`) of the recording at `db`.
    pub fn load(
        db: impl AsRef<Path>,
        session: Option<&str>,
        config: ReplayConfig,
    ) -> Result<Self, Error> {
        let db = db.as_ref();
        let recording = Recording::open(db)?;
        let info = recording.session(session)?;
        let exchanges = recording.exchanges(&info)?;
        Replayer::from_exchanges(db, info, exchanges, config)
    }

    /// Build from exchanges already read (in `seq` order); `recording` only names the source
    /// in reports.
    pub fn from_exchanges(
        recording: impl AsRef<Path>,
        session: SessionInfo,
        exchanges: Vec<Exchange>,
        config: ReplayConfig,
    ) -> Result<Self, Error> {
        let upstreams =
            Upstreams::parse(&session.upstream, &session.also_upstreams).map_err(|e| {
                Error::invalid_because(
                    "recording",
                    format!(
                        "session {:?} records an upstream that is not an origin",
                        session.name
                    ),
                    e,
                )
            })?;
        let key_options = config.key_options();
        let recompute = !config.ignore_body_fields.is_empty();
        let index = Index::build(exchanges, &key_options, recompute);
        let state = State {
            cursors: Cursors::new(index.group_count()),
            played: vec![0; index.entries().len()],
            served: 0,
            misses: Vec::new(),
        };
        Ok(Replayer {
            recording: recording.as_ref().to_path_buf(),
            session,
            index,
            config,
            key_options,
            upstreams,
            state: Mutex::new(state),
            head_rules: Mutex::new(None),
        })
    }

    /// The session being replayed.
    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// The options in force.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// The state lock; a panic elsewhere must not stop the replay from reporting.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Misses so far, in arrival order.
    pub fn misses(&self) -> Vec<Miss> {
        self.state().misses.clone()
    }

    /// Recorded exchanges not served so far, in recorded order.
    pub fn unplayed(&self) -> Vec<Unplayed> {
        let state = self.state();
        self.unplayed_in(&state)
    }

    fn unplayed_in(&self, state: &State) -> Vec<Unplayed> {
        self.index
            .entries()
            .iter()
            .zip(&state.played)
            .filter(|(_, n)| **n == 0)
            .map(|(entry, _)| {
                let e = &entry.exchange;
                Unplayed {
                    seq: e.seq,
                    method: e.method.clone(),
                    path: e.path.clone(),
                    query: e.query.clone(),
                    representation: entry.key().representation,
                    status: e.status,
                    match_key: entry.key().to_string(),
                }
            })
            .collect()
    }

    /// The report so far.
    pub fn report(&self) -> ReplayReport {
        let state = self.state();
        ReplayReport {
            recording: self.recording.display().to_string(),
            session: self.session.name.clone(),
            recorded: self.index.entries().len(),
            served: state.served,
            played: state.played.iter().filter(|n| **n > 0).count(),
            misses: state.misses.clone(),
            unplayed: self.unplayed_in(&state),
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

    /// Decide what answers a request (its body read): the request's key, and the recorded
    /// exchange, the end of the events feed, or a miss. A few map lookups and counter
    /// updates under the state lock; nothing here waits.
    pub(super) fn decide(&self, parts: &http::request::Parts, body: &[u8]) -> (MatchKey, Decision) {
        let header = |name: HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let key = KeyRequest::of_http(parts, body).key(&self.key_options);
        let placeholder = header(header::AUTHORIZATION).and_then(credential_placeholder);
        let credential = self.index.lookup_credential(placeholder);
        let fallback = match self.index.lookup(credential.as_deref(), &key) {
            Some(_) => None,
            None => self.fallback(
                &key,
                credential.as_deref(),
                header(header::CONTENT_TYPE),
                body,
            ),
        };
        let decision = self.choose(
            &key,
            credential.as_deref(),
            placeholder,
            parts.uri.query(),
            fallback,
        );
        (key, decision)
    }

    /// Choose the answer under the lock.
    fn choose(
        &self,
        key: &MatchKey,
        credential: Option<&str>,
        placeholder: Option<&str>,
        query: Option<&str>,
        fallback: Option<(Vec<GroupId>, Fallback)>,
    ) -> Decision {
        let mut state = self.state();
        let group = self.index.lookup(credential, key);
        if is_events_request(&key.method, &key.path) {
            if let Some(g) = group {
                // Idempotent: every entry for this ack counts as played; one answer is served.
                for &i in self.index.group(g) {
                    state.played[i] += 1;
                }
                return match feed::recorded_answer(&self.index, g) {
                    Some(entry) => {
                        state.served += 1;
                        Decision::Serve(entry)
                    }
                    None => Decision::FeedEnd {
                        ack: ack_of(query).unwrap_or(0),
                    },
                };
            }
            if let (Some(ack), Some(max)) = (
                ack_of(query),
                self.index.feed_max_ack(credential, &key.path),
            ) && ack > max
            {
                return Decision::FeedEnd { ack };
            }
        }
        if let Some(g) = group {
            return match self.pick(&mut state, g) {
                Some(entry) => Decision::Serve(entry),
                None => {
                    let recorded = self.index.group(g).len();
                    self.record_miss(
                        &mut state,
                        key,
                        placeholder,
                        query,
                        MissReason::Exhausted,
                        format!(
                            "all {recorded} recorded answers to this request were already served (--exhausted error)"
                        ),
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
                .find(|&g| self.index.group(g).iter().any(|&i| state.played[i] == 0));
            unplayed.or(groups.last().copied()).map(|g| (g, why))
        });
        if let Some((g, why)) = chosen
            && let Some(entry) = self.pick(&mut state, g)
        {
            let seq = self.index.entries()[entry].exchange.seq;
            match why {
                Fallback::Secrets => tracing::debug!(
                    method = %key.method,
                    target = %key.path,
                    recorded_seq = seq,
                    "replay: request body differs from the recording only where it was redacted"
                ),
                Fallback::Lenient => tracing::warn!(
                    method = %key.method,
                    target = %key.path,
                    recorded_seq = seq,
                    "replay: request body differs from the recording; serving the only recorded request of this method, path and representation (--body-match lenient)"
                ),
            }
            return Decision::Serve(entry);
        }
        self.record_miss(
            &mut state,
            key,
            placeholder,
            query,
            MissReason::NoMatch,
            format!("no recorded request matches {key}"),
        )
    }

    /// For a request whose key matches nothing: the recorded requests of the same method,
    /// path, query and representation that it equals but for redacted secrets (in recorded
    /// order), else (with `--body-match lenient`) the only one there is. Read-only, so
    /// computed before locking.
    fn fallback(
        &self,
        key: &MatchKey,
        credential: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<(Vec<GroupId>, Fallback)> {
        let same = self.index.same_shape(credential, key);
        let secrets: Vec<GroupId> = same
            .iter()
            .copied()
            .filter(|&g| {
                let recorded = &self.index.entries()[self.index.group(g)[0]].exchange;
                equal_but_secrets(
                    &self.key_options,
                    content_type,
                    body,
                    recorded.request_headers.get("content-type"),
                    &recorded.request_body,
                )
            })
            .collect();
        match (&secrets[..], &same[..], self.config.body_match) {
            ([], [g], BodyMatch::Lenient) => Some((vec![*g], Fallback::Lenient)),
            ([], _, _) => None,
            _ => Some((secrets, Fallback::Secrets)),
        }
    }

    /// Advance a group's cursor and count the play.
    fn pick(&self, state: &mut State, group: GroupId) -> Option<usize> {
        let policy: Exhausted = self.config.exhausted;
        match state.cursors.pick(group, self.index.group(group), policy) {
            Pick::Serve(entry) => {
                state.played[entry] += 1;
                state.served += 1;
                Some(entry)
            }
            Pick::Exhausted { .. } => None,
        }
    }

    fn record_miss(
        &self,
        state: &mut State,
        key: &MatchKey,
        placeholder: Option<&str>,
        query: Option<&str>,
        reason: MissReason,
        message: String,
    ) -> Decision {
        let credential = self.index.lookup_credential(placeholder);
        let miss = Miss {
            method: key.method.clone(),
            path: key.path.clone(),
            query: query.map(str::to_string),
            representation: key.representation,
            credential: credential.clone(),
            match_key: key.to_string(),
            reason,
            message,
            closest: closest(&self.index, credential.as_deref(), key),
        };
        state.misses.push(miss.clone());
        Decision::Miss(miss)
    }
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
