//! Helpers shared by the bench programs (`mod common;` in each; every program uses a part).
//!
//! - medians and ratios;
//! - the generated exchanges of `diff` (and of the 100 000-exchange cases) and the empty
//!   exchange of `serve`;
//! - the release binary as a child process: its URL, resident memory (`VmHWM`/`VmRSS` from
//!   `/proc/PID/status`, polled while it runs), SIGTERM;
//! - a small keep-alive HTTP/1.1 load generator (N connections, one fixed request), for
//!   when `wrk` is not installed and for the benches that need load from inside.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ucwa_replay::recording::{EventRow, Exchange, HeaderList, KeyOptions, KeyRequest};
use ucwa_replay::store::{NewSession, StoreWriter};
use ucwa_replay::ucwa::Representation;

/// The middle value (the upper one of an even count).
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}

/// `a / b` of two durations.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// "met" / "MISSED" for a target line.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// `nproc`, the CPU model and the memory, for the head of a report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    format!("{cpus} CPUs, {model}, {} MiB RAM", mem / 1024)
}

/// An exchange with nothing in it but a 100 µs duration (replay start-up recording).
pub fn empty_exchange() -> Exchange {
    Exchange {
        duration_us: 100,
        ..Exchange::default()
    }
}

/// A generated exchange of a conversation-heavy session: participantMessaging GETs (JSON,
/// every 7th XML) and every 10th an events-feed response with three events. `app` and
/// `variant` make a second session that differs from the first everywhere ids live.
pub fn exchange(seq: u64, app: u32, variant: u32) -> Exchange {
    let conv = seq / 50;
    let base = format!(
        "/ucwa/oauth/v1/applications/{app}/communication/conversations/{}",
        conv + variant as u64 * 1000
    );
    let feed = seq.is_multiple_of(10);
    let xml = seq.is_multiple_of(7);
    let (path, query, kind) = if feed {
        (
            format!("/ucwa/oauth/v1/applications/{app}/events"),
            Some(format!("ack={}", seq / 10 + 1)),
            "events",
        )
    } else {
        (
            format!("{base}/participants/user{}/messaging", seq % 13),
            None,
            "participantMessaging",
        )
    };
    let accept = if xml {
        "application/xml"
    } else {
        "application/json"
    };
    let key = KeyRequest {
        method: "GET",
        path: &path,
        query: query.as_deref(),
        accept: Some(accept),
        ..KeyRequest::default()
    }
    .key(&KeyOptions::default());
    let body = if xml {
        format!(
            r#"<resource rel="participantMessaging" href="{path}" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="participant" href="{base}/participants/user{}" /><property name="rel">participantMessaging</property></resource>"#,
            seq % 13
        )
    } else {
        json!({"rel":"participantMessaging","_links":{"self":{"href":path},"participant":{"href":format!("{base}/participants/user{}", seq % 13)}},
               "when": format!("/Date({})/", 1_474_932_027_613u64 + seq + variant as u64)}).to_string()
    };
    let mut response_headers = HeaderList::default();
    response_headers.push(
        "content-type",
        if xml {
            "application/xml"
        } else {
            "application/json"
        },
    );
    let mut request_headers = HeaderList::default();
    request_headers.push("accept", accept);
    let events = if feed {
        (0..3)
            .map(|i| EventRow {
                ack: Some((seq / 10 + 1) as i64),
                position: i,
                sender_rel: "conversation".into(),
                sender_href: base.clone(),
                link_rel: "participantMessaging".into(),
                link_href: format!("{base}/participants/user{i}/messaging"),
                in_rel: Some("participant".into()),
                in_href: Some(format!("{base}/participants/user{i}")),
                event_type: ["added", "updated", "deleted"][i as usize].into(),
                ..EventRow::default()
            })
            .collect()
    } else {
        vec![]
    };
    Exchange {
        seq,
        method: "GET".into(),
        path,
        query,
        http_version: "HTTP/1.1".into(),
        request_headers,
        status: Some(200),
        response_headers,
        response_body: body.into_bytes(),
        kind: kind.into(),
        representation: if xml {
            Representation::Xml
        } else {
            Representation::Json
        },
        match_key: key,
        events,
        ..Exchange::default()
    }
}

/// A new session for the generated recordings.
pub fn new_session(name: &str) -> NewSession {
    NewSession {
        name: name.into(),
        upstream: "https://fe1.contoso.com".into(),
        also_upstreams: vec![],
        replace: true,
    }
}

/// Write `exchanges` as session `name` of `path` through the store's writer.
pub async fn write_session(path: &Path, name: &str, exchanges: impl Iterator<Item = Exchange>) {
    let w = StoreWriter::create(path, &new_session(name)).expect("create recording");
    let sink = w.sink();
    for ex in exchanges {
        sink.submit(ex);
    }
    drop(sink);
    w.finish().await.expect("finish recording");
}

/// The release binary next to this bench (cargo builds it for benches), or the one named
/// by `UCWA_REPLAY_BIN` (an older build, for a before/after comparison in the same run).
pub fn bin() -> PathBuf {
    std::env::var_os("UCWA_REPLAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ucwa-replay")))
}

/// A field of `/proc/PID/status` in kB (`VmHWM`: peak resident, `VmRSS`: resident now).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// This process's own peak resident memory in MiB.
pub fn self_peak_mib() -> f64 {
    status_kb(std::process::id(), "VmHWM").unwrap_or(0) as f64 / 1024.0
}

/// A server command of the binary (record, replay, simulate) running as a child: the URL
/// it printed, its memory, and SIGTERM.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub addr: SocketAddr,
    pub started: Instant,
    /// When the URL line came.
    pub listening: Duration,
}

impl Server {
    /// Start the binary with `args`; its stderr goes to `log` (or nowhere).
    pub fn start(args: &[&str], log: Option<&Path>) -> Server {
        let started = Instant::now();
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
            None => Stdio::null(),
        };
        let mut child = Command::new(bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the ucwa-replay binary");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut url = String::new();
        lines.read_line(&mut url).expect("URL line");
        let listening = started.elapsed();
        // Keep draining stdout so the child never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        let url = url.trim().to_string();
        let addr = url
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|_| panic!("no URL from {args:?}: {url:?}"));
        Server {
            child,
            url,
            addr,
            started,
            listening,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far, MiB.
    pub fn peak_mib(&self) -> f64 {
        status_kb(self.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0
    }

    /// Resident memory now, MiB.
    pub fn rss_mib(&self) -> f64 {
        status_kb(self.pid(), "VmRSS").unwrap_or(0) as f64 / 1024.0
    }

    /// SIGTERM, then wait: the exit status and how long the exit took.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        sigterm(self.pid());
        let status = self.child.wait().expect("wait");
        (status, t.elapsed())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Send SIGTERM to `pid` (through `kill`, to need no libc binding).
pub fn sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// What a finished command cost.
pub struct Measured {
    pub status: ExitStatus,
    pub elapsed: Duration,
    /// Peak resident memory (VmHWM polled every few ms while it ran), MiB.
    pub peak_mib: f64,
    pub stdout: Vec<u8>,
}

/// Run the binary with `args` to completion, polling its peak resident memory.
pub fn run_measured(args: &[&str]) -> Measured {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let t = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::from(out.reopen().expect("reopen")))
        .stderr(Stdio::null())
        .spawn()
        .expect("start the ucwa-replay binary");
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = status_kb(child.id(), "VmHWM") {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(3));
    };
    Measured {
        status,
        elapsed: t.elapsed(),
        peak_mib: peak as f64 / 1024.0,
        stdout: std::fs::read(out.path()).unwrap_or_default(),
    }
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Complete responses.
    pub responses: u64,
    /// Connections that failed (refused, reset, a response that did not parse).
    pub errors: u64,
    pub elapsed: Duration,
    /// Every response's latency, in µs.
    pub latencies_us: Vec<u32>,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        self.responses as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency at quantile `q` (0.5 median, 0.99 p99).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 * q) as usize).min(v.len() - 1);
        Duration::from_micros(v[i] as u64)
    }
}

/// A GET request for `path` with a keep-alive connection.
pub fn get_request(addr: SocketAddr, path: &str, accept: &str) -> Arc<Vec<u8>> {
    Arc::new(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nUser-Agent: ucwa-bench\r\n\r\n")
            .into_bytes(),
    )
}

/// Send `request` over `conns` keep-alive connections for `duration`, each waiting for a
/// response (Content-Length framed) before the next request.
pub async fn load(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    conns: usize,
    duration: Duration,
) -> LoadResult {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move { one_connection(addr, &request, deadline).await })
        })
        .collect();
    let mut total = LoadResult::default();
    for t in tasks {
        let r = t.await.expect("load task");
        total.responses += r.responses;
        total.errors += r.errors;
        total.latencies_us.extend(r.latencies_us);
    }
    total.elapsed = start.elapsed();
    total
}

async fn one_connection(addr: SocketAddr, request: &[u8], deadline: Instant) -> LoadResult {
    let mut out = LoadResult::default();
    let mut buf = Vec::with_capacity(16 * 1024);
    'connect: while Instant::now() < deadline {
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
            out.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        buf.clear();
        while Instant::now() < deadline {
            let t = Instant::now();
            if stream.write_all(request).await.is_err() {
                out.errors += 1;
                continue 'connect;
            }
            let read = tokio::time::timeout(
                Duration::from_secs(30),
                read_response(&mut stream, &mut buf),
            );
            match read.await.ok().flatten() {
                Some(()) => {
                    out.responses += 1;
                    out.latencies_us.push(t.elapsed().as_micros() as u32);
                }
                None => {
                    out.errors += 1;
                    continue 'connect;
                }
            }
        }
        return out;
    }
    out
}

/// Read one Content-Length-framed response into `buf` (and drop it).
pub async fn read_response(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                read_more(stream, buf).await?;
            }
            buf.drain(..total);
            return Some(());
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

/// One blocking GET; the status code, or None while nothing answers.
pub fn get_status(addr: SocketAddr, path: &str, accept: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
