//! The filesystem side of `tessera watch`: `notify` (inotify on Linux) on the roots
//! [`Targets`](super::targets::Targets) names, each event stamped with when it arrived.
//!
//! Only the literal directories of the globs are watched, recursively only where a glob
//! reaches into subdirectories, so a `target/` directory full of build products is not
//! watched unless a glob asks for it. A root that does not exist yet (an output
//! directory before the first build) is watched from its nearest existing ancestor until
//! it appears.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

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
    /// Roots in place.
    established: Vec<Root>,
    /// Roots whose directory does not exist yet.
    pending: Vec<Root>,
}

impl FsWatch {
    /// Starts watching `roots`; every watch is in place when this returns.
    pub fn start(roots: Vec<Root>) -> anyhow::Result<(FsWatch, mpsc::UnboundedReceiver<Seen>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            match event {
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
            established: Vec::new(),
            pending: roots,
        };
        fs.establish()?;
        Ok((fs, rx))
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
