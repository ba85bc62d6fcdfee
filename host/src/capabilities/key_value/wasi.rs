//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) on the same stores as
//! `fermyon:spin/key-value`: a key written through one is read through the other.
//!
//! As in Spin, a counter is stored as 8 little-endian bytes, `list-keys` returns every key
//! in one page, and compare-and-swap compares the whole value inside a transaction.

use std::sync::Arc;

use rusqlite::OptionalExtension;
use wasmtime::component::{Linker, Resource};

use super::{DELETE, EXISTS, GET, KEYS, KvStore, SET};
use crate::bindings::{wasi_kv_atomics as atomics, wasi_kv_batch as batch, wasi_kv_store as store};
use crate::capabilities::sqlite::DbPool;
use crate::state::HostState;

use store::{Error, KeyResponse};

/// The resource behind a guest's `cas` handle: the value `key` held when it was made.
pub struct Cas {
    pool: Arc<DbPool>,
    key: String,
    current: Option<Vec<u8>>,
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    store::add_to_linker::<_, super::super::Data>(linker, |s| s)?;
    atomics::add_to_linker::<_, super::super::Data>(linker, |s| s)?;
    batch::add_to_linker::<_, super::super::Data>(linker, |s| s)?;
    Ok(())
}

fn get(c: &rusqlite::Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    c.prepare_cached(GET)?
        .query_row([key], |r| r.get(0))
        .optional()
}

fn set(c: &rusqlite::Connection, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    c.prepare_cached(SET)?
        .execute(rusqlite::params![key, value])
        .map(drop)
}

impl HostState {
    async fn wasi_kv<R: Send + 'static>(
        &mut self,
        bucket: &Resource<KvStore>,
        f: impl Fn(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> wasmtime::Result<Result<R, Error>> {
        Ok(self.kv_run(bucket, f).await?.map_err(Error::Other))
    }
}

impl store::Host for HostState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<KvStore>, Error>> {
        let Some(pool) = self.kv_grant(&identifier) else {
            return Ok(Err(Error::AccessDenied));
        };
        Ok(Ok(self.table.push(KvStore { pool })?))
    }
}

impl store::HostBucket for HostState {
    async fn get(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.wasi_kv(&bucket, move |c| get(c, &key)).await
    }

    async fn set(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.wasi_kv(&bucket, move |c| set(c, &key, &value)).await
    }

    async fn delete(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.wasi_kv(&bucket, move |c| {
            c.prepare_cached(DELETE)?.execute([&key]).map(drop)
        })
        .await
    }

    async fn exists(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.wasi_kv(&bucket, move |c| c.prepare_cached(EXISTS)?.exists([&key]))
            .await
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<KvStore>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        if cursor.is_some() {
            // Every key comes in the first page, so no cursor is ever handed out.
            return Ok(Err(Error::Other(
                "list-keys: cursors are not supported".into(),
            )));
        }
        let keys = self
            .wasi_kv(&bucket, |c| {
                let mut stmt = c.prepare_cached(KEYS)?;
                stmt.query_map([], |row| row.get(0))?.collect()
            })
            .await?;
        Ok(keys.map(|keys| KeyResponse { keys, cursor: None }))
    }

    async fn drop(&mut self, bucket: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let result = self
            .kv_run(&bucket, move |c| {
                let tx = c.unchecked_transaction()?;
                let current = get(&tx, &key)?;
                let Some(old) =
                    current.map_or(Some(0), |v| v.try_into().ok().map(i64::from_le_bytes))
                else {
                    return Ok(Err(format!(
                        "the value of `{key}` is not an 8-byte integer"
                    )));
                };
                let new = old.wrapping_add(delta);
                set(&tx, &key, &new.to_le_bytes())?;
                tx.commit()?;
                Ok(Ok(new))
            })
            .await?;
        Ok(result.and_then(|r| r).map_err(Error::Other))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let this = self.table.get(&cas)?;
        let (pool, key, expected) = (this.pool.clone(), this.key.clone(), this.current.clone());
        let swapped = pool
            .run(move |c| {
                let tx = c.unchecked_transaction()?;
                if get(&tx, &key)? != expected {
                    return Ok(false);
                }
                set(&tx, &key, &value)?;
                tx.commit()?;
                Ok(true)
            })
            .await;
        match swapped {
            Ok(true) => {
                self.table.delete(cas)?;
                Ok(Ok(()))
            }
            // The guest gets its handle back to read the new value and retry.
            Ok(false) => Ok(Err(atomics::CasError::CasFailed(cas))),
            Err(e) => {
                self.table.delete(cas)?;
                Ok(Err(atomics::CasError::StoreError(Error::Other(format!(
                    "{e:#}"
                )))))
            }
        }
    }
}

impl atomics::HostCas for HostState {
    async fn new(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, Error>> {
        let pool = self.table.get(&bucket)?.pool.clone();
        let read_key = key.clone();
        let current = match pool.run(move |c| get(c, &read_key)).await {
            Ok(current) => current,
            Err(e) => return Ok(Err(Error::Other(format!("{e:#}")))),
        };
        Ok(Ok(self.table.push(Cas { pool, key, current })?))
    }

    async fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let this = self.table.get(&cas)?;
        let (pool, key) = (this.pool.clone(), this.key.clone());
        let current = pool.run(move |c| get(c, &key)).await;
        Ok(current.map_err(|e| Error::Other(format!("{e:#}"))))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<KvStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        self.wasi_kv(&bucket, move |c| {
            keys.iter()
                .map(|k| get(c, k).map(|v| (k.clone(), v)))
                .collect()
        })
        .await
    }

    async fn set_many(
        &mut self,
        bucket: Resource<KvStore>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.wasi_kv(&bucket, move |c| {
            let tx = c.unchecked_transaction()?;
            for (k, v) in &key_values {
                set(&tx, k, v)?;
            }
            tx.commit()
        })
        .await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<KvStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.wasi_kv(&bucket, move |c| {
            let tx = c.unchecked_transaction()?;
            for k in &keys {
                tx.prepare_cached(DELETE)?.execute([k])?;
            }
            tx.commit()
        })
        .await
    }
}
