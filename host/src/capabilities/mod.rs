//! Host side of the Spin 3 guest world, one module per capability, all of the same shape:
//! shared per-component state built once at startup (`Component*`), per-instance state
//! (resources in the `HostState` table), the generated `Host` traits implemented on
//! `HostState`, the capability's own grant checks, and an `add_to_linker` function.
//!
//! Together they provide every interface `fermyon:spin/platform@2.0.0` and
//! `spin:up/platform@3.2.0` / `@3.4.0` import; [`unprovided_import`] explains any other
//! import at start-up instead of linking it as a trap.

pub mod key_value;
pub mod llm;
pub mod mqtt;
pub mod mysql;
pub mod outbound_http;
pub mod postgres;
pub mod redis;
pub mod sqlite;
pub mod variables;
pub mod wal_checkpoint;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::rdbms_types;
use crate::state::HostState;

/// Whether a resource in an instance's table is a connection the guest opened (a
/// database, Redis, MQTT): each holds a file or a socket until the guest drops it.
pub fn is_connection(resource: &(dyn std::any::Any + Send)) -> bool {
    resource.is::<sqlite::SqliteConnection>()
        || resource.is::<redis::RedisConnection>()
        || resource.is::<postgres::PgConnection>()
        || resource.is::<mysql::MysqlConnection>()
        || resource.is::<mqtt::MqttConnection>()
}

/// Adds WASI, `wasi:http` and every Spin interface to the linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    // All of WASI 0.2 and wasi:http 0.2; wasmtime links the newest 0.2.x, which also
    // satisfies imports of every older 0.2 version (semver-compatible linking).
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    variables::add_to_linker(linker)?;
    key_value::add_to_linker(linker)?;
    sqlite::add_to_linker(linker)?;
    redis::add_to_linker(linker)?;
    // Types only, shared by fermyon:spin/postgres and fermyon:spin/mysql.
    rdbms_types::add_to_linker::<_, Data>(linker, |s| s)?;
    postgres::add_to_linker(linker)?;
    mysql::add_to_linker(linker)?;
    mqtt::add_to_linker(linker)?;
    llm::add_to_linker(linker)?;
    Ok(())
}

/// The `HasData` marker shared by every capability: the host state itself.
type Data = HasSelf<HostState>;

impl rdbms_types::Host for HostState {}

/// Explains a failed link: which import Tessera does not provide, for which component, and
/// what to do. `error` is wasmtime's `instantiate_pre` error, which names the import.
pub fn unprovided_import(
    component: &str,
    source: &std::path::Path,
    error: &wasmtime::Error,
) -> anyhow::Error {
    let detail = format!("{error:#}");
    // wasmtime says: component imports instance `NAME`, but a matching implementation …
    let import = detail
        .split('`')
        .nth(1)
        .filter(|name| name.contains(':'))
        .unwrap_or("(see below)");
    let hint = if import.contains("@0.3") || is_spin4_interface(import) {
        "it belongs to Spin 4's WASI 0.3 (async) world, which `tessera up` does not run; build \
         the component against the Spin 3 world instead (Rust spin-sdk 5.2, Python spin-sdk 3.4.1 \
         with componentize-py 0.17.2, JavaScript componentize-js against spin-sdk's WIT)"
    } else {
        "Tessera implements the Spin 3 guest world (WASI 0.2, wasi:http 0.2, fermyon:spin@2.0.0, \
         spin:sqlite@3.0.0, spin:postgres@3.0.0/4.0.0, wasi:keyvalue@0.2.0-draft2, \
         wasi:config@0.2.0-draft-2024-09-27); rebuild the component without this import"
    };
    anyhow::anyhow!(
        "component `{component}` ({}) imports `{import}`, which Tessera does not provide: {hint}\n  wasmtime: {detail}",
        source.display()
    )
}

/// Spin 4's `spin:*@3.x` interfaces (async funcs, streams): not part of any Spin 3 world.
fn is_spin4_interface(import: &str) -> bool {
    [
        "spin:key-value/",
        "spin:variables/",
        "spin:redis/",
        "spin:mqtt/",
        "spin:mysql/",
    ]
    .iter()
    .any(|p| import.starts_with(p))
        || import.starts_with("spin:postgres/postgres@4.1")
        || import.starts_with("spin:postgres/postgres@4.2")
        || import.starts_with("spin:sqlite/sqlite@3.1")
}
