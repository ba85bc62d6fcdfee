//! Ignoring what a component's own build writes.
//!
//! A build writes files: its `.wasm`, often generated sources or assets, sometimes into
//! the very directories its `watch` globs or `files` name. Those writes must not start
//! another build (Spin's watch is known to loop on them), so every change to a component
//! that happened while its build ran is dropped; the reload after the build picks up
//! whatever the build produced.
//!
//! "While it ran" is decided twice: by when the watcher saw the event, and, because an
//! event can be delivered a moment after the build has exited, by the changed file's
//! modification time.

use std::time::{Instant, SystemTime};

/// A build that has started and not yet finished.
#[derive(Debug)]
pub struct Running {
    started: Instant,
    started_at: SystemTime,
}

/// When one finished build ran.
#[derive(Debug, Clone)]
pub struct BuildWindow {
    started: Instant,
    ended: Instant,
    started_at: SystemTime,
    ended_at: SystemTime,
}

impl BuildWindow {
    /// Marks the start of a build.
    pub fn open() -> Running {
        Running {
            started: Instant::now(),
            started_at: SystemTime::now(),
        }
    }

    /// Whether a change seen at `seen`, to a file last modified at `modified` (`None` when
    /// it no longer exists), happened while the build ran.
    pub fn covers(&self, seen: Instant, modified: Option<SystemTime>) -> bool {
        (self.started..=self.ended).contains(&seen)
            || modified.is_some_and(|m| (self.started_at..=self.ended_at).contains(&m))
    }
}

impl Running {
    /// Marks the end of the build.
    pub fn close(self) -> BuildWindow {
        BuildWindow {
            started: self.started,
            ended: Instant::now(),
            started_at: self.started_at,
            ended_at: SystemTime::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn window() -> (BuildWindow, Instant, SystemTime) {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let window = BuildWindow {
            started,
            ended: started + Duration::from_secs(2),
            started_at,
            ended_at: started_at + Duration::from_secs(2),
        };
        (window, started, started_at)
    }

    #[test]
    fn events_seen_during_the_build_are_its_own() {
        let (w, t0, _) = window();
        assert!(w.covers(t0 + Duration::from_secs(1), None));
        assert!(!w.covers(t0 + Duration::from_secs(3), None));
    }

    #[test]
    fn a_late_event_for_a_file_the_build_wrote_is_its_own() {
        let (w, t0, s0) = window();
        let seen = t0 + Duration::from_secs(3);
        assert!(w.covers(seen, Some(s0 + Duration::from_secs(1))));
        assert!(
            !w.covers(seen, Some(s0 + Duration::from_millis(2500))),
            "modified after the build: a new edit"
        );
    }
}
