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
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
        tokio::spawn(watch_signals(shutdown.clone()));
        cli.command.run(Ctx { shutdown }).await
    });
    // Held P-GETs and stuck sockets must not keep a finished command alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = std::io::stdout().flush();
            eprintln!("ucwa-replay: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr; results go to stdout. `RUST_LOG` wins over `-v`/`-q`.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "ucwa_replay=info,warn",
        (false, 1) => "ucwa_replay=debug,info",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Ctrl-C or SIGTERM starts a graceful shutdown; a second one exits at once.
async fn watch_signals(token: CancellationToken) {
    for round in 0..2 {
        wait_for_signal().await;
        if round == 0 {
            tracing::info!("shutting down (signal again to exit at once)");
            token.cancel();
        } else {
            std::process::exit(130);
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// A closed stdout (`| head`) is not an error (ripgrep's rule).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
