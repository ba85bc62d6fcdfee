//! Timestamps as Unix seconds (milliseconds where Redis wants them), and their RFC 3339
//! form on the wire.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

pub use crate::session::now;

/// Current Unix time in milliseconds (the unit of Redis' `PXAT` and of deadline scores).
pub fn now_millis() -> u64 {
    // As in `now`: a clock before 1970 is a broken host; 0 makes every deadline due.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `unix_seconds` as RFC 3339 UTC with whole seconds, e.g. `2026-11-24T10:03:00Z`.
pub fn rfc3339(unix_seconds: u64) -> String {
    // Out of chrono's range only for times billions of years away; clamp to the epoch's
    // other end rather than fail (the caller's clock would have to be absurd).
    let seconds = i64::try_from(unix_seconds).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The Unix seconds of an RFC 3339 timestamp (any offset; fractions are dropped), or
/// `None` when it is not one or lies before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let time = DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(time.timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_whole_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_514_580), "2026-11-24T10:03:00Z");
    }

    #[test]
    fn parses_what_it_formats_and_other_offsets() {
        assert_eq!(parse_rfc3339("2026-11-24T10:03:00Z"), Some(1_795_514_580));
        assert_eq!(
            parse_rfc3339("2026-11-24T11:03:00.750+01:00"),
            Some(1_795_514_580)
        );
        for now in [0, 1, 1_795_514_580, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(now)), Some(now));
        }
    }

    #[test]
    fn rejects_other_text() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24 10:03:00",
            "1969-12-31T23:59:59Z",
            "soon",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_millisecond_clock_agrees_with_the_second_clock() {
        let before = now();
        let millis = now_millis();
        let after = now();
        assert!((before..=after).contains(&(millis / 1000)), "{millis}");
    }

    #[test]
    fn absurd_times_do_not_panic() {
        assert!(rfc3339(u64::MAX).starts_with('+'));
    }
}
