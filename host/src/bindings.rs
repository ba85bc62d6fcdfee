//! Host bindings for the Spin interfaces Tessera implements, generated from the WIT that
//! ships with spin-sdk 5.2.0 (copied under `host/wit/`).
//!
//! Every import is async (sqlite and Redis work happens off the wasm thread) and
//! trappable: guest-visible failures are WIT `error` values, host faults trap.

wasmtime::component::bindgen!({
    path: "wit",
    world: "tessera:host/spin-imports",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::capabilities::key_value::KvStore,
        "fermyon:spin/sqlite.connection": crate::capabilities::sqlite::SqliteConnection,
        "spin:sqlite/sqlite.connection": crate::capabilities::sqlite::SqliteConnection,
        "fermyon:spin/redis.connection": crate::capabilities::redis::RedisConnection,
    },
});

pub use fermyon::spin2_0_0::{key_value, redis, sqlite as sqlite_v2, variables};
pub use spin::sqlite::sqlite as sqlite_v3;

/// The Redis trigger's entry point: `fermyon:spin/inbound-redis#handle-message`.
pub mod redis_handler {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "tessera:host/redis-handler",
        exports: { default: async },
    });
}
