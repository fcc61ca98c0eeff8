//! The in-process replay server for tests (the wiremock-rs pattern): its own thread and
//! runtime, port 0, stopped when dropped, so it works from a plain `#[test]` and from a
//! `#[tokio::test]` alike.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::miss::Miss;
use super::options::{BodyMatch, Exhausted, FeedEnd, Pace, ReplayConfig};
use super::replayer::Replayer;
use super::report::{ReplayReport, Unplayed};
use super::server::run;
use crate::error::{Chain, Error};
use crate::serve::BackgroundServer;

/// Options for a [`ReplayServer`]; the same as the CLI's flags.
#[derive(Debug, Clone)]
#[must_use = "call .start() to run the server"]
pub struct ReplayServerBuilder {
    db: PathBuf,
    session: Option<String>,
    config: ReplayConfig,
    listen: SocketAddr,
}

impl ReplayServerBuilder {
    /// `--exhausted`.
    pub fn exhausted(mut self, policy: Exhausted) -> Self {
        self.config.exhausted = policy;
        self
    }

    /// `--feed-end`.
    pub fn feed_end(mut self, policy: FeedEnd) -> Self {
        self.config.feed_end = policy;
        self
    }

    /// `--pace`.
    pub fn pace(mut self, pace: Pace) -> Self {
        self.config.pace = pace;
        self
    }

    /// `--body-match`.
    pub fn body_match(mut self, policy: BodyMatch) -> Self {
        self.config.body_match = policy;
        self
    }

    /// `--ignore-body-field` (repeatable).
    pub fn ignore_body_field(mut self, name: impl Into<String>) -> Self {
        self.config.ignore_body_fields.push(name.into());
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

    /// Load the session and start serving it on a thread of its own.
    pub fn start(self) -> Result<ReplayServer, Error> {
        let replayer = Arc::new(Replayer::load(
            &self.db,
            self.session.as_deref(),
            self.config,
        )?);
        let served = replayer.clone();
        let server = BackgroundServer::start(
            "ucwa-replay",
            self.listen,
            move |listener, token| async move {
                if let Err(err) = run(listener, served, token).await {
                    tracing::error!(error = %Chain(&err), "replay report");
                }
            },
        )
        .map_err(|source| Error::bind(self.listen, source))?;
        Ok(ReplayServer { server, replayer })
    }
}

/// A replay server running in the background; stops when dropped.
#[derive(Debug)]
pub struct ReplayServer {
    server: BackgroundServer,
    replayer: Arc<Replayer>,
}

impl ReplayServer {
    /// Options for replaying `session` of the recording at `db`.
    pub fn builder(db: impl Into<PathBuf>, session: &str) -> ReplayServerBuilder {
        ReplayServerBuilder {
            db: db.into(),
            session: Some(session.to_string()),
            config: ReplayConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// Options for replaying the only session of the recording at `db`.
    pub fn builder_only_session(db: impl Into<PathBuf>) -> ReplayServerBuilder {
        ReplayServerBuilder {
            session: None,
            ..ReplayServer::builder(db, "")
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the client's base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Requests that missed so far.
    pub fn misses(&self) -> Vec<Miss> {
        self.replayer.misses()
    }

    /// Recorded exchanges not played so far.
    pub fn unplayed(&self) -> Vec<Unplayed> {
        self.replayer.unplayed()
    }

    /// The full report so far.
    pub fn report(&self) -> ReplayReport {
        self.replayer.report()
    }

    /// The replayer behind the server.
    pub fn replayer(&self) -> &Arc<Replayer> {
        &self.replayer
    }

    /// Panic, listing them, if any request missed or any recorded exchange was never played.
    #[track_caller]
    pub fn assert_all_played(&self) {
        let report = self.report();
        if !report.is_clean() {
            panic!("replay did not go as recorded:\n{report}");
        }
    }

    /// Panic, listing them, if any request missed (unplayed exchanges are allowed).
    #[track_caller]
    pub fn assert_no_misses(&self) {
        let report = self.report();
        if !report.misses.is_empty() {
            panic!("replay had misses:\n{report}");
        }
    }

    /// Stop the server now (also done on drop) and return the final report.
    pub fn stop(self) -> ReplayReport {
        let ReplayServer { server, replayer } = self;
        server.stop();
        replayer.report()
    }
}
