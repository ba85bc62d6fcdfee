//! Debouncing: one rebuild or reload per burst of changes.
//!
//! Saving a file, or a build writing a `.wasm`, is several filesystem events in quick
//! succession (create, write, close, rename). A subject becomes due once its events have
//! been quiet for the debounce period, so a burst costs one build, and a `.wasm` is read
//! only after its writer has finished. Each subject has its own quiet period, so a busy
//! component does not hold back another.
//!
//! Pure bookkeeping over instants the caller passes in, so it is tested without sleeping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::targets::Change;

/// What is waiting for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The strongest change asked for (a rebuild wins over a reload).
    pub change: Change,
    /// The first path that asked for it (to say what changed).
    pub path: PathBuf,
    /// When the latest event for this subject was seen.
    pub last: Instant,
}

/// Pending changes per subject, each due after its quiet period.
#[derive(Debug)]
pub struct Debouncer<K> {
    quiet: Duration,
    pending: BTreeMap<K, Pending>,
}

impl<K: Ord + Clone> Debouncer<K> {
    pub fn new(quiet: Duration) -> Self {
        Debouncer {
            quiet,
            pending: BTreeMap::new(),
        }
    }

    /// Records that `path` changed for `key` at `at`, asking for `change`.
    pub fn record(&mut self, key: K, change: Change, path: &Path, at: Instant) {
        let entry = self.pending.entry(key).or_insert_with(|| Pending {
            change,
            path: path.to_owned(),
            last: at,
        });
        if change > entry.change {
            entry.change = change;
            entry.path = path.to_owned();
        }
        entry.last = entry.last.max(at);
    }

    /// When the next subject becomes due, if any is pending.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.last + self.quiet).min()
    }

    /// Removes and returns the subjects that have been quiet long enough at `now`, in key
    /// order.
    pub fn take_due(&mut self, now: Instant) -> Vec<(K, Pending)> {
        let due: Vec<K> = self
            .pending
            .iter()
            .filter(|(_, p)| p.last + self.quiet <= now)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|k| self.pending.remove_entry(&k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(300);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_is_due_once_after_its_last_event() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET);
        d.record("a", Change::Reload, Path::new("a.wasm"), t0);
        d.record("a", Change::Reload, Path::new("a.wasm"), t0 + ms(200));
        assert_eq!(d.next_due(), Some(t0 + ms(500)));
        assert!(
            d.take_due(t0 + ms(499)).is_empty(),
            "still within the burst"
        );
        let due = d.take_due(t0 + ms(500));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, "a");
        assert_eq!(d.next_due(), None);
        assert!(d.take_due(t0 + ms(10_000)).is_empty(), "due only once");
    }

    #[test]
    fn a_rebuild_wins_over_a_reload_and_names_its_path() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET);
        d.record("a", Change::Reload, Path::new("a.wasm"), t0);
        d.record("a", Change::Rebuild, Path::new("src/lib.rs"), t0 + ms(10));
        d.record("a", Change::Reload, Path::new("a.wasm"), t0 + ms(20));
        let due = d.take_due(t0 + ms(320));
        assert_eq!(due[0].1.change, Change::Rebuild);
        assert_eq!(due[0].1.path, Path::new("src/lib.rs"));
    }

    #[test]
    fn subjects_have_their_own_quiet_periods() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET);
        d.record("a", Change::Rebuild, Path::new("a.rs"), t0);
        d.record("b", Change::Rebuild, Path::new("b.rs"), t0 + ms(250));
        let due: Vec<_> = d
            .take_due(t0 + ms(300))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(due, ["a"]);
        assert_eq!(d.next_due(), Some(t0 + ms(550)));
    }

    #[test]
    fn an_event_seen_late_does_not_move_the_burst_back() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET);
        d.record("a", Change::Reload, Path::new("a.wasm"), t0 + ms(100));
        // Queued while a build ran, delivered after a newer one.
        d.record("a", Change::Reload, Path::new("a.wasm"), t0);
        assert_eq!(d.next_due(), Some(t0 + ms(400)));
    }
}
