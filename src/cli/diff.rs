//! `ucwa-replay diff A B` and `ucwa-replay verify`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use ucwa_replay::Progress;
use ucwa_replay::diff::{
    DiffOptions, DiffReport, SessionInput, diff_exchanges, diff_sessions, write_json, write_text,
};
use ucwa_replay::html;
use ucwa_replay::recording::Exchange;
use ucwa_replay::store::Recording;

use super::Ctx;

/// What `diff` and `verify` print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// Readable text (default; coloured on a terminal).
    #[default]
    Text,
    /// JSON, schema `ucwa-replay.diff/1`.
    Json,
    /// A self-contained HTML page, side by side (`-o FILE.html`).
    Html,
}

/// A family of normalised values (`--raw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RawFamily {
    /// Ids in hrefs, operationId and other per-run id fields, GUID member names.
    Ids,
    /// `ack=N` in hrefs.
    Acks,
    /// UCWA `\/Date(…)\/` and ISO 8601 dates.
    Dates,
    /// ETags, correlation / request ids, the Date header.
    Volatile,
    /// The session's upstream origin in absolute URLs.
    Origins,
}

/// Comparison switches shared by `diff` and `verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Output format.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Write the report to this file instead of stdout (its directory must exist).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Compare raw values: no id placeholders, acks, dates, ETags, correlation ids, origins.
    #[arg(long)]
    pub no_normalize: bool,
    /// Keep one family of volatile values raw while normalising the others. Repeatable.
    #[arg(long, value_enum, value_name = "FAMILY")]
    pub raw: Vec<RawFamily>,
    /// Leave a JSON pointer out of body comparison (`*` matches one segment), e.g.
    /// `/_links/*/href`. Repeatable.
    #[arg(long, value_name = "POINTER")]
    pub ignore: Vec<String>,
    /// Do not compare this response header (Content-Type and Location are compared by
    /// default). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub ignore_header: Vec<String>,
    /// Also compare this response header (e.g. ETag). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub header: Vec<String>,
}

impl CompareArgs {
    fn options(&self) -> anyhow::Result<DiffOptions> {
        let mut opts = DiffOptions::from_flags(
            self.no_normalize,
            &self.ignore,
            &self.header,
            &self.ignore_header,
        )?;
        for family in &self.raw {
            let n = &mut opts.normalize;
            match family {
                RawFamily::Ids => n.ids = false,
                RawFamily::Acks => n.acks = false,
                RawFamily::Dates => n.dates = false,
                RawFamily::Volatile => n.volatile_headers = false,
                RawFamily::Origins => n.origins = false,
            }
        }
        if std::io::stderr().is_terminal() {
            opts.progress = Some(progress_bar("comparing"));
        }
        Ok(opts)
    }
}

/// A progress bar on stderr for a long comparison (shown from 1 000 exchanges on).
pub(crate) fn progress_bar(message: &'static str) -> Progress {
    let bar = indicatif::ProgressBar::hidden();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} exchanges")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(message);
    Progress::new(move |done, total| {
        if total < 1000 {
            return;
        }
        if bar.is_hidden() && done < total {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
        }
    })
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// First recording: FILE or FILE#SESSION (FILE alone when it holds one session).
    #[arg(value_name = "A")]
    pub a: String,
    /// Second recording: FILE or FILE#SESSION.
    #[arg(value_name = "B")]
    pub b: String,
    #[command(flatten)]
    pub compare: CompareArgs,
}

/// Split `FILE#SESSION`; a path that exists as given (even with a `#`) is a file.
pub fn parse_target(target: &str) -> (PathBuf, Option<String>) {
    if std::path::Path::new(target).exists() {
        return (PathBuf::from(target), None);
    }
    match target.rsplit_once('#') {
        Some((file, session)) if !file.is_empty() => {
            (PathBuf::from(file), Some(session.to_string()))
        }
        _ => (PathBuf::from(target), None),
    }
}

/// Print (or write with `-o`) the report; exit 1 when the sessions differ. `sides` are the
/// exchanges of A and B, which the HTML page shows next to each difference.
pub(crate) fn print_report(
    report: &DiffReport,
    args: &CompareArgs,
    sides: Option<(&[Exchange], &[Exchange])>,
) -> anyhow::Result<ExitCode> {
    let code = if report.is_equal() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if args.format == DiffFormat::Html {
        let (a, b) = sides.unwrap_or((&[], &[]));
        let page = html::diff_page(report, a, b);
        match &args.output {
            Some(path) => html::write_page(path, &page)?,
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(page.as_bytes())?;
                out.flush()?;
            }
        }
        return Ok(code);
    }
    let mut buf = Vec::new();
    match args.format {
        DiffFormat::Json => write_json(report, &mut buf)?,
        _ => write_text(report, &mut buf, args.output.is_none())?,
    }
    match &args.output {
        Some(path) => html::write_page(path, &String::from_utf8_lossy(&buf))?,
        None => {
            let mut out = anstream::stdout();
            out.write_all(&buf)?;
            out.flush()?;
        }
    }
    Ok(code)
}

pub async fn run_diff(args: DiffArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let opts = args.compare.options()?;
    if let Some(out) = &args.compare.output {
        html::check_output(out)?;
    }
    let (fa, na) = parse_target(&args.a);
    let (fb, nb) = parse_target(&args.b);
    let html = args.compare.format == DiffFormat::Html;
    let (report, sides) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let ra = Recording::open(&fa)?;
        let sa = ra.session(na.as_deref())?;
        let rb = Recording::open(&fb)?;
        let sb = rb.session(nb.as_deref())?;
        if !html {
            // Streamed from the files: the sessions are never loaded whole.
            return Ok((diff_sessions(&ra, &sa, &rb, &sb, &opts)?, None));
        }
        // The page shows the exchanges themselves.
        let ea = ra.exchanges(&sa)?;
        let eb = rb.exchanges(&sb)?;
        let report = diff_exchanges(
            &SessionInput::new(&ra, &sa, &ea),
            &SessionInput::new(&rb, &sb, &eb),
            &opts,
        );
        Ok((report, Some((ea, eb))))
    })
    .await??;
    let sides = sides.as_ref().map(|(a, b)| (&a[..], &b[..]));
    print_report(&report, &args.compare, sides)
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The recording holding the session to verify (the new session is added to it).
    #[arg(long, value_name = "FILE", default_value = "recordings/ucwa.sqlite")]
    pub db: PathBuf,
    /// The recorded session to re-send (may be omitted when the file holds one).
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// The live upstream, e.g. https://fe1.contoso.com.
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// A token for the live server (`cwt=…` or `Bearer …`); the token request is not re-sent.
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["username", "password"])]
    pub token: Option<String>,
    /// Sign in again with this user (password grant); needs --password.
    #[arg(long, value_name = "USER", requires = "password")]
    pub username: Option<String>,
    /// Password for --username (never stored).
    #[arg(long, value_name = "PASSWORD", requires = "username")]
    pub password: Option<String>,
    /// Name of the session recording the live answers (default NAME-verify-<unix time>).
    #[arg(long, value_name = "NAME")]
    pub new_session: Option<String>,
    /// Replace an existing session named like --new-session.
    #[arg(long)]
    pub replace: bool,
    /// Give up on an events-feed request after this long.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub events_timeout: std::time::Duration,
    /// Give up on any other request after this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Extra CA certificate (PEM) to trust for an https upstream. Repeatable.
    #[arg(long, value_name = "PEM")]
    pub upstream_ca: Vec<PathBuf>,
    #[command(flatten)]
    pub compare: CompareArgs,
    #[command(flatten)]
    pub redact: super::RedactArgs,
}

/// `name`, or `name-2`, `name-3`… when the recording already has a session called so (two
/// verifies within a second get the same default name).
fn free_name(db: &std::path::Path, name: &str) -> anyhow::Result<String> {
    let taken: Vec<String> = Recording::open(db)?
        .sessions()?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let mut candidate = name.to_string();
    let mut n = 1;
    while taken.contains(&candidate) {
        n += 1;
        candidate = format!("{name}-{n}");
    }
    Ok(candidate)
}

pub async fn run_verify(args: VerifyArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    use ucwa_replay::diff::{self as verify, Credentials, VerifyOptions};
    let diff = args.compare.options()?;
    let credentials = match (args.token, args.username, args.password) {
        (Some(t), _, _) => Credentials::Token(t),
        (None, Some(username), Some(password)) => Credentials::Password { username, password },
        _ => Credentials::None,
    };
    let recorded_name = match &args.session {
        Some(n) => n.clone(),
        None => Recording::open(&args.db)?.session(None)?.name,
    };
    let new_session = match args.new_session {
        Some(name) => name,
        None => free_name(&args.db, &verify::default_session_name(&recorded_name))?,
    };
    let mut opts = VerifyOptions::new(args.upstream, new_session);
    opts.credentials = credentials;
    opts.replace = args.replace;
    opts.events_timeout = args.events_timeout;
    opts.request_timeout = args.request_timeout;
    opts.trust = ucwa_replay::upstream::TrustConfig {
        extra_ca: args.upstream_ca,
        ..Default::default()
    };
    opts.diff = diff;
    opts.redact = args.redact.redact_config();
    opts.key_options = args.redact.key_options();
    if let Some(out) = &args.compare.output {
        html::check_output(out)?;
    }
    let outcome = verify::verify(&args.db, Some(&recorded_name), &opts).await?;
    if args.compare.format != DiffFormat::Html {
        return print_report(&outcome.report, &args.compare, None);
    }
    let rec = Recording::open(&args.db)?;
    let ea = rec.exchanges(&rec.session(Some(&recorded_name))?)?;
    let eb = rec.exchanges(&rec.session(Some(&outcome.session))?)?;
    print_report(&outcome.report, &args.compare, Some((&ea, &eb)))
}
