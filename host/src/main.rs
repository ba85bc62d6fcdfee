//! `tessera`: a Spin-compatible runtime for WebAssembly component apps.

use std::process::ExitCode;

use clap::Parser;

// Every request allocates and frees many small objects across two worker threads (the
// store, the WASI and HTTP contexts, hyper's buffers, each sqlite value); glibc's malloc was
// ~6 % of a hello's samples. mimalloc as tuned below: hello +4.5 % at 32 connections; with
// its default options the reads gained 9 to 19 % (BENCHMARKS.md, session 11).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's defaults keep freed memory for seconds and commit whole arenas up front:
/// the app's RSS after seeding went from 97 to 134 MiB. Committing on demand and
/// returning freed pages at once keeps glibc's footprint (99 MiB) and most of the speed.
/// The option numbers are positions in mimalloc v3's `mi_option_e` (mimalloc.h), which
/// the `-sys` crate does not name for v3.
///
/// On Linux it runs as a static initialiser, before Rust's runtime (and so the first
/// allocation, which reserves mimalloc's first arena) starts.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

extern "C" fn tune_allocator() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain setters of mimalloc's global options; any thread, any time.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

fn main() -> ExitCode {
    #[cfg(not(target_os = "linux"))]
    tune_allocator();
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
