//! Host side of the Spin interfaces, one module per capability, all of the same shape:
//! shared per-component state built once at startup (`Component*`), per-instance state
//! inside `HostState`, the generated `Host` traits implemented on `HostState`, and an
//! `add_to_linker` function.

pub mod key_value;
pub mod outbound_http;
pub mod redis;
pub mod sqlite;
pub mod variables;

use wasmtime::component::{HasSelf, Linker};

use crate::state::HostState;

/// Adds WASI, `wasi:http` and every Spin interface to the linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    variables::add_to_linker(linker)?;
    key_value::add_to_linker(linker)?;
    sqlite::add_to_linker(linker)?;
    redis::add_to_linker(linker)?;
    Ok(())
}

/// The `HasData` marker shared by every capability: the host state itself.
type Data = HasSelf<HostState>;
