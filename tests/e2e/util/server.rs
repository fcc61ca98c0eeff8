//! The real `ucwa-replay` binary: as a server process (its first stdout line is its URL,
//! SIGTERM or SIGINT stops it) or run to the end.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A `ucwa-replay` server process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    /// The URL printed on the first stdout line.
    pub url: String,
    stderr: Arc<Mutex<String>>,
    /// The stdout lines after the URL (a summary at exit), complete when the reader ends.
    stdout: Arc<Mutex<String>>,
    stdout_reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Server {
    /// `ucwa-replay record --upstream UPSTREAM --listen 127.0.0.1:0 --db DB --session
    /// SESSION EXTRA...`.
    pub fn record(upstream: &str, db: &std::path::Path, session: &str, extra: &[&str]) -> Server {
        let mut args = vec![
            "record",
            "--upstream",
            upstream,
            "--listen",
            "127.0.0.1:0",
            "--db",
            db.to_str().unwrap(),
            "--session",
            session,
        ];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// `ucwa-replay replay --db DB --listen 127.0.0.1:0 EXTRA...`.
    pub fn replay(db: &std::path::Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "replay",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// Start `ucwa-replay ARGS...` and wait (at most 30 s) for its URL line.
    pub fn start(args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"));
        command.args(args);
        Server::spawn(command, args)
    }

    /// [`Server::start`] with at most `nofile` open file descriptors (`ulimit -n`, set by
    /// `sh`, which then becomes the binary: signals reach it).
    pub fn start_with_fd_limit(nofile: u32, args: &[&str]) -> Server {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_ucwa-replay"))
            .args(args);
        Server::spawn(command, args)
    }

    fn spawn(mut command: Command, args: &[&str]) -> Server {
        let mut child = command
            .env("RUST_LOG", "ucwa_replay=debug,warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ucwa-replay");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = collected.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        let rest = Arc::new(Mutex::new(String::new()));
        let rest_sink = rest.clone();
        let stdout_reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for line in lines.map_while(Result::ok) {
                let mut s = rest_sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => Server {
                child,
                url: url.trim().to_string(),
                stderr: collected,
                stdout: rest,
                stdout_reader: Mutex::new(Some(stdout_reader)),
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ucwa-replay {args:?} printed no URL; stderr:\n{}",
                    collected.lock().unwrap()
                );
            }
        }
    }

    /// The listening address (from the URL).
    pub fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .parse()
            .expect("URL names an address")
    }

    /// Everything logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What it printed on stdout after its URL line. Waits until it closes stdout: call it
    /// once the process has exited.
    pub fn stdout(&self) -> String {
        if let Some(reader) = self.stdout_reader.lock().unwrap().take() {
            let _ = reader.join();
        }
        self.stdout.lock().unwrap().clone()
    }

    /// The names of the process's threads (Linux: `/proc/PID/task/*/comm`).
    pub fn thread_names(&self) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .expect("the process's threads")
            .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap())
            .map(|name| name.trim_end().to_string())
            .collect()
    }

    /// A field of the process's `/proc/PID/status` (Linux), without its name; None if the
    /// kernel does not give it.
    pub fn status_field(&self, name: &str) -> Option<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status");
        super::status_field(&status, name)
    }

    /// Send SIGTERM and wait (at most `within`) for the exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        signal(self.child.id(), "-TERM");
        self.wait(within)
    }

    /// Send SIGINT (Ctrl-C) and wait (at most `within`) for the exit.
    pub fn interrupt(&mut self, within: Duration) -> ExitStatus {
        signal(self.child.id(), "-INT");
        self.wait(within)
    }

    /// Send `sig` (`-TERM`, `-INT`) without waiting.
    pub fn send(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// Wait (at most `within`) until stderr holds `needle`; panics with stderr otherwise.
    pub fn wait_for_stderr(&self, needle: &str, within: Duration) {
        let end = Instant::now() + within;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < end,
                "no {needle:?} on stderr within {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (at most `within`) for the process to end by itself.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        self.wait(within)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait(&mut self, within: Duration) -> ExitStatus {
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the stderr thread catch the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() > end {
                self.kill();
                panic!(
                    "ucwa-replay did not exit in {within:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "-TERM");
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.kill();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(sig).arg(pid.to_string()).status();
}

/// Run `ucwa-replay ARGS` to the end (RUST_LOG unset).
pub fn bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ucwa-replay")
}
