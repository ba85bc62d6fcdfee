//! One module per subcommand, each with an `execute()`.

pub mod build;
pub mod registry;
pub mod up;
pub mod watch;

use std::path::PathBuf;

use clap::Args;

/// `-f/--file`: the application manifest, shared by every command that reads one.
#[derive(Debug, Clone, Args)]
pub struct ManifestArg {
    /// The application manifest.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "spin.toml",
        env = "TESSERA_MANIFEST"
    )]
    pub path: PathBuf,
}
