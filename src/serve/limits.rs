//! What a listener allows its clients, and how it behaves when the machine runs short.
//!
//! - [`Limits`]: the header-read timeout and the connection cap every listener applies;
//! - [`AcceptBackoff`]: after a failed `accept` (out of file descriptors), wait before trying
//!   again, longer each time, instead of spinning on a listener that stays readable;
//! - [`Burst`]: log the first of a run of such events once, then how many there were when
//!   the run is over, instead of a line per event.
//!
//! `tracing` has no rate limiting of its own and the crates that add it are little used;
//! what is needed here (one line at the start of a run, one at its end) fits in `Burst`.

use std::io;
use std::time::{Duration, Instant};

/// Default [`Limits::header_read_timeout`]: a client on a LAN sends a request head in
/// milliseconds; a few seconds leave room for a slow link and none for a slow-loris.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Default [`Limits::max_connections`]: room for hundreds of held P-GETs (one connection
/// each) and the requests beside them, under the common file-descriptor limit of 1024 for
/// the replayer and the simulator. The recording proxy may hold an upstream connection per
/// client connection: keep the cap under half the limit there (`ulimit -n`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The limits a listener applies to its clients' connections. Start from [`Limits::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// How long a client has to send a request head: from the moment its connection is
    /// accepted (TLS handshake included) for the first request, and from the end of the
    /// previous response for each later HTTP/1.1 request (so it is also how long an idle
    /// keep-alive connection stays open). A connection that misses it is closed.
    pub header_read_timeout: Duration,
    /// Most connections open at once. At the cap the listener stops accepting: new clients
    /// wait in the kernel's listen queue until a connection closes (logged once per burst).
    pub max_connections: usize,
}

impl Limits {
    /// The defaults: [`DEFAULT_HEADER_READ_TIMEOUT`], [`DEFAULT_MAX_CONNECTIONS`].
    pub const fn new() -> Self {
        Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new()
    }
}

/// The first pause after a failed `accept`, and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// How long to wait after a failed `accept`. Running out of file descriptors leaves the
/// pending connection in the listen queue, so the listener stays readable and retrying at
/// once would spin; the pause doubles up to a second until an `accept` succeeds.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff { next: FIRST_PAUSE }
    }
}

impl AcceptBackoff {
    /// The pause after `err`: none for an error of that one connection (the client reset it
    /// before it was accepted), else the next step of the back-off.
    pub fn pause_after(&mut self, err: &io::Error) -> Duration {
        if is_connection_error(err) {
            return Duration::ZERO;
        }
        let pause = self.next;
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        pause
    }

    /// An `accept` succeeded: the next failure starts over from the shortest pause.
    pub fn succeeded(&mut self) {
        self.next = FIRST_PAUSE;
    }
}

/// Errors about the one connection being accepted, not about the listener or the process.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// How long a run of events must have stopped before it counts as over.
pub const QUIET: Duration = Duration::from_secs(10);

/// A run of similar events (failed accepts, waits at the connection cap): the first one of a
/// run is logged, the others are counted, and the count is logged once the run is over.
#[derive(Debug, Default)]
pub struct Burst {
    /// When the current run started, and its latest event.
    run: Option<(Instant, Instant)>,
    count: u64,
}

/// A finished run: how many events, from the first to the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub events: u64,
    pub lasted: Duration,
}

impl Burst {
    /// Count an event at `now`; true when it starts a run (the caller logs it). An event
    /// after [`QUIET`] without one starts a new run even if no success was seen between.
    pub fn event(&mut self, now: Instant) -> bool {
        match &mut self.run {
            Some((_, last)) if now.saturating_duration_since(*last) < QUIET => {
                *last = now;
                self.count += 1;
                false
            }
            _ => {
                self.run = Some((now, now));
                self.count = 1;
                true
            }
        }
    }

    /// Things work again at `now`: the run, if any, is over once [`QUIET`] has passed since
    /// its last event; then it is returned (for the caller to log) and forgotten.
    pub fn calm(&mut self, now: Instant) -> Option<Run> {
        let (first, last) = self.run?;
        if now.saturating_duration_since(last) < QUIET {
            return None;
        }
        self.run = None;
        Some(Run {
            events: self.count,
            lasted: last - first,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_a_second_and_starts_over_after_a_success() {
        let mut b = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<u64> = (0..9)
            .map(|_| b.pause_after(&emfile).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.pause_after(&emfile), Duration::from_millis(10));
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(b.pause_after(&reset), Duration::ZERO);
    }

    #[test]
    fn a_burst_is_logged_once_and_summed_up_when_it_is_over() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut burst = Burst::default();
        assert!(burst.event(at(0)));
        // Every 50 ms for two seconds: no new line.
        assert!((1..=40).all(|i| !burst.event(at(i * 50))));
        // A success soon after is not the end of the run.
        assert_eq!(burst.calm(at(2_100)), None);
        assert!(!burst.event(at(2_200)));
        let end = burst.calm(at(2_200 + QUIET.as_millis() as u64)).unwrap();
        assert_eq!(
            end,
            Run {
                events: 42,
                lasted: Duration::from_millis(2_200)
            }
        );
        assert_eq!(burst.calm(at(60_000)), None, "reported once");
        // A later event starts a new run, even without a success in between.
        assert!(burst.event(at(60_000)));
        assert!(burst.event(at(60_000 + QUIET.as_millis() as u64 + 1)));
    }
}
