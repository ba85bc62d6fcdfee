//! `tessera`: a Spin-compatible runtime for WebAssembly component apps.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // wasmtime builds an error value each time a store is dropped; with RUST_BACKTRACE=1
    // inherited from a developer's shell that captured a backtrace per request (measured
    // -7% requests/s). Errors are reported as cause chains, so library backtraces are off
    // unless asked for explicitly; panics still honour RUST_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first statement of main, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let cli = tessera::cli::Cli::parse();
    let log_guard = tessera::telemetry::init();
    // Before the async runtime starts, and flushed after it stopped: the OTLP exporter's
    // blocking client must not be created or dropped on it.
    if let Err(e) = tessera::traces::init() {
        eprintln!("Error: {e:#}");
        return ExitCode::FAILURE;
    }
    let code = match cli.command.execute() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    };
    tessera::traces::shutdown();
    drop(log_guard);
    code
}
