//! Key-value: `fermyon:spin/key-value@2.0.0` here and `wasi:keyvalue@0.2.0-draft2` (store,
//! atomics, batch) in [`wasi`], both on the same stores. Each store label is an embedded
//! sqlite file holding one `spin_key_value` table; a component opens only the labels its
//! manifest grants (`key_value_stores`).

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{Linker, Resource};

use crate::bindings::key_value::{self, Error};
use crate::capabilities::sqlite::DbPool;
use crate::state::HostState;

pub mod wasi;

// The statements both interfaces share.
const GET: &str = "SELECT value FROM spin_key_value WHERE key = ?1";
const SET: &str = "INSERT INTO spin_key_value (key, value) VALUES (?1, ?2) \
     ON CONFLICT(key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM spin_key_value WHERE key = ?1";
const EXISTS: &str = "SELECT 1 FROM spin_key_value WHERE key = ?1";
const KEYS: &str = "SELECT key FROM spin_key_value ORDER BY key";

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS spin_key_value (key TEXT PRIMARY KEY, value BLOB NOT NULL)";

/// The stores one component may open, by label.
#[derive(Default)]
pub struct ComponentStores {
    pub granted: HashMap<String, Arc<DbPool>>,
}

/// The resource behind a guest's `store` handle.
pub struct KvStore {
    pool: Arc<DbPool>,
}

/// Creates the table once at startup, so guests' operations are single statements.
pub async fn prepare(pool: &Arc<DbPool>) -> anyhow::Result<()> {
    pool.run(|c| c.execute_batch(CREATE_TABLE)).await
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    key_value::add_to_linker::<_, super::Data>(linker, |s| s)?;
    wasi::add_to_linker(linker)?;
    Ok(())
}

impl key_value::Host for HostState {}

impl HostState {
    /// The pool of a granted store, or `None` when the manifest does not grant `label`.
    fn kv_grant(&self, label: &str) -> Option<Arc<DbPool>> {
        let pool = self.component.key_value.granted.get(label).cloned();
        if pool.is_none() {
            tracing::warn!(component = %self.component.spec.id, store = %label, "key-value open denied: label not in key_value_stores");
        }
        pool
    }

    /// Runs `f` on the store behind `store`; a database failure is the guest's error.
    async fn kv_run<R: Send + 'static>(
        &mut self,
        store: &Resource<KvStore>,
        f: impl Fn(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> wasmtime::Result<Result<R, String>> {
        let pool = self.table.get(store)?.pool.clone();
        Ok(pool.run(f).await.map_err(|e| format!("{e:#}")))
    }

    async fn kv<R: Send + 'static>(
        &mut self,
        store: &Resource<KvStore>,
        f: impl Fn(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> wasmtime::Result<Result<R, Error>> {
        Ok(self.kv_run(store, f).await?.map_err(Error::Other))
    }
}

impl key_value::HostStore for HostState {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<KvStore>, Error>> {
        let Some(pool) = self.kv_grant(&label) else {
            return Ok(Err(Error::AccessDenied));
        };
        Ok(Ok(self.table.push(KvStore { pool })?))
    }

    async fn get(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.kv(&store, move |c| {
            let mut stmt = c.prepare_cached(GET)?;
            let mut rows = stmt.query([&key])?;
            rows.next()?.map(|row| row.get(0)).transpose()
        })
        .await
    }

    async fn set(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.kv(&store, move |c| {
            c.prepare_cached(SET)?
                .execute(rusqlite::params![key, value])
                .map(drop)
        })
        .await
    }

    async fn delete(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.kv(&store, move |c| {
            c.prepare_cached(DELETE)?.execute([&key]).map(drop)
        })
        .await
    }

    async fn exists(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.kv(&store, move |c| c.prepare_cached(EXISTS)?.exists([&key]))
            .await
    }

    async fn get_keys(
        &mut self,
        store: Resource<KvStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        self.kv(&store, |c| {
            let mut stmt = c.prepare_cached(KEYS)?;
            stmt.query_map([], |row| row.get(0))?.collect()
        })
        .await
    }

    async fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
