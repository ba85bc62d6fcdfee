//! `fermyon:spin/key-value@2.0.0`: each store label is an embedded sqlite file holding one
//! `spin_key_value` table; a component opens only the labels its manifest grants.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{Linker, Resource};

use crate::bindings::key_value::{self, Error};
use crate::capabilities::sqlite::DbPool;
use crate::state::HostState;

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
    Ok(())
}

impl key_value::Host for HostState {}

impl HostState {
    async fn kv<R: Send + 'static>(
        &mut self,
        store: &Resource<KvStore>,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> wasmtime::Result<Result<R, Error>> {
        let pool = self.table.get(store)?.pool.clone();
        Ok(pool
            .run(f)
            .await
            .map_err(|e| Error::Other(format!("{e:#}"))))
    }
}

impl key_value::HostStore for HostState {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<KvStore>, Error>> {
        let Some(pool) = self.component.key_value.granted.get(&label).cloned() else {
            tracing::warn!(component = %self.component.spec.id, store = %label, "key-value open denied: label not in key_value_stores");
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
            let mut stmt = c.prepare_cached("SELECT value FROM spin_key_value WHERE key = ?1")?;
            let mut rows = stmt.query([key])?;
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
            c.prepare_cached("INSERT INTO spin_key_value (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
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
            c.prepare_cached("DELETE FROM spin_key_value WHERE key = ?1")?
                .execute([key])
                .map(drop)
        })
        .await
    }

    async fn exists(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.kv(&store, move |c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE key = ?1")?
                .exists([key])
        })
        .await
    }

    async fn get_keys(
        &mut self,
        store: Resource<KvStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        self.kv(&store, |c| {
            let mut stmt = c.prepare_cached("SELECT key FROM spin_key_value ORDER BY key")?;
            stmt.query_map([], |row| row.get(0))?.collect()
        })
        .await
    }

    async fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
