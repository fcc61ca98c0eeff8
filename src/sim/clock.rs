//! Deterministic ids and times. A real front-end hands out random ids and wall-clock dates;
//! the simulator derives both from the seed and from how many responses it has written, so
//! that the same request sequence against the same `--seed` yields the same bytes.

use std::time::{Duration, SystemTime};

/// 2024-01-01T00:00:00Z: the simulator's "now" before its first response.
const EPOCH_SECS: u64 = 1_704_067_200;

/// A seeded pseudo-random stream (splitmix64): tiny, fast and stable across platforms and
/// crate versions, which a dependency's generator would not promise.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed ^ 0x5EED_0CCA_u64.rotate_left(17),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n + 16);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    /// A uuid-shaped id (version 4 layout), as UCWA uses for communication's PUT key.
    pub fn guid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

/// The simulated clock: one second passes per response written, starting at a fixed epoch.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    ticks: u64,
}

impl Clock {
    /// Advance by one step and return the new time.
    pub fn tick(&mut self) -> SystemTime {
        self.ticks += 1;
        self.now()
    }

    /// The current simulated time.
    pub fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECS + self.ticks)
    }

    /// Milliseconds since the Unix epoch, for UCWA `\/Date(ms)\/` values.
    pub fn now_millis(&self) -> u64 {
        (EPOCH_SECS + self.ticks) * 1000
    }
}

/// The value of an HTTP `Date` header for a simulated time.
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.hex(40), b.hex(40));
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
        assert_eq!(a.guid().len(), 36);
    }

    #[test]
    fn clock_starts_at_the_epoch() {
        let mut c = Clock::default();
        assert_eq!(http_date(c.tick()), "Mon, 01 Jan 2024 00:00:01 GMT");
        assert_eq!(c.now_millis(), 1_704_067_201_000);
    }
}
