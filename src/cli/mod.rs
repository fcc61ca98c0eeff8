//! The command line: one file per command, each with its clap arguments and its `run`.
//! `main.rs` sets up logging, signals and exit codes around these.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod anonymize;
pub mod audit;
pub mod demo;
pub mod diff;
pub mod huge_pages;
pub mod inspect;
pub mod interchange;
pub mod record;
pub mod replay;
pub mod report;
pub mod simulate;
pub mod text;
pub mod wrap;

/// Shared output switch for commands that print results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Readable text (default).
    #[default]
    Text,
    /// Machine-readable JSON on stdout.
    Json,
}

/// What is redacted and left out of match keys, beyond the defaults: shared by every command
/// that writes exchanges (`record`, `import`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RedactArgs {
    /// Another header whose value is a secret (repeatable).
    #[arg(long, value_name = "NAME")]
    pub redact_header: Vec<String>,
    /// Another JSON / form / XML field whose value is a secret (repeatable).
    #[arg(long, value_name = "NAME")]
    pub redact_field: Vec<String>,
    /// A regex whose matches (group 1 if any) are secrets (repeatable).
    #[arg(long, value_name = "RE")]
    pub redact_regex: Vec<String>,
    /// A body field left out of the replay match key, beyond the client-generated ids
    /// (repeatable).
    #[arg(long, value_name = "NAME")]
    pub ignore_body_field: Vec<String>,
}

impl RedactArgs {
    pub fn redact_config(&self) -> ucwa_replay::redact::RedactConfig {
        ucwa_replay::redact::RedactConfig {
            headers: self.redact_header.clone(),
            fields: self.redact_field.clone(),
            regexes: self.redact_regex.clone(),
        }
    }

    pub fn key_options(&self) -> ucwa_replay::recording::KeyOptions {
        ucwa_replay::recording::KeyOptions::with_extra_fields(
            self.ignore_body_field.iter().cloned(),
        )
    }
}

/// The limits of a server command's listener (`record`, `replay`, `simulate`).
#[derive(Debug, Clone, clap::Args)]
pub struct ListenerArgs {
    /// Close a connection whose request head has not arrived within this time (the first
    /// counted from the connection, TLS included; later ones from the previous response,
    /// so idle keep-alive connections close too): 5s, 500ms …
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub header_timeout: std::time::Duration,
    /// Most client connections open at once; at the cap new clients wait until one closes.
    /// Keep it under the file-descriptor limit (`ulimit -n`; half of it for `record`).
    #[arg(long, value_name = "N", default_value_t = ucwa_replay::serve::DEFAULT_MAX_CONNECTIONS, value_parser = parse_positive)]
    pub max_connections: usize,
}

impl ListenerArgs {
    pub fn limits(&self) -> ucwa_replay::serve::Limits {
        let mut limits = ucwa_replay::serve::Limits::new();
        limits.header_read_timeout = self.header_timeout;
        limits.max_connections = self.max_connections;
        limits
    }
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than zero".into()),
        Err(e) => Err(format!("{e} (write e.g. 5s or 500ms)")),
    }
}

/// A count of at least 1.
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number above zero")),
    }
}

/// Record, replay and diff Microsoft UCWA (Skype for Business) traffic.
#[derive(Debug, Parser)]
#[command(
    name = "ucwa-replay",
    version,
    about,
    propagate_version = true,
    after_help = "Exit status: 0 success; 1 differences (diff, verify) or findings \
                  (audit), or a replay's misses, near misses or unplayed exchanges under \
                  `-- CMD`; 2 usage or input error (bad flag, unreadable file, refused \
                  upstream). With `-- CMD`, a failing command's own status comes first."
)]
pub struct Cli {
    /// More logging on stderr (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Threads that serve connections (record, replay, simulate, demo). Default: one fewer
    /// than the CPUs, at least one, leaving a CPU to the client, which usually runs on the
    /// same machine (a test suite, or `-- CMD`).
    #[arg(long, global = true, value_name = "N", value_parser = parse_positive)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// End to end with no network: simulator → record → replay → diff, checked.
    Demo(demo::Args),
    /// Run the built-in UCWA front-end simulator.
    Simulate(simulate::Args),
    /// Proxy to an upstream UCWA server and record the session.
    Record(record::Args),
    /// Serve a recorded session, never touching the network.
    Replay(replay::Args),
    /// Compare two recordings (FILE or FILE#SESSION).
    Diff(diff::DiffArgs),
    /// Re-send a recorded session to a live upstream and diff the answers.
    Verify(Box<diff::VerifyArgs>),
    /// List the sessions of a recording.
    Sessions(inspect::SessionsArgs),
    /// List the exchanges of a session.
    Show(inspect::ShowArgs),
    /// Show the flattened events-feed timeline of a session.
    Events(inspect::EventsArgs),
    /// Write a session as HAR 1.2 or NDJSON (stdout unless --output).
    Export(interchange::ExportArgs),
    /// Import a HAR file (an export, or a browser capture) as a new session, redacted.
    Import(interchange::ImportArgs),
    /// Write a copy of a recording with every person replaced by a consistent pseudonym.
    Anonymize(Box<anonymize::Args>),
    /// Scan a recording for secret-looking material (--pii: personal data); exit 1 if any.
    Audit(audit::Args),
    /// Write a self-contained HTML page of a session (timeline, events feed, every exchange).
    Report(report::Args),
}

/// What every command gets from `main`.
#[derive(Debug, Clone)]
#[allow(dead_code)] // read by the server commands
pub struct Ctx {
    /// Fires on Ctrl-C / SIGTERM.
    pub shutdown: ucwa_replay::serve::CancellationToken,
    /// `-q`: nothing but errors on stderr.
    pub quiet: bool,
}

impl Command {
    pub async fn run(self, ctx: Ctx) -> anyhow::Result<ExitCode> {
        let naming = self.naming();
        self.run_inner(ctx)
            .await
            .map_err(|err| with_session_hint(err, naming))
    }

    /// The log filter when neither `-v`, `-q` nor `RUST_LOG` says otherwise: `demo` runs a
    /// simulator, proxies and a replay whose INFO lines would interleave with its table.
    pub fn default_log_filter(&self) -> Option<&'static str> {
        match self {
            Command::Demo(_) => Some("warn"),
            _ => None,
        }
    }

    /// Whether the user asked for JSON results (`--format json`): errors are then also
    /// printed as JSON on stdout.
    pub fn prints_json(&self) -> bool {
        let json = OutputFormat::Json;
        match self {
            Command::Demo(a) => a.format == json,
            Command::Replay(a) => a.inner.format == json,
            Command::Diff(a) => a.compare.format == diff::DiffFormat::Json,
            Command::Verify(a) => a.compare.format == diff::DiffFormat::Json,
            Command::Sessions(a) => a.format == json,
            Command::Show(a) | Command::Events(a) => a.format == json,
            Command::Import(a) => a.format == json,
            Command::Audit(a) => a.format == json,
            Command::Anonymize(a) => a.format == json,
            Command::Simulate(_) | Command::Record(_) | Command::Export(_) | Command::Report(_) => {
                false
            }
        }
    }

    /// How this command's user names a session (for the hint of an error about one).
    fn naming(&self) -> Naming {
        match self {
            Command::Diff(_) => Naming::Target,
            Command::Verify(_) => Naming::Verify,
            _ => Naming::Flag,
        }
    }

    async fn run_inner(self, ctx: Ctx) -> anyhow::Result<ExitCode> {
        match self {
            Command::Demo(a) => demo::run(a, ctx).await,
            Command::Simulate(a) => simulate::run(a, ctx).await,
            Command::Record(a) => record::run(a, ctx).await,
            Command::Replay(a) => replay::run(a, ctx).await,
            Command::Diff(a) => diff::run_diff(a, ctx).await,
            Command::Verify(a) => diff::run_verify(*a, ctx).await,
            Command::Sessions(a) => inspect::sessions(a, ctx).await,
            Command::Show(a) => inspect::show(a, ctx).await,
            Command::Events(a) => inspect::events(a, ctx).await,
            Command::Export(a) => interchange::export(a, ctx).await,
            Command::Import(a) => interchange::import(a, ctx).await,
            Command::Anonymize(a) => anonymize::run(*a, ctx).await,
            Command::Audit(a) => audit::run(a, ctx).await,
            Command::Report(a) => report::run(a, ctx).await,
        }
    }
}

/// How a command lets its user name a session.
#[derive(Debug, Clone, Copy)]
enum Naming {
    /// `--session NAME` (and `--replace` where it creates one).
    Flag,
    /// `FILE#SESSION` (`diff`).
    Target,
    /// `--session NAME` for the recorded one, `--new-session NAME` for the new one.
    Verify,
}

/// The library says which session is ambiguous or taken; the command adds how its user
/// names another.
fn with_session_hint(err: anyhow::Error, naming: Naming) -> anyhow::Error {
    use ucwa_replay::store::StoreError;
    let store = err.chain().find_map(|e| {
        e.downcast_ref::<StoreError>()
            .or_else(|| match e.downcast_ref() {
                Some(ucwa_replay::Error::Store(s)) => Some(s),
                _ => None,
            })
    });
    let hint = match (store, naming) {
        (Some(StoreError::AmbiguousSession { path, .. }), Naming::Target) => {
            format!("name one as {}#SESSION", path.display())
        }
        (Some(StoreError::AmbiguousSession { .. }), _) => "name one with --session NAME".into(),
        (Some(StoreError::SessionExists { .. }), Naming::Verify) => {
            "choose another --new-session NAME, or add --replace".into()
        }
        (Some(StoreError::SessionExists { .. }), _) => {
            "choose another --session NAME, or add --replace".into()
        }
        _ => return err,
    };
    let line: &(dyn std::error::Error + 'static) = err.as_ref();
    anyhow::anyhow!("{}; {hint}", ucwa_replay::ErrorChain(line))
}
