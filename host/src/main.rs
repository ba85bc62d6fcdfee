//! `tessera`: a Spin-compatible runtime for WebAssembly component apps.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tessera::cli::Cli::parse();
    tessera::telemetry::init();
    match cli.command.execute() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
