//! Ignoring what a component's own build writes.
//!
//! A build writes files: its `.wasm`, often generated sources or assets, sometimes into
//! the very directories its `watch` globs or `files` name. Those writes must not start
//! another build (Spin's watch is known to loop on them), so every change to a component
//! that happened while its build ran is dropped; the reload after the build picks up
//! whatever the build produced.
//!
//! "While it ran" is decided by when the watcher saw the event. An event can be delivered
//! a moment after the build has exited, so the window closes only once the watcher has
//! handed on every event of the writes made before then (`FsWatch::sync`). File times
//! are not used: a file's modification time may lag the clock by a tick, and a change
//! saved right after a build ended was once taken for one of the build's own writes.

use std::time::Instant;

/// A build that has started and not yet finished.
#[derive(Debug)]
pub struct Running {
    started: Instant,
}

/// When one finished build ran.
#[derive(Debug, Clone)]
pub struct BuildWindow {
    started: Instant,
    ended: Instant,
}

impl BuildWindow {
    /// Marks the start of a build.
    pub fn open() -> Running {
        Running {
            started: Instant::now(),
        }
    }

    /// Whether a change seen at `seen` happened while the build ran.
    pub fn covers(&self, seen: Instant) -> bool {
        (self.started..=self.ended).contains(&seen)
    }
}

impl Running {
    /// Marks the end of the build: call it once the watcher has caught up.
    pub fn close(self) -> BuildWindow {
        BuildWindow {
            started: self.started,
            ended: Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn events_seen_during_the_build_are_its_own_and_later_ones_are_not() {
        let started = Instant::now();
        let w = BuildWindow {
            started,
            ended: started + Duration::from_secs(2),
        };
        assert!(w.covers(started + Duration::from_secs(1)));
        assert!(w.covers(started + Duration::from_secs(2)));
        assert!(!w.covers(started + Duration::from_millis(2001)));
        assert!(!w.covers(started - Duration::from_millis(1)));
    }
}
