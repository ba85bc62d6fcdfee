//! Where deadlines live: the Redis layout, and the operations on it behind [`Deadlines`].
//!
//! | key                         | type       | role                                           |
//! |-----------------------------|------------|------------------------------------------------|
//! | `expiration:due`            | sorted set | the durable record: member = order id, score = deadline (Unix ms) |
//! | `expiration:order:<id>`     | string     | the timer: expires at the deadline, and Redis announces it on `__keyevent@0__:expired` |
//! | `expiration:done:<id>`      | string     | `expiration:complete` went out; kept [`DONE_RETENTION_SECONDS`] so a late duplicate `order:created` does not schedule the order again |
//! | `expiration:trace:<id>`     | string     | the `traceparent` of the `order:created` that scheduled the order, which its `expiration:complete` carries; written only when there is one, and expires [`DONE_RETENTION_SECONDS`] after the deadline |
//! | `expiration:redis-run`      | string     | the Redis run expiries were last published to ([`REDIS_RUN`]) |
//!
//! The sorted set decides: a timer only makes the component run on time, and an entry
//! is expired by whoever removes it from the set ([`Deadlines::claim`]).

use std::fmt;

use common::trace::TraceParent;

/// The sorted set of pending deadlines.
pub const DUE: &str = "expiration:due";

/// Prefix of the timer keys, followed by the order id.
pub const TIMER_PREFIX: &str = "expiration:order:";

/// Prefix of the keys recording that an order's expiry was published.
pub const DONE_PREFIX: &str = "expiration:done:";

/// Prefix of the keys holding the trace context an order was scheduled in.
pub const TRACE_PREFIX: &str = "expiration:trace:";

/// The `run_id` of the Redis server expiries were last published to: after a Redis
/// restart (a new run, the data kept by its append-only file) expiries wait a few
/// seconds for the subscribers to come back (`common::outbox::RedisRun::since`).
pub const REDIS_RUN: &str = "expiration:redis-run";

/// How long an expiry is remembered. Duplicates of `order:created` come from the
/// orders outbox (a relay that published but could not delete its row), within minutes;
/// a day is far beyond that and still lets the markers clean themselves up.
pub const DONE_RETENTION_SECONDS: u64 = 24 * 60 * 60;

/// The longest order id accepted; orders' ids are 36-character UUIDs.
const MAX_ID_LEN: usize = 128;

/// The id of an order, as it appears in events and in key names.
///
/// Expiration does not own orders, so it does not insist on their UUID format; it only
/// refuses what cannot be a sensible key part: empty, over-long, or containing
/// whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(String);

impl OrderId {
    /// `raw` as an order id, or `None` when it cannot be one.
    pub fn parse(raw: &str) -> Option<Self> {
        let sensible = !raw.is_empty()
            && raw.len() <= MAX_ID_LEN
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        sensible.then(|| Self(raw.to_owned()))
    }

    /// The order whose timer `key` is (`expiration:order:<id>`), or `None` for any other
    /// key, ours or not.
    pub fn from_timer_key(key: &str) -> Option<Self> {
        key.strip_prefix(TIMER_PREFIX).and_then(Self::parse)
    }

    /// The key whose expiry announces this order's deadline.
    pub fn timer_key(&self) -> String {
        format!("{TIMER_PREFIX}{}", self.0)
    }

    /// The key recording that this order's expiry was published.
    pub fn done_key(&self) -> String {
        format!("{DONE_PREFIX}{}", self.0)
    }

    /// The key holding the trace context this order was scheduled in.
    pub fn trace_key(&self) -> String {
        format!("{TRACE_PREFIX}{}", self.0)
    }
}

impl AsRef<str> for OrderId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pending entry of [`DUE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The order.
    pub order: OrderId,
    /// Its deadline, Unix milliseconds.
    pub deadline_ms: u64,
}

/// The Redis operations expiration needs, one command each. Every error is a failure to
/// reach Redis (or an answer it should never give).
pub trait Deadlines {
    /// Whether the order's expiry was already published (`EXISTS expiration:done:<id>`).
    fn is_done(&self, order: &OrderId) -> anyhow::Result<bool>;

    /// Records (or re-records) the order's deadline in [`DUE`] (`ZADD`).
    fn add(&self, order: &OrderId, deadline_ms: u64) -> anyhow::Result<()>;

    /// Sets the order's timer key to expire at `deadline_ms` (`SET … PXAT`).
    fn arm_timer(&self, order: &OrderId, deadline_ms: u64) -> anyhow::Result<()>;

    /// Keeps `traceparent` as the trace context the order was scheduled in, until
    /// `until_ms` (`SET expiration:trace:<id> … NX PXAT`): the first one kept stays.
    fn keep_trace(
        &self,
        order: &OrderId,
        traceparent: &TraceParent,
        until_ms: u64,
    ) -> anyhow::Result<()>;

    /// The trace context the order was scheduled in, if one was kept (`GET`).
    fn kept_trace(&self, order: &OrderId) -> anyhow::Result<Option<TraceParent>>;

    /// Up to `limit` entries of [`DUE`] whose deadline is at or before `now_ms`, earliest
    /// first (`ZRANGEBYSCORE … WITHSCORES LIMIT`).
    fn due(&self, now_ms: u64, limit: usize) -> anyhow::Result<Vec<Due>>;

    /// Removes the order from [`DUE`] (`ZREM`); `true` only for the one caller that
    /// removed it, which then owns its expiry.
    fn claim(&self, order: &OrderId) -> anyhow::Result<bool>;

    /// Takes the order's expiry for the caller: records it as done for
    /// [`DONE_RETENTION_SECONDS`] (`SET … NX EX`) unless it already is. `true` only for
    /// the one caller that set it, which then publishes.
    fn mark_done(&self, order: &OrderId) -> anyhow::Result<bool>;

    /// Forgets that the order is done (`DEL`), after its publish failed.
    fn unmark_done(&self, order: &OrderId) -> anyhow::Result<()>;

    /// The `run_id` of the Redis server expiries were last published to
    /// ([`REDIS_RUN`]), if any.
    fn last_redis_run(&self) -> anyhow::Result<Option<String>>;

    /// Remembers `run_id` as the Redis server expiries are published to.
    fn remember_redis_run(&self, run_id: &str) -> anyhow::Result<()>;
}

impl<D: Deadlines + ?Sized> Deadlines for &D {
    fn is_done(&self, order: &OrderId) -> anyhow::Result<bool> {
        (**self).is_done(order)
    }

    fn add(&self, order: &OrderId, deadline_ms: u64) -> anyhow::Result<()> {
        (**self).add(order, deadline_ms)
    }

    fn arm_timer(&self, order: &OrderId, deadline_ms: u64) -> anyhow::Result<()> {
        (**self).arm_timer(order, deadline_ms)
    }

    fn keep_trace(
        &self,
        order: &OrderId,
        traceparent: &TraceParent,
        until_ms: u64,
    ) -> anyhow::Result<()> {
        (**self).keep_trace(order, traceparent, until_ms)
    }

    fn kept_trace(&self, order: &OrderId) -> anyhow::Result<Option<TraceParent>> {
        (**self).kept_trace(order)
    }

    fn due(&self, now_ms: u64, limit: usize) -> anyhow::Result<Vec<Due>> {
        (**self).due(now_ms, limit)
    }

    fn claim(&self, order: &OrderId) -> anyhow::Result<bool> {
        (**self).claim(order)
    }

    fn mark_done(&self, order: &OrderId) -> anyhow::Result<bool> {
        (**self).mark_done(order)
    }

    fn unmark_done(&self, order: &OrderId) -> anyhow::Result<()> {
        (**self).unmark_done(order)
    }

    fn last_redis_run(&self) -> anyhow::Result<Option<String>> {
        (**self).last_redis_run()
    }

    fn remember_redis_run(&self, run_id: &str) -> anyhow::Result<()> {
        (**self).remember_redis_run(run_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_sensible_key_parts() {
        for ok in ["9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5", "o1", "a:b"] {
            assert_eq!(OrderId::parse(ok).unwrap().as_ref(), ok);
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        for bad in ["", " o1", "o 1", "o1\n", "o\u{0}1", long.as_str()] {
            assert_eq!(OrderId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_name_the_order() {
        let order = OrderId::parse("o1").unwrap();
        assert_eq!(order.timer_key(), "expiration:order:o1");
        assert_eq!(order.done_key(), "expiration:done:o1");
        assert_eq!(order.trace_key(), "expiration:trace:o1");
        assert_eq!(OrderId::from_timer_key(&order.timer_key()), Some(order));
    }

    #[test]
    fn only_timer_keys_name_an_order() {
        for key in [
            "expiration:done:o1",
            "expiration:trace:o1",
            "expiration:due",
            "expiration:order:",
            "session:o1",
            "o1",
            "",
        ] {
            assert_eq!(OrderId::from_timer_key(key), None, "{key}");
        }
    }
}
