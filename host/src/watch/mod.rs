//! `tessera watch`'s watcher: turns filesystem events into rebuilds and reloads of the
//! components they concern, one at a time, while the host keeps serving.
//!
//! The pieces, each in its own module:
//! - `targets`: which paths belong to which component, and whether a change there asks
//!   for a rebuild or only a reload (Spin's rules, minus its rebuild loop);
//! - `fs`: the `notify` watches on the directories those paths are in;
//! - `debounce`: one rebuild or reload per burst of events;
//! - `build_window`: events caused by a component's own build are dropped;
//! - `live`: building a component and swapping its new version into the runtime.
//!
//! Changes are applied in order, one component at a time: builds of one workspace
//! contend for the same `target/` lock anyway, and a reload is quick. Events keep
//! queueing meanwhile and are sorted out afterwards.

mod build_window;
mod debounce;
mod fs;
mod live;
mod targets;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::manifest::ComponentId;
use build_window::BuildWindow;
use debounce::{Debouncer, Pending};
use fs::{FsWatch, Seen};
pub use live::LiveApp;
pub use targets::{Change, Mode, Subject, Targets};

/// How long a build's end waits for the file watcher to hand on the events of its writes
/// (milliseconds when the machine is loaded; only a stuck watcher takes this long).
const SYNC_LIMIT: Duration = Duration::from_secs(2);

/// Watches an app's files and rebuilds and reloads its components as they change.
pub struct Watcher {
    targets: Targets,
    fs: FsWatch,
    events: mpsc::UnboundedReceiver<Seen>,
    debouncer: Debouncer<Subject>,
    /// Each component's latest build, whose own writes are not changes.
    builds: HashMap<ComponentId, BuildWindow>,
    app: Arc<LiveApp>,
}

impl Watcher {
    /// Starts watching `targets`: every watch is in place when this returns, so a change
    /// made after it is seen. Changes take effect once quiet for `debounce`.
    pub fn start(targets: Targets, debounce: Duration, app: LiveApp) -> anyhow::Result<Self> {
        let (fs, events) = FsWatch::start(targets.roots())?;
        let n = targets.len();
        eprintln!(
            "Watching {n} component{} for changes",
            if n == 1 { "" } else { "s" }
        );
        Ok(Watcher {
            targets,
            fs,
            events,
            debouncer: Debouncer::new(debounce),
            builds: HashMap::new(),
            app: Arc::new(app),
        })
    }

    /// Applies changes until the process stops (or the task running this is aborted).
    pub async fn run(mut self) {
        loop {
            let due = self.debouncer.next_due();
            tokio::select! {
                seen = self.events.recv() => match seen {
                    Some(seen) => self.observe(seen),
                    None => return,
                },
                () = sleep_until(due) => self.apply_due().await,
            }
        }
    }

    /// Records what one event means for each subject.
    fn observe(&mut self, seen: Seen) {
        for path in &seen.paths {
            if let Err(e) = self.fs.revisit(path) {
                tracing::warn!("{e:#}");
            }
            for (subject, change) in self.targets.classify(path) {
                if let Subject::Component(id) = &subject
                    && self.written_by_own_build(id, seen.at)
                {
                    continue;
                }
                self.debouncer.record(subject, change, path, seen.at);
            }
        }
    }

    fn written_by_own_build(&self, id: &ComponentId, seen: Instant) -> bool {
        self.builds
            .get(id)
            .is_some_and(|window| window.covers(seen))
    }

    async fn apply_due(&mut self) {
        for (subject, pending) in self.debouncer.take_due(Instant::now()) {
            match subject {
                Subject::Component(id) => self.apply(&id, pending).await,
                Subject::Manifest => eprintln!(
                    "{} changed: restart `tessera watch` to apply it (only components' code and \
                     files are reloaded while it runs)",
                    self.app.display(&pending.path)
                ),
            }
        }
    }

    /// Rebuilds (when asked) and reloads one component. Every failure is reported with
    /// the component's id, and leaves its running version serving.
    async fn apply(&mut self, id: &ComponentId, pending: Pending) {
        let what = self.app.display(&pending.path);
        if pending.change == Change::Rebuild {
            eprintln!("[{id}] {what} changed; rebuilding");
            let running = BuildWindow::open();
            let built = self.blocking(id, LiveApp::build).await;
            // Every event of the build's own writes has been seen once this returns.
            if !self.fs.sync(SYNC_LIMIT).await {
                tracing::warn!(
                    "the file watcher did not catch up within {SYNC_LIMIT:?}; a late event of \
                     the build's own writes may start another build"
                );
            }
            self.builds.insert(id.clone(), running.close());
            match built {
                Ok(true) => {}
                Ok(false) => {
                    eprintln!("[{id}] build failed; still serving the previous version");
                    return;
                }
                Err(e) => {
                    eprintln!("[{id}] cannot build: {e:#}; still serving the previous version");
                    return;
                }
            }
        } else {
            eprintln!("[{id}] {what} changed; reloading");
        }
        let started = Instant::now();
        match self.blocking(id, LiveApp::reload).await {
            Ok(()) => eprintln!("[{id}] reloaded in {:.1}s", started.elapsed().as_secs_f64()),
            Err(e) => eprintln!(
                "[{id}] cannot load the new version: {e:#}; still serving the previous version"
            ),
        }
    }

    /// Runs `step` for component `id` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        id: &ComponentId,
        step: fn(&LiveApp, &ComponentId) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let app = self.app.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || step(&app, &id))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the task stopped: {e}")))
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
