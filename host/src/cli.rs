//! Command-line interface. Each subcommand lives in `commands/` with an `execute()`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{
    build::BuildCommand, registry::RegistryCommand, up::UpCommand, watch::WatchCommand,
};

/// Run Spin applications made of WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the application: HTTP and Redis triggers, one fresh instance per event.
    Up(UpCommand),
    /// Serve the application like `up`, and rebuild and reload each component when its
    /// files change (`[component.x.build] watch`, its `.wasm`, its `files`), without a
    /// restart: requests in flight finish on the version they started on.
    Watch(WatchCommand),
    /// Run every component's `[component.x.build]` command.
    Build(BuildCommand),
    /// Push an app to, or pull it from, an OCI registry in Spin's artifact format.
    Registry(RegistryCommand),
}

impl Command {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Up(cmd) => cmd.execute(),
            Command::Watch(cmd) => cmd.execute(),
            Command::Build(cmd) => cmd.execute(),
            Command::Registry(cmd) => cmd.execute(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
