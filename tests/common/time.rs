//! Timestamps as the node writes them, for comparing with the test's clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses an RFC 3339 UTC timestamp as the node writes it (`2026-01-02T03:04:05.123Z`, or with
/// a `+00:00` offset).
pub fn parse_time(input: &str) -> SystemTime {
    let bad = || bad_time(input);
    let text = input.strip_suffix('Z').or_else(|| input.strip_suffix("+00:00")).unwrap_or_else(bad);
    let (date, time) = text.split_once(['T', 't']).unwrap_or_else(|| bad_time(input));
    let date: Vec<i64> =
        date.split('-').map(|p| p.parse().unwrap_or_else(|_| bad_time(input))).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let hms: Vec<u64> =
        hms.split(':').map(|p| p.parse().unwrap_or_else(|_| bad_time(input))).collect();
    if date.len() != 3 || hms.len() != 3 {
        bad_time(input);
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        digits.parse().unwrap_or_else(|_| bad_time(input))
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, d) = (date[0], date[1], date[2]);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = u64::try_from(days).expect("date after 1970") * 86_400
        + hms[0] * 3600
        + hms[1] * 60
        + hms[2];
    UNIX_EPOCH + Duration::new(seconds, nanos)
}

fn bad_time(input: &str) -> ! {
    panic!("not an RFC 3339 UTC timestamp: {input:?}")
}

/// Returns `later - earlier` in seconds (negative when `later` is earlier).
pub fn seconds_between(earlier: SystemTime, later: SystemTime) -> f64 {
    match later.duration_since(earlier) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}
