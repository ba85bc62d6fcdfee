//! Checkpoints a database's write-ahead log on a thread of its own.
//!
//! In WAL mode sqlite appends every commit to the log and, by default, copies the log
//! back into the database file (a checkpoint, fsync included) inside the commit that
//! leaves the log at 1,000 pages or more. The request or event handler that happened to
//! commit then waited for it: ~5 ms, the p99 of event propagation (measured with
//! `propagation_breakdown`: an outbox `DELETE` in `POST /api/orders` taking 4.9 ms). Here a
//! commit only notices the log's size; one thread per database does the checkpoint beside
//! the writers, in passive mode, which never waits for (or blocks) readers or writers.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

/// Log size, in pages, from which a commit asks for a checkpoint: sqlite's own default
/// for its inline checkpoints.
const CHECKPOINT_PAGES: i32 = 1000;

/// The checkpoint thread of one database file; it ends once this and every connection
/// [`watch`](Self::watch)ing the file are gone.
pub struct WalCheckpointer {
    /// Capacity one: a checkpoint already asked for absorbs further requests until it runs.
    wake: SyncSender<()>,
    /// Held by the thread around each checkpoint; kept here so a test can hold one back.
    #[cfg_attr(not(test), allow(dead_code))]
    running: Arc<Mutex<()>>,
}

impl WalCheckpointer {
    /// Starts the checkpoint thread for the database at `path`.
    pub fn start(path: &Path) -> WalCheckpointer {
        let (wake, requests) = sync_channel(1);
        let running = Arc::new(Mutex::new(()));
        let thread = {
            let (path, running) = (path.to_owned(), running.clone());
            move || checkpoint_on_request(path, requests, running)
        };
        // Without the thread, nothing checkpoints until the last connection closes (the log
        // only grows meanwhile); say so, but a database that cannot start it still works.
        if let Err(err) = std::thread::Builder::new()
            .name("tessera-wal-ckpt".into())
            .spawn(thread)
        {
            tracing::warn!(path = %path.display(), "cannot start the sqlite checkpoint thread: {err}");
        }
        WalCheckpointer { wake, running }
    }

    /// Makes every commit on `conn` that leaves the log at [`CHECKPOINT_PAGES`] or more ask
    /// this thread for a checkpoint, instead of checkpointing itself. (A log hook replaces
    /// sqlite's inline auto-checkpoint: both are the one hook slot per connection.)
    pub fn watch(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let wake = self.wake.clone();
        conn.wal_hook(Some(move |_: &mut Wal, pages: i32| {
            if pages >= CHECKPOINT_PAGES {
                // Full: a checkpoint is already due, and it will take this commit's pages.
                let _ = wake.try_send(());
            }
            Ok(())
        }))
    }

    /// Holds checkpoints back until the guard is dropped.
    #[cfg(test)]
    pub fn hold(&self) -> std::sync::MutexGuard<'_, ()> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn checkpoint_on_request(path: PathBuf, requests: Receiver<()>, running: Arc<Mutex<()>>) {
    let mut conn = None;
    for () in requests {
        let _running = running.lock().unwrap_or_else(|e| e.into_inner());
        let result = match &conn {
            Some(conn) => checkpoint(conn),
            None => open(&path).and_then(|opened| {
                let result = checkpoint(&opened);
                conn = Some(opened);
                result
            }),
        };
        // Busy: another checkpoint (a closing connection's) is running; the next commit
        // over the threshold asks again.
        if let Err(err) = result {
            tracing::debug!(path = %path.display(), "sqlite checkpoint: {err}");
        }
    }
}

/// A connection of the checkpoint thread's own. It reads the file's journal mode at once:
/// a connection that has not read the database yet does not know it is in WAL mode, and
/// its checkpoints do nothing.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    Ok(conn)
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)
        .map(|_| ())
}
