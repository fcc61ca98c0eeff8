//! What every listener (`simulate`, `replay`, `record`) does with clients that would hold it:
//! a request head that trickles in or never comes is cut at `--header-timeout`, at most
//! `--max-connections` are open at once (the others wait in the listen queue), a failed
//! accept (out of file descriptors) backs off and is logged once per burst, and `OPTIONS *`
//! is answered by the listener itself. Small floods (tens of connections) and timeouts of
//! half a second keep each test to a second or two; the bounds asserted are generous.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ucwa_replay::sim::{SimConfig, SimServer};

use crate::util::fixture::{FE1, LYNCWEB, im_session, write_session};
use crate::util::raw::{self, RawResponse};
use crate::util::{Server, temp_db};

/// How long a test waits for the server to close a connection before calling it held: far
/// beyond the half-second timeouts the servers are started with.
const GIVE_UP: Duration = Duration::from_secs(15);

/// A request head sent one byte at a time.
const SLOW_HEAD: &[u8] = b"GET /_sim/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";

/// Whether a read result means the server closed the connection.
fn closed(read: std::io::Result<usize>) -> Option<bool> {
    match read {
        Ok(0) => Some(true),
        Ok(_) => Some(false),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(_) => Some(true),
    }
}

/// Connect and send nothing; how long until the server closed the connection (None: still
/// open after [`GIVE_UP`]).
fn silent(addr: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(GIVE_UP)).unwrap();
    let mut buf = [0u8; 64];
    match closed(stream.read(&mut buf)) {
        Some(true) => Some(started.elapsed()),
        Some(false) => panic!("the server answered a client that sent nothing"),
        None => None,
    }
}

/// Connect and send [`SLOW_HEAD`] one byte every 100 ms; how long until the server closed
/// the connection (None: still open after [`GIVE_UP`], or the whole head went out).
fn slow(addr: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 64];
    for byte in SLOW_HEAD {
        if started.elapsed() > GIVE_UP {
            return None;
        }
        if stream.write_all(&[*byte]).is_err() {
            return Some(started.elapsed());
        }
        match closed(stream.read(&mut buf)) {
            Some(true) => return Some(started.elapsed()),
            Some(false) => panic!("the server answered half a request head"),
            None => {}
        }
    }
    None
}

/// Ten silent and ten slow clients at once against `server` (started with
/// `--header-timeout 500ms`): every one is closed, and a real request made meanwhile is
/// answered.
fn slow_and_silent_clients_are_closed(server: &Server, target: &str) {
    let addr = server.addr();
    let flood: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    ("silent", silent(addr))
                } else {
                    ("slow", slow(addr))
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let accept = [("accept", "application/json")];
    let answered = raw::http(&server.url, "GET", target, &accept, b"");
    assert_eq!(answered.status, 200, "{}", answered.text());
    for client in flood {
        let (kind, held) = client.join().unwrap();
        let held = held.unwrap_or_else(|| {
            panic!(
                "a {kind} client was still connected after {GIVE_UP:?}; stderr:\n{}",
                server.stderr()
            )
        });
        // Cut at the timeout, not at the end of the head (which takes 13 s to send).
        assert!(held < Duration::from_secs(10), "{kind}: {held:?}");
    }
}

fn simulator(extra: &[&str]) -> Server {
    let mut args = vec![
        "simulate",
        "--listen",
        "127.0.0.1:0",
        "--time-scale",
        "0.01",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[test]
fn simulate_closes_slow_and_silent_clients_at_the_header_timeout() {
    let server = simulator(&["--header-timeout", "500ms"]);
    slow_and_silent_clients_are_closed(&server, "/_sim/state");
}

#[test]
fn replay_closes_slow_and_silent_clients_at_the_header_timeout() {
    let (_dir, db) = temp_db();
    write_session(&db, "s", FE1, &[LYNCWEB], &im_session(FE1, LYNCWEB));
    let server = Server::replay(&db, &["--header-timeout", "500ms"]);
    slow_and_silent_clients_are_closed(&server, "/autodiscover/autodiscoverservice.svc/root");
}

#[test]
fn record_closes_slow_and_silent_clients_at_the_header_timeout() {
    let sim = SimServer::start(SimConfig {
        seed: 1,
        time_scale: 0.01,
    })
    .unwrap();
    let (_dir, db) = temp_db();
    let server = Server::record(&sim.url(), &db, "s", &["--header-timeout", "500ms"]);
    slow_and_silent_clients_are_closed(&server, "/_sim/state");
}

/// Open `n` connections that each send the start of a request head and wait.
fn half_open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /_sim/state HTTP/1.1\r\n").unwrap();
            s
        })
        .collect()
}

#[test]
fn at_the_connection_cap_new_clients_wait_until_one_closes() {
    let server = simulator(&["--max-connections", "4", "--header-timeout", "30s"]);
    let addr = server.addr();
    let mut held = half_open(addr, 4);
    // Give the server time to accept all four (it is not told when they arrive).
    std::thread::sleep(Duration::from_millis(300));
    let mut fifth = TcpStream::connect(addr).expect("the kernel queues the fifth");
    fifth
        .write_all(b"GET /_sim/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        closed(fifth.read(&mut buf)),
        None,
        "the fifth client was answered while four connections were open"
    );
    held.pop();
    fifth.set_read_timeout(Some(GIVE_UP)).unwrap();
    let mut answer = buf.to_vec();
    let _ = fifth.read_to_end(&mut answer);
    let answer = raw::parse_response(&answer);
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Once the cap is no longer in the way, clients are served at once again.
    drop(held);
    let again = raw::http(&server.url, "GET", "/_sim/state", &[], b"");
    assert_eq!(again.status, 200);
    let stderr = server.stderr();
    assert_eq!(
        stderr.matches("connection cap reached").count(),
        1,
        "{stderr}"
    );
}

/// With 48 file descriptors, forty clients that send nothing exhaust them: the accepts that
/// fail back off (one WARN line, not one every 50 ms), the silent clients are closed at the
/// header timeout, and the client queued behind them is answered.
#[test]
fn out_of_file_descriptors_the_listener_backs_off_and_recovers() {
    let server = Server::start_with_fd_limit(
        48,
        &[
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--header-timeout",
            "1s",
        ],
    );
    let addr = server.addr();
    let silent: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let answered = raw::http(&server.url, "GET", "/_sim/state", &[], b"");
    assert_eq!(answered.status, 200, "{}", server.stderr());
    for mut stream in silent {
        stream.set_read_timeout(Some(GIVE_UP)).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(closed(stream.read(&mut buf)), Some(true));
    }
    let stderr = server.stderr();
    let warnings = stderr.matches("accept failed").count();
    assert_eq!(warnings, 1, "{stderr}");
}

/// `OPTIONS *` asks about the server itself: every listener answers it, with no body.
#[test]
fn options_asterisk_is_answered_by_the_listener_itself() {
    let (_dir, db) = temp_db();
    write_session(&db, "s", FE1, &[LYNCWEB], &im_session(FE1, LYNCWEB));
    for server in [simulator(&[]), Server::replay(&db, &[])] {
        let ask = |method: &str| -> RawResponse {
            raw::request(
                server.addr(),
                format!("{method} * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            )
        };
        let options = ask("OPTIONS");
        assert_eq!(options.status, 200, "{}", server.url);
        assert_eq!(options.header("content-length"), Some("0"));
        assert!(options.body.is_empty());
        assert_eq!(ask("GET").status, 400);
    }
}
