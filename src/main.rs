//! The `ucwa-replay` binary: parses arguments, installs the logger and the signal handlers,
//! runs one command and turns its outcome into an exit code (0 ok, 1 differences or findings,
//! 2 usage or input error). Everything else lives in the library.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

mod cli;

/// mimalloc instead of glibc's malloc. Streaming a 100 000-exchange session through diff,
/// import or export frees every page of rows while small long-lived values (the diff's
/// per-exchange keys) stay behind; glibc's free lists then fragment, and its malloc spent
/// 60 % of a diff walking them (`unlink_chunk`, `malloc_consolidate` in `perf`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cli::{Cli, Ctx};
use ucwa_replay::serve::CancellationToken;

fn main() -> ExitCode {
    cli::huge_pages::refuse();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    init_logging(cli.verbose, cli.quiet, cli.command.default_log_filter());
    let json_errors = cli.command.prints_json();
    let quiet = cli.quiet;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.unwrap_or_else(default_threads))
        .thread_name("ucwa-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("ucwa-replay: error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        // Registered before the command starts: a SIGTERM sent as soon as a server has
        // printed its URL must find the handler in place, not the default action.
        let signals = Signals::register()?;
        tokio::spawn(watch_signals(signals, shutdown.clone()));
        cli.command.run(Ctx { shutdown, quiet }).await
    });
    // Held P-GETs and stuck sockets must not keep a finished command alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let cause: &(dyn std::error::Error + 'static) = err.as_ref();
            let line = ucwa_replay::ErrorChain(cause).to_string();
            report_error(&line, json_errors);
            ExitCode::from(2)
        }
    }
}

/// Worker threads when `--threads` is not given: one per CPU but one, at least one.
///
/// The client of a record or a replay nearly always runs on the same machine. With a
/// worker on every CPU, tokio's workers wake one another to steal work that the client's
/// CPU time then interrupts: on 2 CPUs with wrk as the client, a repeated replay answer
/// took 10.7 µs of CPU with 2 workers and 8.4 µs with one, and served 10 % more req/s
/// (benches/RESULTS.md, "Phase H"). Record kept its req/s with 13 % less CPU.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .max(1)
}

/// The one line of a failed command on stderr; with `--format json`, also as JSON on
/// stdout (`{"error": "…", "exit_code": 2}`), where a script reads the results.
fn report_error(line: &str, json: bool) {
    let mut out = std::io::stdout().lock();
    let _ = out.flush();
    if json {
        let value = serde_json::json!({"error": line, "exit_code": 2});
        let _ = writeln!(out, "{value}").and_then(|()| out.flush());
    }
    eprintln!("ucwa-replay: error: {line}");
}

/// A command line clap refuses: its message and usage on stderr (exit 2), and, when the
/// command line asked for `--format json`, the error as JSON on stdout too. `--help` and
/// `--version` print and exit 0 as usual.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let args: Vec<String> = std::env::args().collect();
    let wants_json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json");
    if wants_json {
        let text = err.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let value = serde_json::json!({"error": first, "exit_code": 2});
        println!("{value}");
    }
    let _ = err.print();
    ExitCode::from(2)
}

/// Logs go to stderr; results go to stdout. `RUST_LOG` wins over `-v`/`-q`; a command may
/// log less by default (`demo` runs servers whose INFO lines are not the user's business).
fn init_logging(verbose: u8, quiet: bool, command_default: Option<&str>) {
    let default = match (quiet, verbose, command_default) {
        (true, _, _) => "error",
        (false, 0, Some(filter)) => filter,
        (false, 0, None) => "ucwa_replay=info,warn",
        (false, 1, _) => "ucwa_replay=debug,info",
        (false, _, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Ctrl-C (SIGINT) and SIGTERM.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn register() -> anyhow::Result<Self> {
        use anyhow::Context;
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    #[cfg(not(unix))]
    fn register() -> anyhow::Result<Self> {
        Ok(Signals {})
    }

    /// The next signal, by number.
    #[cfg(unix)]
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> i32 {
        let _ = tokio::signal::ctrl_c().await;
        2
    }
}

/// The first Ctrl-C or SIGTERM starts a graceful shutdown; a second one ends the process
/// at once, as that signal would have (a shell sees 130 after Ctrl-C, 143 after SIGTERM).
async fn watch_signals(mut signals: Signals, token: CancellationToken) {
    signals.next().await;
    tracing::info!("shutting down (signal again to exit at once)");
    token.cancel();
    let again = signals.next().await;
    die_by(again);
}

/// Die by `signal`: its default action, so the parent sees "killed by signal", not an exit
/// code it has to guess from.
#[cfg(unix)]
fn die_by(signal: i32) -> ! {
    let _ = std::io::stderr().flush();
    // SAFETY: restoring a signal's default disposition and raising it are async-signal-safe
    // libc calls with no memory passed; the default action of SIGINT and SIGTERM ends the
    // process.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
    std::process::exit(128 + signal)
}

#[cfg(not(unix))]
fn die_by(signal: i32) -> ! {
    std::process::exit(128 + signal)
}

/// A closed stdout (`| head`) is not an error (ripgrep's rule). serde_json keeps the I/O
/// error inside its own, so it is asked for the kind.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind);
        let json = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}
