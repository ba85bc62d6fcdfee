//! The running app's side of `tessera watch`: build one component, and load its new
//! version into the running host, through the same stages `tessera up` used at start
//! (`locked` → `app` → `runtime`), for that component alone.
//!
//! Both steps block (a build runs for seconds, compiling a component can too), so the
//! watcher runs them on tokio's blocking pool while the host keeps serving. Nothing is
//! swapped until the new version has compiled and linked: any error leaves the running
//! version in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use crate::app;
use crate::commands::build;
use crate::commands::up::Prepared;
use crate::locked::{self, StagedFiles};
use crate::manifest::{ComponentId, LoadedManifest};
use crate::runtime::Runtime;
use crate::runtime_config::RuntimeConfig;
use crate::variables::Resolved;

/// Prefix of the directories reloaded versions stage their `files` in, under
/// `<state dir>/files/`: one per reload, never the one a running version mounts.
const STAGING_PREFIX: &str = ".watch-";

/// What it takes to build and reload the components of a running app.
pub struct LiveApp {
    manifest: LoadedManifest,
    app_dir: PathBuf,
    origin: String,
    vars: Resolved,
    runtime_config: RuntimeConfig,
    files_dir: PathBuf,
    runtime: Arc<Runtime>,
    /// Numbers the staging directories.
    reloads: AtomicU64,
}

impl LiveApp {
    /// The app `prepared` describes, running on `runtime`. Staging directories a
    /// previous `tessera watch` left behind (killed before it could remove them) go.
    pub fn new(prepared: Prepared, runtime: Arc<Runtime>) -> anyhow::Result<LiveApp> {
        let manifest = prepared
            .manifest
            .context("`tessera watch` needs the app's manifest")?;
        let app_dir = manifest
            .path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        let files_dir = prepared.state_dir.join("files");
        if let Ok(entries) = std::fs::read_dir(&files_dir) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(STAGING_PREFIX)
                {
                    drop(StagedFiles::new(entry.path()));
                }
            }
        }
        Ok(LiveApp {
            manifest,
            app_dir,
            origin: prepared.origin,
            vars: prepared.vars,
            runtime_config: prepared.app.runtime_config,
            files_dir,
            runtime,
            reloads: AtomicU64::new(0),
        })
    }

    /// `path` relative to the app directory, for messages.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.app_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Runs the component's build command, as `tessera build` does; whether it
    /// succeeded (a component without one has nothing to build).
    pub fn build(&self, id: &ComponentId) -> anyhow::Result<bool> {
        let Some(build) = self
            .manifest
            .manifest
            .component
            .get(id)
            .and_then(|c| c.build.as_ref())
        else {
            return Ok(true);
        };
        Ok(build::build_component(&self.app_dir, id, build)?.success())
    }

    /// Loads the component's `.wasm` and files as they are now and, once that version
    /// has compiled and linked, makes it the one new requests and messages get.
    pub fn reload(&self, id: &ComponentId) -> anyhow::Result<()> {
        let n = self.reloads.fetch_add(1, Ordering::Relaxed);
        let staging = self.files_dir.join(format!("{STAGING_PREFIX}{n}"));
        // Owned from the start, so a failed reload removes what it staged.
        let staged = StagedFiles::new(staging.clone());
        let locked = locked::component_from_manifest(&self.manifest, id, &staging)?;
        let spec = app::resolve_component(&locked, &self.origin, &self.vars, &self.runtime_config)?;
        let loaded = self.runtime.load(spec, Some(staged))?;
        self.runtime.install(loaded)
    }
}
