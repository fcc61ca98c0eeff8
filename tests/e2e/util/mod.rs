//! Helpers shared by the integration tests: run the real `ucwa-replay` binary as a server
//! (its first stdout line is its URL), stop it with SIGTERM, and talk raw HTTP/1.1 when a
//! test needs exact control of the bytes on the wire.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub mod fixture;

/// A `ucwa-replay` server process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    /// The URL printed on the first stdout line.
    pub url: String,
    stderr: Arc<Mutex<String>>,
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
            .args(args)
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
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => Server {
                child,
                url: url.trim().to_string(),
                stderr: collected,
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

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines as `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Write `request` as is (it should say `Connection: close`) and read the whole answer.
pub fn raw_request(addr: SocketAddr, request: &str) -> RawResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).expect("write request");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

/// Parse a response read to EOF (Content-Length or close-delimited; not chunked).
pub fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Run `ucwa-replay ARGS` to the end (RUST_LOG unset).
pub fn bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ucwa-replay")
}

/// A path as a command-line argument.
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A fresh temporary directory with a recording path inside.
pub fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rec.sqlite");
    (dir, path)
}
