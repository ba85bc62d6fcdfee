//! How long an order holds its ticket, and the deadline that follows.

use anyhow::bail;
use common::config::Source;

/// Name of the Spin variable that sets the lock window.
pub const LOCK_VARIABLE: &str = "order_lock_seconds";

/// Default lock window: three minutes to pay.
pub const DEFAULT_LOCK_SECONDS: u64 = 180;

/// Longest accepted lock window (one day): a longer one is surely a typo, and it keeps
/// every deadline far inside the range of an RFC 3339 date.
pub const MAX_LOCK_SECONDS: u64 = 24 * 60 * 60;

/// How long a new order holds its ticket: between 1 second and [`MAX_LOCK_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockWindow(u64);

impl LockWindow {
    /// A window of `seconds`, if in range.
    pub fn from_seconds(seconds: u64) -> anyhow::Result<Self> {
        if !(1..=MAX_LOCK_SECONDS).contains(&seconds) {
            bail!("Variable `{LOCK_VARIABLE}` must be between 1 and {MAX_LOCK_SECONDS} seconds");
        }
        Ok(Self(seconds))
    }

    /// Reads `order_lock_seconds` (default 180); an invalid value is an error naming it.
    pub fn from_source(source: &(impl Source + ?Sized)) -> anyhow::Result<Self> {
        Self::from_seconds(source.get_or(LOCK_VARIABLE, DEFAULT_LOCK_SECONDS)?)
    }

    /// The deadline of an order placed at `now` (Unix seconds).
    pub fn expires_at(self, now: u64) -> ExpiresAt {
        ExpiresAt(now.saturating_add(self.0))
    }
}

/// The moment an unpaid order is cancelled, in whole Unix seconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpiresAt(u64);

impl ExpiresAt {
    /// A deadline read back from storage.
    pub fn from_unix_seconds(seconds: u64) -> Self {
        Self(seconds)
    }

    /// Unix seconds, as stored.
    pub fn unix_seconds(self) -> u64 {
        self.0
    }

    /// RFC 3339 in UTC with whole seconds, e.g. `2026-11-24T10:03:00Z`: the form of
    /// `expiresAt` in responses and events.
    pub fn to_rfc3339(self) -> String {
        common::time::rfc3339(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_now_plus_the_window() {
        let window = LockWindow::from_seconds(180).unwrap();
        assert_eq!(
            window.expires_at(1_800_000_000),
            ExpiresAt::from_unix_seconds(1_800_000_180)
        );
    }

    #[test]
    fn deadlines_render_as_rfc3339_utc_seconds() {
        let render = |s| ExpiresAt::from_unix_seconds(s).to_rfc3339();
        assert_eq!(render(0), "1970-01-01T00:00:00Z");
        assert_eq!(render(1_795_514_580), "2026-11-24T10:03:00Z");
        // Leap day and the last second of a leap year.
        assert_eq!(render(1_709_208_000), "2024-02-29T12:00:00Z");
        assert_eq!(render(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn the_window_defaults_to_three_minutes() {
        for vars in [&[][..], &[("order_lock_seconds", " ")][..]] {
            assert_eq!(
                LockWindow::from_source(vars).unwrap(),
                LockWindow::from_seconds(180).unwrap()
            );
        }
        let vars: &[(&str, &str)] = &[("order_lock_seconds", "60")];
        assert_eq!(
            LockWindow::from_source(vars).unwrap().expires_at(0),
            ExpiresAt::from_unix_seconds(60)
        );
    }

    #[test]
    fn invalid_windows_are_errors_naming_the_variable() {
        for raw in ["abc", "-5", "0", "86401", "1.5"] {
            let vars: &[(&str, &str)] = &[("order_lock_seconds", raw)];
            let err = LockWindow::from_source(vars).unwrap_err();
            assert!(
                err.to_string().contains("`order_lock_seconds`"),
                "{raw}: {err}"
            );
        }
        assert!(LockWindow::from_seconds(MAX_LOCK_SECONDS).is_ok());
        assert!(LockWindow::from_seconds(1).is_ok());
    }
}
