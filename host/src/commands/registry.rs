//! `tessera registry push|pull`: Spin's OCI artifact, to and from a registry.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::commands::ManifestArg;
use crate::locked;
use crate::manifest;
use crate::registry::{self, cache::Cache};

#[derive(Debug, Args)]
pub struct RegistryCommand {
    #[command(subcommand)]
    pub command: RegistrySubcommand,
}

#[derive(Debug, Subcommand)]
pub enum RegistrySubcommand {
    /// Package the app as Spin's OCI artifact and push it (as `spin registry push`).
    Push(PushCommand),
    /// Fetch an app into the local cache, verifying every blob (as `spin registry pull`).
    Pull(PullCommand),
}

/// Registry connection flags shared by `push`, `pull` and `up --from`.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry instead of HTTPS (for a local registry).
    #[arg(long, short = 'k', env = "TESSERA_REGISTRY_INSECURE")]
    pub insecure: bool,
    /// Where pulled blobs are cached [default: $XDG_CACHE_HOME/tessera/registry].
    #[arg(long, env = "TESSERA_REGISTRY_CACHE")]
    pub cache_dir: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn cache(&self) -> Cache {
        Cache::new(self.cache_dir.clone().unwrap_or_else(Cache::default_root))
    }
}

#[derive(Debug, Args)]
pub struct PushCommand {
    /// Where to push, e.g. localhost:5000/tessera:v1 or ghcr.io/org/app:1.0.
    pub reference: String,
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PullCommand {
    /// What to pull, e.g. localhost:5000/tessera:v1.
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl RegistryCommand {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self.command {
            RegistrySubcommand::Push(cmd) => cmd.execute(),
            RegistrySubcommand::Pull(cmd) => cmd.execute(),
        }
    }
}

impl PushCommand {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        // Validate the reference before doing any work.
        registry::parse_reference(&self.reference)?;
        let loaded = manifest::load(&self.manifest.path)?;
        let staging = tempfile::tempdir().context("cannot create a staging directory")?;
        let locked = locked::from_manifest(&loaded, staging.path())?;
        let artifact = registry::push::assemble(&locked)
            .with_context(|| format!("{}: cannot package the app", loaded.path.display()))?;
        let digest = registry::block_on(registry::push::push(
            artifact,
            &self.reference,
            self.registry.insecure,
        ))?;
        println!("Pushed with digest {digest}");
        Ok(ExitCode::SUCCESS)
    }
}

impl PullCommand {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let cache = self.registry.cache();
        let pulled = registry::block_on(registry::pull::pull(
            &self.reference,
            self.registry.insecure,
            &cache,
        ))?;
        println!(
            "Pulled {}@{} into {}",
            pulled.reference,
            pulled.digest,
            cache.root().display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
