//! The filesystem side of `tessera watch`: `notify` (inotify on Linux) on the roots
//! [`Targets`](super::targets::Targets) names, each event stamped with when it arrived.
//!
//! Only the literal directories of the globs are watched, recursively only where a glob
//! reaches into subdirectories, so a `target/` directory full of build products is not
//! watched unless a glob asks for it. A root that does not exist yet (an output
//! directory before the first build) is watched from its nearest existing ancestor until
//! it appears.
//!
//! [`FsWatch::sync`] is a barrier: it returns once every event of a write made before it
//! has been handed on, so `tessera watch` can tell a build's own writes from later ones
//! by when they were seen alone (file times cannot: a file's mtime may lag the clock by a
//! tick, and a save right after a build ended was taken for one of its writes).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};

use super::targets::Root;

/// One filesystem event: the paths it names and when it was seen.
#[derive(Debug)]
pub struct Seen {
    pub at: Instant,
    pub paths: Vec<PathBuf>,
}

/// Watches the roots; events arrive on the receiver `start` returns.
pub struct FsWatch {
    watcher: RecommendedWatcher,
    barrier: Barrier,
    /// Roots in place.
    established: Vec<Root>,
    /// Roots whose directory does not exist yet.
    pending: Vec<Root>,
}

impl FsWatch {
    /// Starts watching `roots`; every watch is in place when this returns.
    pub fn start(roots: Vec<Root>) -> anyhow::Result<(FsWatch, mpsc::UnboundedReceiver<Seen>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let markers = tempfile::Builder::new()
            .prefix("tessera-watch-")
            .tempdir()
            .context("cannot create the file watcher's marker directory")?;
        let (arrived, _) = watch::channel(0u64);
        let marker_dir = markers.path().to_owned();
        let barrier = Barrier {
            markers,
            sent: 0,
            arrived: arrived.clone(),
        };
        let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            match event {
                Ok(event) if event.paths.iter().any(|p| p.starts_with(&marker_dir)) => {
                    // A marker of `sync`: everything queued before it has been handed on.
                    let numbers = event.paths.iter().filter_map(|p| marker_number(p));
                    if let Some(n) = numbers.max() {
                        arrived.send_if_modified(|seen| {
                            let newer = n > *seen;
                            *seen = (*seen).max(n);
                            newer
                        });
                    }
                }
                Ok(event) if is_change(&event.kind) => {
                    // The receiver is gone only when the watch loop has stopped.
                    let _ = tx.send(Seen {
                        at: Instant::now(),
                        paths: event.paths,
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("file watcher: {e}"),
            }
        })
        .context("cannot start the file watcher")?;
        let mut fs = FsWatch {
            watcher,
            barrier,
            established: Vec::new(),
            pending: roots,
        };
        let dir = fs.barrier.markers.path().to_owned();
        fs.watch(&dir, false)?;
        fs.establish()?;
        Ok((fs, rx))
    }

    /// Returns once every event of the writes made before this call has been handed on:
    /// inotify delivers events in order, so the event of a marker file written now comes
    /// after all of them. `false` when that took longer than `limit` (a stuck watcher).
    pub async fn sync(&mut self, limit: Duration) -> bool {
        self.barrier.sent += 1;
        let n = self.barrier.sent;
        let marker = self.barrier.markers.path().join(n.to_string());
        if let Err(e) = std::fs::write(&marker, b"") {
            tracing::warn!("file watcher: cannot write {}: {e}", marker.display());
            return false;
        }
        let mut arrived = self.barrier.arrived.subscribe();
        let caught_up = tokio::time::timeout(limit, arrived.wait_for(|seen| *seen >= n))
            .await
            .is_ok_and(|waited| waited.is_ok());
        let _ = std::fs::remove_file(&marker);
        caught_up
    }

    /// Called with every changed path: when it is (or leads to) a missing root, that root
    /// may exist now.
    pub fn revisit(&mut self, path: &Path) -> anyhow::Result<()> {
        if self.pending.iter().any(|root| root.dir.starts_with(path)) {
            self.establish()?;
        }
        Ok(())
    }

    /// Watches every pending root that exists; the others stay pending, with their
    /// nearest existing ancestor watched so that their creation is seen.
    fn establish(&mut self) -> anyhow::Result<()> {
        for root in std::mem::take(&mut self.pending) {
            if root.dir.is_dir() && self.watch(&root.dir, root.recursive)? {
                self.established.push(root);
                continue;
            }
            if let Some(ancestor) = root.dir.ancestors().skip(1).find(|a| a.is_dir())
                && !self.covered(ancestor)
            {
                self.watch(ancestor, false)?;
            }
            self.pending.push(root);
        }
        Ok(())
    }

    /// Whether `dir` is inside a recursive watch already. (Watching it again,
    /// non-recursively, would stop notify from following its new subdirectories.)
    fn covered(&self, dir: &Path) -> bool {
        self.established
            .iter()
            .any(|r| r.recursive && dir.starts_with(&r.dir))
    }

    /// Adds a watch; `false` when the directory vanished meanwhile.
    fn watch(&mut self, dir: &Path, recursive: bool) -> anyhow::Result<bool> {
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        match self.watcher.watch(dir, mode) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot watch {}", dir.display())),
        }
    }
}

/// [`FsWatch::sync`]'s state.
struct Barrier {
    /// The private directory of its marker files, `1`, `2`, …; removed when dropped.
    markers: tempfile::TempDir,
    /// The last marker written.
    sent: u64,
    /// The highest marker whose event has arrived.
    arrived: watch::Sender<u64>,
}

fn marker_number(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.parse().ok()
}

/// Whether an event can mean new content. Opening or reading a file cannot (and the
/// host reads every `.wasm` and file it reloads); closing one written to can.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange, MetadataKind, ModifyKind};

    use super::*;

    #[test]
    fn reads_are_not_changes_but_writes_and_touches_are() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::WriteTime
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
    }

    #[tokio::test]
    async fn sync_returns_after_the_events_of_earlier_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut fs, mut events) = FsWatch::start(vec![Root {
            dir: dir.path().to_owned(),
            recursive: false,
        }])
        .unwrap();
        for round in 0..20 {
            let file = dir.path().join(format!("f{round}"));
            std::fs::write(&file, b"x").unwrap();
            assert!(
                fs.sync(Duration::from_secs(10)).await,
                "the marker never arrived"
            );
            // Already handed on: no waiting here.
            let mut seen = Vec::new();
            while let Ok(event) = events.try_recv() {
                seen.extend(event.paths);
            }
            assert!(seen.contains(&file), "round {round}: {seen:?}");
        }
    }

    #[test]
    fn a_missing_root_is_watched_once_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let (mut fs, _events) = FsWatch::start(vec![Root {
            dir: root.clone(),
            recursive: true,
        }])
        .unwrap();
        assert_eq!(fs.pending.len(), 1);
        std::fs::create_dir(&root).unwrap();
        fs.revisit(&root).unwrap();
        assert!(fs.pending.is_empty());
        assert_eq!(fs.established.len(), 1);
    }
}
