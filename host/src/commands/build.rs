//! `tessera build`: run each component's build command, like `spin build`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::commands::ManifestArg;
use crate::manifest::{self, BuildConfig, ComponentId};

#[derive(Debug, Args)]
pub struct BuildCommand {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Build only these components (by id); all by default.
    #[arg(short = 'c', long = "component-id")]
    pub components: Vec<String>,
}

impl BuildCommand {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let loaded = manifest::load(&self.manifest.path)?;
        let app_dir = loaded.path.parent().map(PathBuf::from).unwrap_or_default();
        for wanted in &self.components {
            if !loaded
                .manifest
                .component
                .keys()
                .any(|id| id.as_str() == wanted)
            {
                anyhow::bail!("{}: no component `{wanted}`", loaded.path.display());
            }
        }
        let all_started = Instant::now();
        let mut built = 0;
        for (id, component) in &loaded.manifest.component {
            if !self.components.is_empty() && !self.components.iter().any(|c| c == id.as_str()) {
                continue;
            }
            let Some(build) = &component.build else {
                eprintln!("[{id}] no build command; skipping");
                continue;
            };
            let status = build_component(&app_dir, id, build)?;
            if !status.success() {
                let code = status.code().unwrap_or(1).clamp(1, 255) as u8;
                return Ok(ExitCode::from(code));
            }
            built += 1;
        }
        eprintln!(
            "Finished building {built} component{} in {}",
            if built == 1 { "" } else { "s" },
            seconds(all_started.elapsed())
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The directory a component's build commands run in, and its `watch` globs are
/// relative to: `workdir` under the app directory, or the app directory itself.
pub fn workdir(app_dir: &Path, build: &BuildConfig) -> PathBuf {
    match &build.workdir {
        Some(dir) => app_dir.join(dir),
        None => app_dir.to_owned(),
    }
}

/// Runs one component's build commands in order, their output prefixed with its id,
/// stopping at the first that fails. Returns the failing command's status (or the last
/// one's); an error means a command could not be started at all.
pub fn build_component(
    app_dir: &Path,
    id: &ComponentId,
    build: &BuildConfig,
) -> anyhow::Result<ExitStatus> {
    let workdir = workdir(app_dir, build);
    let started = Instant::now();
    let mut status = ExitStatus::default();
    for command in build.command.as_slice() {
        eprintln!("[{id}] $ {command}");
        status = run_prefixed(id.as_str(), command, &workdir, &build.environment).with_context(
            || {
                format!(
                    "component `{id}`: cannot run build command {command:?} in {}",
                    workdir.display()
                )
            },
        )?;
        if !status.success() {
            eprintln!("[{id}] build command failed ({status})");
            return Ok(status);
        }
    }
    eprintln!("[{id}] built in {}", seconds(started.elapsed()));
    Ok(status)
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}

/// Runs `command` with `sh -c`, prefixing each output line with the component id.
fn run_prefixed(
    id: &str,
    command: &str,
    workdir: &Path,
    env: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<std::process::ExitStatus> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(workdir)
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let forward = |stream: Box<dyn std::io::Read + Send>, prefix: String| {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("{prefix} {line}");
            }
        })
    };
    let mut threads = Vec::new();
    if let Some(out) = child.stdout.take() {
        threads.push(forward(Box::new(out), format!("[{id}]")));
    }
    if let Some(err) = child.stderr.take() {
        threads.push(forward(Box::new(err), format!("[{id}]")));
    }
    let status = child.wait()?;
    for t in threads {
        let _ = t.join();
    }
    Ok(status)
}
