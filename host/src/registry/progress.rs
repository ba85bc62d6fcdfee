//! What `tessera registry push` and `pull` (and `up --from`) show while they move layers:
//! one line per layer with its kind and size when it is done (or found already there),
//! and on a terminal a live line of bytes moved so far. Plain lines only when stderr is
//! not a terminal (CI logs, pipes).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Progress of one push or pull of `total_bytes` over `layers` blobs.
pub struct Progress {
    verb: &'static str,
    layers: usize,
    total_bytes: u64,
    moved: AtomicU64,
    done: Mutex<usize>,
    live: bool,
    started: Instant,
}

impl Progress {
    /// `verb` is "pushed" or "pulled".
    pub fn new(verb: &'static str, layers: usize, total_bytes: u64) -> Progress {
        Progress {
            verb,
            layers,
            total_bytes,
            moved: AtomicU64::new(0),
            done: Mutex::new(0),
            live: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    /// `bytes` more of some layer arrived or left.
    pub fn advance(&self, bytes: u64) {
        let moved = self.moved.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if self.live {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r  {} of {}", human(moved), human(self.total_bytes));
            let _ = err.flush();
        }
    }

    /// A layer finished: moved (`reused == false`) or already there.
    pub fn layer_done(&self, kind: &str, digest: &str, size: u64, reused: bool) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *done += 1;
        let short = digest.strip_prefix("sha256:").unwrap_or(digest);
        let short = &short[..short.len().min(12)];
        let what = if reused { "already there" } else { self.verb };
        let clear = if self.live { "\r\x1b[2K" } else { "" };
        eprintln!(
            "{clear}[{}/{}] {kind} {short} {} {what}",
            *done,
            self.layers,
            human(size)
        );
    }

    /// The closing line: how much moved in how long.
    pub fn finish(&self) {
        eprintln!(
            "{} {} in {} layers ({:.1}s)",
            capitalised(self.verb),
            human(self.moved.load(Ordering::Relaxed)),
            self.layers,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `1.5 MiB`, `312 KiB`, `90 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A layer's kind for people, from its media type.
pub fn kind(media_type: &str) -> &'static str {
    match media_type {
        super::WASM_LAYER_MEDIA_TYPE | super::WASM_LAYER_MEDIA_TYPE_WKG => "wasm",
        super::DATA_MEDIA_TYPE => "file",
        super::SPIN_APPLICATION_MEDIA_TYPE => "locked app",
        super::ARCHIVE_MEDIA_TYPE => "archive",
        _ => "blob",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human(90), "90 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(37 * 1024 * 1024), "37.0 MiB");
    }
}
