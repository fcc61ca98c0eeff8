//! RFC 3339 timestamps as HAR writes them. Browsers differ: Chrome writes UTC with `Z`,
//! Firefox a local offset (`+01:00`); both are read. Written in UTC with microseconds, so that
//! the store's `started_us` survives a round trip.

use std::time::{Duration, UNIX_EPOCH};

/// Microseconds since the Unix epoch → `2026-11-26T20:39:28.123456Z`.
pub fn format_us(us: i64) -> String {
    let t = if us >= 0 {
        UNIX_EPOCH + Duration::from_micros(us as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(us.unsigned_abs())
    };
    humantime::format_rfc3339_micros(t).to_string()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` → microseconds since the epoch (None when not
/// RFC 3339).
pub fn parse_us(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = std::str::from_utf8(b.get(r)?).ok()?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[start..i];
        if digits.is_empty() {
            return None;
        }
        for k in 0..6 {
            micros = micros * 10 + digits.get(k).map_or(0, |d| (d - b'0') as i64);
        }
    }
    let offset_s = match b.get(i..)? {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let s = h * 3600 + m * 60;
            if *sign == b'+' { s } else { -s }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_browser_spellings() {
        let us = 1_764_189_568_123_456;
        let text = format_us(us);
        assert_eq!(text, "2025-11-26T20:39:28.123456Z");
        assert_eq!(parse_us(&text), Some(us));
        assert_eq!(
            parse_us("2025-11-26T21:39:28.123+01:00"),
            Some(1_764_189_568_123_000)
        );
        assert_eq!(
            parse_us("2025-11-26T20:39:28Z"),
            Some(1_764_189_568_000_000)
        );
        assert_eq!(parse_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_us("yesterday"), None);
        assert_eq!(parse_us("2025-13-01T00:00:00Z"), None);
        assert_eq!(parse_us("2025-11-26T20:39:28+0100"), None);
    }
}
