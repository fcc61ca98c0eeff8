//! The in-process replay server for tests (the wiremock-rs pattern): its own thread and
//! runtime, port 0, stopped when dropped, so it works from a plain `#[test]` and from a
//! `#[tokio::test]` alike.
//!
//! Like wiremock's `MockServer`, it checks on drop: dropping it after a miss, a near miss, a
//! request the HTTP layer refused, or with recorded exchanges never played panics with the
//! readable report (unless the thread is already panicking, or the test said
//! [`ReplayServerBuilder::verify_on_drop`]`(false)`). Its defaults suit tests: a changed
//! request body is a miss ([`BodyMatch::Strict`]) and the events feed ends at once
//! ([`FeedEnd::Empty`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fault::{FaultRule, RuleStatus};
use super::log::Received;
use super::miss::Miss;
use super::near_miss::NearMiss;
use super::options::{BodyMatch, Exhausted, FeedEnd, Pace, ReplayConfig};
use super::recorded::Recorded;
use super::replayer::Replayer;
use super::report::{Allow, ReplayReport, Unplayed};
use super::server::run;
use crate::error::{Chain, Error};
use crate::har::{ImportOptions, convert_slice, sessions_from_ndjson};
use crate::recording::{Exchange, Ingest, KeyOptions, SessionInfo};
use crate::redact::RedactConfig;
use crate::serve::BackgroundServer;

/// Where a test server's sessions come from.
#[derive(Debug, Clone)]
enum Input {
    File {
        db: PathBuf,
        session: Option<String>,
    },
    Ndjson(String),
    Har(String),
    Exchanges {
        upstream: String,
        exchanges: Vec<Recorded>,
    },
}

/// Options for a [`ReplayServer`]; the same as the CLI's flags, with test defaults.
#[derive(Debug, Clone)]
#[must_use = "call .start() to run the server"]
pub struct ReplayServerBuilder {
    from: Input,
    session: Option<String>,
    config: ReplayConfig,
    listen: SocketAddr,
    allow: Allow,
    verify_on_drop: bool,
    /// Rules that did not parse (their errors), reported by `start`.
    bad_rules: Vec<String>,
}

impl ReplayServerBuilder {
    fn new(from: Input) -> Self {
        ReplayServerBuilder {
            from,
            session: None,
            config: ReplayConfig::for_tests(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            allow: Allow::nothing(),
            verify_on_drop: true,
            bad_rules: Vec::new(),
        }
    }

    /// Replay this session (of an NDJSON text holding several).
    pub fn session(mut self, name: &str) -> Self {
        self.session = Some(name.to_string());
        self
    }

    /// `--exhausted`.
    pub fn exhausted(mut self, policy: Exhausted) -> Self {
        self.config.exhausted = policy;
        self
    }

    /// `--feed-end` ([`FeedEnd::Empty`] unless told).
    pub fn feed_end(mut self, policy: FeedEnd) -> Self {
        self.config.feed_end = policy;
        self
    }

    /// `--pace`.
    pub fn pace(mut self, pace: Pace) -> Self {
        self.config.pace = pace;
        self
    }

    /// `--body-match` ([`BodyMatch::Strict`] unless told). With
    /// [`BodyMatch::Lenient`], a request served although its body differed is a near miss,
    /// which still fails the checks unless [`Self::allow_near_misses`].
    pub fn body_match(mut self, policy: BodyMatch) -> Self {
        self.config.body_match = policy;
        self
    }

    /// `--ignore-body-field` (repeatable).
    pub fn ignore_body_field(mut self, name: impl Into<String>) -> Self {
        self.config.ignore_body_fields.push(name.into());
        self
    }

    /// `--inject` (repeatable): a fault rule, `METHOD PATH-GLOB [#N] => ACTION`. A rule
    /// that does not parse makes [`Self::start`] fail.
    pub fn inject(mut self, rule: &str) -> Self {
        match rule.parse::<FaultRule>() {
            Ok(rule) => self.config.faults.push(rule),
            Err(e) => self.bad_rules.push(e.to_string()),
        }
        self
    }

    /// `--report`: also write the JSON report to this file when the server stops.
    pub fn report_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.report_path = Some(path.into());
        self
    }

    /// Replace every option at once.
    pub fn config(mut self, config: ReplayConfig) -> Self {
        self.config = config;
        self
    }

    /// Listen elsewhere than `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Near misses do not fail [`ReplayServer::assert_all_played`] nor the check on drop.
    pub fn allow_near_misses(mut self) -> Self {
        self.allow = self.allow.near_misses();
        self
    }

    /// Recorded exchanges never played do not fail the checks.
    pub fn allow_unplayed(mut self) -> Self {
        self.allow = self.allow.unplayed();
        self
    }

    /// Whether dropping the server checks the replay (default `true`).
    pub fn verify_on_drop(mut self, verify: bool) -> Self {
        self.verify_on_drop = verify;
        self
    }

    /// Load the session and start serving it on a thread of its own.
    pub fn start(self) -> Result<ReplayServer, Error> {
        if let Some(err) = self.bad_rules.into_iter().next() {
            return Err(Error::invalid("fault rule", err));
        }
        let session = self.session.as_deref();
        let key = self.config.key_options();
        let replayer = match self.from {
            Input::File { db, session: named } => {
                Replayer::load(&db, named.as_deref().or(session), self.config)?
            }
            Input::Ndjson(text) => {
                let name = "<NDJSON held in memory>";
                let sessions = sessions_from_ndjson(Path::new(name), &text, &key)?;
                Replayer::from_sessions(name.into(), sessions, session, self.config)?
            }
            Input::Har(text) => {
                let name = "<HAR held in memory>";
                let (info, exchanges) = har_session(name, &text, session, key)?;
                Replayer::from_sessions(name.into(), vec![(info, exchanges)], None, self.config)?
            }
            Input::Exchanges {
                upstream,
                exchanges,
            } => {
                let ingest = Ingest::new(&RedactConfig::default(), key)?;
                let built: Vec<Exchange> = exchanges
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let mut ex = r.into_exchange(i as u64 + 1, &upstream);
                        ingest.ingest(&mut ex);
                        ex
                    })
                    .collect();
                let info =
                    memory_session(session.unwrap_or("built"), &upstream, Vec::new(), &built);
                Replayer::from_sessions(
                    "<exchanges built in code>".into(),
                    vec![(info, built)],
                    None,
                    self.config,
                )?
            }
        };
        let replayer = Arc::new(replayer);
        let served = replayer.clone();
        let listen = self.listen;
        let server =
            BackgroundServer::start("ucwa-replay", listen, move |listener, token| async move {
                if let Err(err) = run(listener, served, token).await {
                    tracing::error!(error = %Chain(&err), "replay report");
                }
            })
            .map_err(|source| Error::bind(listen, source))?;
        Ok(ReplayServer {
            server: Some(server),
            replayer,
            allow: self.allow,
            verify_on_drop: self.verify_on_drop,
        })
    }
}

/// A session held in memory.
fn memory_session(
    name: &str,
    upstream: &str,
    also: Vec<String>,
    exchanges: &[Exchange],
) -> SessionInfo {
    SessionInfo {
        id: 0,
        name: name.to_string(),
        upstream: upstream.to_string(),
        also_upstreams: also,
        started_at: String::new(),
        ended_at: None,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        exchanges: exchanges.len() as u64,
        events: exchanges.iter().map(|e| e.events.len() as u64).sum(),
    }
}

/// A HAR's one session: named by its `log._ucwa.session` (our exports), else `session`,
/// else `har`.
fn har_session(
    name: &str,
    text: &str,
    session: Option<&str>,
    key: KeyOptions,
) -> Result<(SessionInfo, Vec<Exchange>), Error> {
    let recorded_name = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["log"]["_ucwa"]["session"].as_str().map(str::to_string));
    let name_of_session = session
        .map(str::to_string)
        .or(recorded_name)
        .unwrap_or_else(|| "har".into());
    let opts = ImportOptions {
        session: name_of_session.clone(),
        key,
        ..ImportOptions::default()
    };
    let converted = convert_slice(Path::new(name), text.as_bytes(), &opts)?;
    let info = memory_session(
        &name_of_session,
        &converted.plan.upstream,
        converted.plan.also_upstreams,
        &converted.exchanges,
    );
    Ok((info, converted.exchanges))
}

/// A replay server running in the background; stops when dropped, and then checks the
/// replay (see the module documentation).
#[derive(Debug)]
pub struct ReplayServer {
    server: Option<BackgroundServer>,
    replayer: Arc<Replayer>,
    allow: Allow,
    verify_on_drop: bool,
}

impl ReplayServer {
    /// Options for replaying `session` of the recording at `db`.
    pub fn builder(db: impl Into<PathBuf>, session: &str) -> ReplayServerBuilder {
        ReplayServerBuilder::new(Input::File {
            db: db.into(),
            session: Some(session.to_string()),
        })
    }

    /// Options for replaying the only session of the recording at `db`.
    pub fn builder_only_session(db: impl Into<PathBuf>) -> ReplayServerBuilder {
        ReplayServerBuilder::new(Input::File {
            db: db.into(),
            session: None,
        })
    }

    /// Options for replaying an NDJSON export held in a string (`export --format ndjson`);
    /// name the session with [`ReplayServerBuilder::session`] when it holds several.
    pub fn from_ndjson(text: impl Into<String>) -> ReplayServerBuilder {
        ReplayServerBuilder::new(Input::Ndjson(text.into()))
    }

    /// Options for replaying a HAR held in a string (an `export --format har`, or a
    /// browser's capture; it is redacted like an import).
    pub fn from_har(text: impl Into<String>) -> ReplayServerBuilder {
        ReplayServerBuilder::new(Input::Har(text.into()))
    }

    /// Options for replaying exchanges built in code, recorded from `upstream`
    /// (`https://fe1.contoso.com`): see [`Recorded`].
    pub fn from_exchanges(
        upstream: &str,
        exchanges: impl IntoIterator<Item = Recorded>,
    ) -> ReplayServerBuilder {
        ReplayServerBuilder::new(Input::Exchanges {
            upstream: upstream.trim_end_matches('/').to_string(),
            exchanges: exchanges.into_iter().collect(),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the client's base URL.
    pub fn url(&self) -> String {
        self.server.as_ref().map(|s| s.url()).unwrap_or_default()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map(|s| s.addr())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Requests that missed so far.
    pub fn misses(&self) -> Vec<Miss> {
        self.replayer.misses()
    }

    /// Requests served although their body differed, so far.
    pub fn near_misses(&self) -> Vec<NearMiss> {
        self.replayer.near_misses()
    }

    /// Recorded exchanges not played so far.
    pub fn unplayed(&self) -> Vec<Unplayed> {
        self.replayer.unplayed()
    }

    /// Every request received so far, in order, with what answered it.
    pub fn received(&self) -> Vec<Received> {
        self.replayer.received()
    }

    /// The full report so far.
    pub fn report(&self) -> ReplayReport {
        self.replayer.report()
    }

    /// Back to the start (cursors, counts, findings, the request log), so one server serves
    /// several tests.
    pub fn reset(&self) {
        self.replayer.reset();
    }

    /// Add a fault rule while running.
    pub fn inject(&self, rule: &str) -> Result<(), Error> {
        self.replayer.add_faults([rule.parse::<FaultRule>()?]);
        Ok(())
    }

    /// The fault rules and how often each applied and fired.
    pub fn faults(&self) -> Vec<RuleStatus> {
        self.replayer.faults()
    }

    /// The replayer behind the server.
    pub fn replayer(&self) -> &Arc<Replayer> {
        &self.replayer
    }

    /// Panic, listing them, if any request missed, nearly missed (unless allowed), was
    /// refused, or any recorded exchange was never played (unless allowed).
    #[track_caller]
    pub fn assert_all_played(&self) {
        let report = self.report();
        if !report.passes(self.allow) {
            panic!("replay did not go as recorded:\n{report}");
        }
    }

    /// Panic, listing them, if any request missed or nearly missed (unless allowed);
    /// unplayed exchanges are allowed.
    #[track_caller]
    pub fn assert_no_misses(&self) {
        let report = self.report();
        if !report.passes(self.allow.unplayed()) {
            panic!("replay had misses:\n{report}");
        }
    }

    /// Stop the server now and return the final report, without checking it (the caller
    /// has it).
    pub fn stop(mut self) -> ReplayReport {
        self.verify_on_drop = false;
        if let Some(server) = self.server.take() {
            server.stop();
        }
        self.replayer.report()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
        if !self.verify_on_drop || std::thread::panicking() {
            return;
        }
        let report = self.replayer.report();
        if !report.passes(self.allow) {
            panic!(
                "replay did not go as recorded (checked when the ReplayServer was dropped; \
                 .verify_on_drop(false) turns this off):\n{report}"
            );
        }
    }
}
