//! Display helpers with no browser dependencies (unit-tested natively).

/// `1099` → `$10.99`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

/// A typed price rounded to cents for display in the input (`"10.999"` → `"11.00"`);
/// `None` when it is not a finite number.
pub fn round_to_cents(input: &str) -> Option<String> {
    let value: f64 = input.trim().parse().ok().filter(|v: &f64| v.is_finite())?;
    Some(format!("{:.2}", (value * 100.0).round() / 100.0))
}

/// Whole seconds from `now_ms` until `deadline_ms`, never negative.
pub fn seconds_left(deadline_ms: f64, now_ms: f64) -> i64 {
    (((deadline_ms - now_ms) / 1000.0).ceil() as i64).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_cents() {
        assert_eq!(dollars(1099), "$10.99");
        assert_eq!(dollars(5), "$0.05");
        assert_eq!(dollars(100_000_000), "$1000000.00");
    }

    #[test]
    fn rounds_prices() {
        assert_eq!(round_to_cents("10.999").as_deref(), Some("11.00"));
        assert_eq!(round_to_cents(" 3.1 ").as_deref(), Some("3.10"));
        assert_eq!(round_to_cents("1.005e1").as_deref(), Some("10.05"));
        assert_eq!(round_to_cents("abc"), None);
        assert_eq!(round_to_cents("inf"), None);
    }

    #[test]
    fn countdown() {
        assert_eq!(seconds_left(10_000.0, 0.0), 10);
        assert_eq!(seconds_left(10_000.0, 9_001.0), 1);
        assert_eq!(seconds_left(10_000.0, 20_000.0), 0);
    }
}
