//! `-- CMD [ARGS…]` after `replay` or `record`: the server runs for as long as the command
//! does, the command finds the server's URL in an environment variable (`UCWA_REPLAY_URL`,
//! `UCWA_RECORD_URL`), and the exit status says how it went — so a test suite in any language
//! is one command in CI.
//!
//! The command inherits stdin, stdout and stderr. When the wrapper itself is told to stop
//! (Ctrl-C, SIGTERM), the command gets SIGTERM and is waited for.

use std::ffi::OsString;
use std::process::{ExitCode, ExitStatus};

use anyhow::Context;
use ucwa_replay::serve::CancellationToken;

/// A command running beside a server.
pub struct Wrapped {
    /// Fires when the command exits (or the wrapper is told to stop): the server's shutdown.
    pub shutdown: CancellationToken,
    program: String,
    task: tokio::task::JoinHandle<std::io::Result<ExitStatus>>,
}

impl Wrapped {
    /// Start `command` with `var` set to `url`. Fails (exit 2) when it cannot be started.
    pub fn spawn(
        command: &[OsString],
        var: &str,
        url: &str,
        outer: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let (program, args) = command.split_first().context("no command after --")?;
        let name = program.to_string_lossy().into_owned();
        let mut command = tokio::process::Command::new(program);
        command.args(args).env(var, url);
        super::huge_pages::give_back(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run {name:?}"))?;
        tracing::info!(command = %name, "running the command with {var}={url}");
        let shutdown = outer.child_token();
        let stop = shutdown.clone();
        let outer = outer.clone();
        let task = tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = outer.cancelled() => {
                    terminate(&child);
                    child.wait().await
                }
            };
            stop.cancel();
            status
        });
        Ok(Wrapped {
            shutdown,
            program: name,
            task,
        })
    }

    /// Wait for the command's exit status.
    pub async fn status(self) -> anyhow::Result<ExitStatus> {
        let program = self.program;
        self.task
            .await
            .context("the command's watcher stopped")?
            .with_context(|| format!("cannot wait for {program:?}"))
    }
}

/// Ask the command to stop (SIGTERM), as the wrapper was asked.
#[cfg(unix)]
fn terminate(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a pid this process started and has not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

#[cfg(not(unix))]
fn terminate(_child: &tokio::process::Child) {}

/// The wrapper's exit code for a command that failed: its own code, or 128 + the signal
/// that ended it (as a shell says it).
pub fn exit_code_of(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
        }
    }
    ExitCode::from(1)
}
