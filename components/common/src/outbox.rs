//! The transactional outbox: an event is committed with the change that caused it, and
//! published after the commit.
//!
//! A service writes the change and [`enqueue`]s its event in one sqlite transaction
//! ([`crate::sqlite::transaction`], `BEGIN IMMEDIATE` … `COMMIT` on one connection), so
//! either both are stored or neither is. After the commit it calls [`relay`], which
//! publishes pending rows in `seq` order and deletes each one once Redis accepted it,
//! stopping at the first failure. A crash or a Redis outage between commit and publish
//! leaves the rows in the table, and they go out on the next relay: services relay at the
//! start of every request and message they handle, so a backlog drains on the next
//! activity.
//!
//! Delivery is at least once from the outbox's side: two instances relaying at the same
//! time can both publish a row before either deletes it, and a crash between publish and
//! delete publishes it again later. That is acceptable because every consumer is
//! idempotent (events carry the entity's version; replicas apply only newer versions and
//! effects are conditional updates). Relays racing can also interleave rows; the versions
//! make consumers ignore the older of two events for one entity.

use std::cell::RefCell;

use anyhow::{Context, anyhow};

use crate::config;
use crate::events::{self, Event};
use crate::sqlite::{Database, Value, get_text, get_u64, integer, text};
use crate::time::rfc3339;

/// The outbox table; every service that publishes creates it in its own database.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL
)";

/// Redis address used when the variable `redis_address` is unset.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// Rows read per query while relaying.
const BATCH: i64 = 100;

/// Creates the outbox table if it does not exist yet.
pub fn create_table(db: &(impl Database + ?Sized)) -> anyhow::Result<()> {
    db.query(SCHEMA, &[])
        .context("Failed to create the outbox table")?;
    Ok(())
}

/// Stores `event` for publishing, inside the caller's open transaction.
///
/// `source` is the publishing service (`/tessera/<service>`) and `now` the Unix time of
/// the change; the envelope gets a fresh UUID v4 as its id.
pub fn enqueue(
    db: &(impl Database + ?Sized),
    event: &Event,
    source: &str,
    now: u64,
) -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().to_string();
    let payload = events::encode(event, source, &id, &rfc3339(now));
    db.query(
        "INSERT INTO outbox (channel, payload, created_at) VALUES (?, ?, ?)",
        &[text(event.channel()), Value::Blob(payload), integer(now)?],
    )
    .with_context(|| format!("Failed to enqueue a `{}` event", event.channel()))?;
    Ok(())
}

/// Publishes the pending rows in `seq` order, deleting each one after it was published.
///
/// Returns how many rows were published. On the first failure it stops and returns the
/// error; that row and the ones after it stay for the next relay. Callers have already
/// committed their change, so a relay error is logged, never turned into a failed
/// request (see [`relay_or_log`]).
pub fn relay(db: &(impl Database + ?Sized), publisher: &impl Publisher) -> anyhow::Result<usize> {
    let mut published = 0;
    // Reading past the last row seen guarantees progress even if a DELETE went missing.
    let mut after = 0u64;
    loop {
        let result = db
            .query(
                "SELECT seq, channel, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                &[integer(after)?, Value::Integer(BATCH)],
            )
            .context("Failed to read the outbox")?;
        for row in result.rows() {
            let seq = get_u64(&row, "seq")?;
            let channel = get_text(&row, "channel")?;
            let payload = row
                .get::<&[u8]>("payload")
                .ok_or_else(|| anyhow!("Column `payload` of outbox row {seq} is not a blob"))?;
            publisher
                .publish(&channel, payload)
                .with_context(|| format!("Failed to publish outbox row {seq} on `{channel}`"))?;
            db.query("DELETE FROM outbox WHERE seq = ?", &[integer(seq)?])
                .with_context(|| format!("Failed to delete published outbox row {seq}"))?;
            published += 1;
            after = seq;
        }
        if result.rows.len() < BATCH as usize {
            return Ok(published);
        }
    }
}

/// [`relay`], logging a failure instead of returning it.
pub fn relay_or_log(db: &(impl Database + ?Sized), publisher: &impl Publisher) {
    if let Err(err) = relay(db, publisher) {
        eprintln!("outbox relay stopped, pending events stay queued: {err:#}");
    }
}

/// Where relayed events go.
pub trait Publisher {
    /// Publishes `payload` on `channel`; an error means it was not published.
    fn publish(&self, channel: &str, payload: &[u8]) -> anyhow::Result<()>;
}

impl<P: Publisher + ?Sized> Publisher for &P {
    fn publish(&self, channel: &str, payload: &[u8]) -> anyhow::Result<()> {
        (**self).publish(channel, payload)
    }
}

/// [`Publisher`] on Spin's outbound Redis. The address must be in the component's
/// `allowed_outbound_hosts`.
///
/// The connection is opened on the first publish, so a relay that finds nothing to
/// publish costs no Redis round trip.
pub struct RedisPublisher {
    address: String,
    connection: RefCell<Option<spin_sdk::redis::Connection>>,
}

impl RedisPublisher {
    /// A publisher to the Redis server at `address` (`redis://host:port`).
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            connection: RefCell::new(None),
        }
    }

    /// A publisher to the variable `redis_address` (default [`DEFAULT_REDIS_ADDRESS`]).
    pub fn from_variables() -> anyhow::Result<Self> {
        let address = config::variable_or("redis_address", DEFAULT_REDIS_ADDRESS.to_owned())?;
        Ok(Self::new(address))
    }
}

impl Publisher for RedisPublisher {
    fn publish(&self, channel: &str, payload: &[u8]) -> anyhow::Result<()> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => spin_sdk::redis::Connection::open(&self.address)
                .map_err(|err| anyhow!("{err:?}"))
                .with_context(|| format!("Failed to connect to Redis at `{}`", self.address))?,
        };
        connection
            .publish(channel, &payload.to_vec())
            .map_err(|err| anyhow!("{err:?}"))
            .with_context(|| format!("Redis refused to publish on `{channel}`"))?;
        // Kept only after a success: after a failure the next publish reconnects.
        self.connection.replace(Some(connection));
        Ok(())
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;
