//! `fermyon:spin/redis@2.0.0`: outbound Redis, allowed only to addresses in the
//! component's `allowed_outbound_hosts`.
//!
//! One multiplexed, self-reconnecting connection per address is shared by every
//! instance of every component: opening a TCP connection per request would cost more
//! than the commands themselves. While Redis is down commands fail fast with an error
//! the guest sees (its outbox keeps the event), instead of hanging the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use wasmtime::component::{Linker, Resource};

use crate::bindings::redis::{self, Error, RedisParameter, RedisResult};
use crate::state::HostState;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed first connection, guests are told at once for this long instead of
/// each waiting out its own connection timeout while Redis is away.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

/// Shared Redis clients, one per address.
#[derive(Default)]
pub struct RedisClients {
    /// Held only to find an address's slot, never across a connection attempt: a Redis
    /// that hangs must not queue guests of other addresses, or of the same one, behind it.
    by_address: Mutex<HashMap<String, Arc<ClientSlot>>>,
}

/// One address's connection, made once by whichever guest asks first.
#[derive(Default)]
struct ClientSlot {
    conn: OnceLock<ConnectionManager>,
    /// Serialises connection attempts to this address (only this one).
    attempt: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<Instant>>,
}

impl ClientSlot {
    fn failed_recently(&self) -> bool {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE)
    }
}

impl RedisClients {
    async fn connect(&self, address: &str) -> Result<ConnectionManager, Error> {
        let slot = {
            let mut slots = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(address.to_owned()).or_default().clone()
        };
        if let Some(conn) = slot.conn.get() {
            return Ok(conn.clone());
        }
        // Guests arriving while an attempt runs wait for its outcome, and share it.
        let _attempt = slot.attempt.lock().await;
        if let Some(conn) = slot.conn.get() {
            return Ok(conn.clone());
        }
        if slot.failed_recently() {
            return Err(Error::Other(
                "cannot connect to Redis (it did not answer moments ago)".into(),
            ));
        }
        let client = ::redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        match client.get_connection_manager_with_config(config).await {
            Ok(conn) => Ok(slot.conn.get_or_init(|| conn).clone()),
            Err(e) => {
                *slot.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                Err(Error::Other(format!("cannot connect to Redis: {e}")))
            }
        }
    }
}

/// The resource behind a guest's Redis `connection` handle.
pub struct RedisConnection {
    conn: ConnectionManager,
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    redis::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

impl HostState {
    /// Runs one command on the connection behind `handle`.
    async fn redis_query<T: ::redis::FromRedisValue>(
        &mut self,
        handle: &Resource<RedisConnection>,
        cmd: ::redis::Cmd,
    ) -> wasmtime::Result<Result<T, Error>> {
        let mut conn = self.table.get(handle)?.conn.clone();
        let mut span = crate::traces::host_call(self.trace.as_ref(), || {
            // The command name only: arguments carry keys and payloads.
            let command = match cmd.args_iter().next() {
                Some(::redis::Arg::Simple(bytes)) => String::from_utf8_lossy(bytes).to_uppercase(),
                _ => "redis".to_owned(),
            };
            let name = format!("redis {command}");
            let attributes = vec![
                opentelemetry::KeyValue::new("db.system.name", "redis"),
                opentelemetry::KeyValue::new("db.operation.name", command),
            ];
            (name, attributes)
        });
        let result = match cmd.query_async::<T>(&mut conn).await {
            // The shared connection learns that Redis went away (a restart) only when a
            // command fails on it, and reconnects then. Without a second try, that first
            // command after every restart failed, in every component at once (the chaos
            // run: both expiration replicas lost the same order:created). A dropped
            // connection almost always means the command never reached Redis.
            Err(e) if e.is_connection_dropped() => cmd.query_async::<T>(&mut conn).await,
            other => other,
        };
        if let Err(e) = &result {
            span.fail(e);
        }
        Ok(result.map_err(to_guest_error))
    }
}

fn to_guest_error(e: ::redis::RedisError) -> Error {
    if e.kind() == ::redis::ErrorKind::UnexpectedReturnType {
        Error::TypeError
    } else {
        Error::Other(e.to_string())
    }
}

impl redis::Host for HostState {}

impl redis::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, Error>> {
        if !self.component.spec.allowed_hosts.allows_url(&address) {
            tracing::warn!(component = %self.component.spec.id, %address, "redis open denied: address not in allowed_outbound_hosts");
            return Ok(Err(Error::InvalidAddress));
        }
        let conn = match self.component.redis.connect(&address).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(self.table.push(RedisConnection { conn })?))
    }

    async fn publish(
        &mut self,
        c: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut cmd = ::redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        Ok(self.redis_query::<i64>(&c, cmd).await?.map(drop))
    }

    async fn get(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(key);
        self.redis_query(&c, cmd).await
    }

    async fn set(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(key).arg(value);
        Ok(self.redis_query::<::redis::Value>(&c, cmd).await?.map(drop))
    }

    async fn incr(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let mut cmd = ::redis::cmd("INCR");
        cmd.arg(key);
        self.redis_query(&c, cmd).await
    }

    async fn del(
        &mut self,
        c: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(keys);
        self.redis_query(&c, cmd).await
    }

    async fn sadd(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = ::redis::cmd("SADD");
        cmd.arg(key).arg(values);
        self.redis_query(&c, cmd).await
    }

    async fn smembers(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let mut cmd = ::redis::cmd("SMEMBERS");
        cmd.arg(key);
        self.redis_query(&c, cmd).await
    }

    async fn srem(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = ::redis::cmd("SREM");
        cmd.arg(key).arg(values);
        self.redis_query(&c, cmd).await
    }

    async fn execute(
        &mut self,
        c: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let mut cmd = ::redis::cmd(&command);
        for arg in arguments {
            match arg {
                RedisParameter::Int64(i) => cmd.arg(i),
                RedisParameter::Binary(b) => cmd.arg(b),
            };
        }
        Ok(self
            .redis_query::<::redis::Value>(&c, cmd)
            .await?
            .map(flatten_results))
    }

    async fn drop(&mut self, c: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

/// `execute` returns a flat list, as Spin does: arrays are flattened one level.
fn flatten_results(value: ::redis::Value) -> Vec<RedisResult> {
    use ::redis::Value;
    fn one(value: Value) -> RedisResult {
        match value {
            Value::Nil => RedisResult::Nil,
            Value::Int(i) => RedisResult::Int64(i),
            Value::BulkString(b) => RedisResult::Binary(b),
            Value::SimpleString(s) => RedisResult::Status(s),
            Value::Okay => RedisResult::Status("OK".into()),
            Value::Boolean(b) => RedisResult::Int64(i64::from(b)),
            Value::Double(d) => RedisResult::Binary(d.to_string().into_bytes()),
            other => RedisResult::Binary(format!("{other:?}").into_bytes()),
        }
    }
    match value {
        Value::Array(items) | Value::Set(items) => items.into_iter().map(one).collect(),
        other => vec![one(other)],
    }
}
