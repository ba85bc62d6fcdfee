//! `fermyon:spin/redis@2.0.0`: outbound Redis, allowed only to hosts in the component's
//! `allowed_outbound_hosts`.
//!
//! Placeholder until outbound Redis lands: every call returns a guest-visible error.

use wasmtime::component::{Linker, Resource};

use crate::bindings::redis::{self, Error, RedisParameter, RedisResult};
use crate::state::HostState;

/// Shared Redis clients (one per address), reused across instances.
#[derive(Default)]
pub struct RedisClients;

/// The resource behind a guest's Redis `connection` handle.
pub struct RedisConnection;

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    redis::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

fn unavailable<T>() -> wasmtime::Result<Result<T, Error>> {
    Ok(Err(Error::Other(
        "outbound Redis is not implemented yet".into(),
    )))
}

impl redis::Host for HostState {}

impl redis::HostConnection for HostState {
    async fn open(
        &mut self,
        _address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, Error>> {
        unavailable()
    }
    async fn publish(
        &mut self,
        _c: Resource<RedisConnection>,
        _channel: String,
        _payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        unavailable()
    }
    async fn get(
        &mut self,
        _c: Resource<RedisConnection>,
        _key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        unavailable()
    }
    async fn set(
        &mut self,
        _c: Resource<RedisConnection>,
        _key: String,
        _value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        unavailable()
    }
    async fn incr(
        &mut self,
        _c: Resource<RedisConnection>,
        _key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        unavailable()
    }
    async fn del(
        &mut self,
        _c: Resource<RedisConnection>,
        _keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        unavailable()
    }
    async fn sadd(
        &mut self,
        _c: Resource<RedisConnection>,
        _key: String,
        _values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        unavailable()
    }
    async fn smembers(
        &mut self,
        _c: Resource<RedisConnection>,
        _key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        unavailable()
    }
    async fn srem(
        &mut self,
        _c: Resource<RedisConnection>,
        _key: String,
        _values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        unavailable()
    }
    async fn execute(
        &mut self,
        _c: Resource<RedisConnection>,
        _command: String,
        _arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        unavailable()
    }
    async fn drop(&mut self, c: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}
