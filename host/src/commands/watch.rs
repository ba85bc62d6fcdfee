//! `tessera watch`: `tessera up` that rebuilds and reloads each component as its files
//! change, like `spin watch`, without restarting the host: requests and Redis messages
//! in flight finish on the version they started on, connections and subscriptions stay
//! open, and a version that fails to build, compile or link never replaces the running
//! one. What is watched, and what a change means, is in `crate::watch`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::commands::up::{UpCommand, block_on, parse_duration, shutdown_signal};
use crate::manifest;
use crate::watch::{LiveApp, Mode, Targets, Watcher};

/// Quiet period after the last change before a rebuild or reload starts.
pub const DEFAULT_DEBOUNCE: &str = "300ms";

#[derive(Debug, Args)]
pub struct WatchCommand {
    #[command(flatten)]
    pub up: UpCommand,
    /// Do not build: watch only each component's `.wasm` and reload it when it changes
    /// (for builds run by another tool).
    #[arg(long, conflicts_with = "build", env = "TESSERA_SKIP_BUILD")]
    pub skip_build: bool,
    /// How long changed files must stay quiet before a rebuild or reload starts (e.g.
    /// 300ms, 1s): one build per burst of saves.
    #[arg(long, default_value = DEFAULT_DEBOUNCE, value_parser = parse_duration, env = "TESSERA_DEBOUNCE")]
    pub debounce: Duration,
}

impl WatchCommand {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        if let Some(reference) = &self.up.from {
            bail!(
                "`tessera watch` watches an app's source files, which {reference} (from a registry) does not have; run it with `tessera up --from`"
            );
        }
        let mode = if self.skip_build {
            Mode::SkipBuild
        } else {
            Mode::Build
        };
        // Before the first build, so a bad glob is reported at once.
        let loaded = manifest::load(&self.up.manifest.path)?;
        let mut targets = Targets::new(&loaded, &self.up.component_ids, mode)?;
        if mode == Mode::Build {
            let code = self.up.build_command().execute()?;
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
        }
        block_on(async {
            let prepared = self.up.prepare().await?;
            let host = self.up.start(&prepared).await?;
            targets.ignore(&prepared.state_dir);
            let app = LiveApp::new(prepared, host.runtime.clone())?;
            let watching = tokio::spawn(Watcher::start(targets, self.debounce, app)?.run());
            host.serve(shutdown_signal()).await;
            watching.abort();
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
