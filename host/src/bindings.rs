//! Host bindings for the Spin 3 guest world Tessera implements, generated from the WIT that
//! ships with spin-sdk 5.2.0 (copied under `host/wit/`).
//!
//! Every import is async (database, network and sqlite work happens off the wasm thread)
//! and trappable: guest-visible failures are WIT `error` values, host faults trap.

wasmtime::component::bindgen!({
    path: "wit",
    world: "tessera:host/spin-imports",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::capabilities::key_value::KvStore,
        "wasi:keyvalue/store.bucket": crate::capabilities::key_value::KvStore,
        "wasi:keyvalue/atomics.cas": crate::capabilities::key_value::wasi::Cas,
        "fermyon:spin/sqlite.connection": crate::capabilities::sqlite::SqliteConnection,
        "spin:sqlite/sqlite.connection": crate::capabilities::sqlite::SqliteConnection,
        "fermyon:spin/redis.connection": crate::capabilities::redis::RedisConnection,
        "fermyon:spin/postgres.connection": crate::capabilities::postgres::PgConnection,
        "spin:postgres/postgres.connection": crate::capabilities::postgres::PgConnection,
        "fermyon:spin/mysql.connection": crate::capabilities::mysql::MysqlConnection,
        "fermyon:spin/mqtt.connection": crate::capabilities::mqtt::MqttConnection,
    },
});

pub use fermyon::spin2_0_0::{
    key_value, llm, mqtt, mysql, postgres as postgres_v2, rdbms_types, redis, sqlite as sqlite_v2,
    variables,
};
pub use spin::postgres3_0_0::postgres as postgres_v3;
pub use spin::postgres4_0_0::postgres as postgres_v4;
pub use spin::sqlite::sqlite as sqlite_v3;
pub use wasi::config::store as wasi_config;
pub use wasi::keyvalue::{
    atomics as wasi_kv_atomics, batch as wasi_kv_batch, store as wasi_kv_store,
};

/// The Redis trigger's entry point: `fermyon:spin/inbound-redis#handle-message`.
pub mod redis_handler {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "tessera:host/redis-handler",
        exports: { default: async },
    });
}
