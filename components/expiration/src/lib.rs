//! The expiration service: an order's lock window ends at its `expires_at`, and then
//! `expiration:complete {order_id}` is published (orders cancels the order if it is still
//! unpaid). No job queue, no cron (SpinKube runs only http, redis, sqs, mqtt and command
//! triggers): deadlines are scheduled in Redis and Redis wakes the component up.
//!
//! - On `order:created` the deadline goes into the sorted set `expiration:due` (the
//!   durable record) and into a timer key `expiration:order:<id>` that expires at the
//!   deadline (`deadlines.rs` describes the layout).
//! - When a timer key expires Redis publishes its name on `__keyevent@0__:expired` (it
//!   needs `notify-keyspace-events Ex`), which triggers the component again.
//! - Every message, of either kind, ends with a sweep of every entry already due, so an
//!   expiry whose notification was lost still goes out with the next message.
//! - The `order:created`'s trace context is kept with the deadline
//!   (`expiration:trace:<id>`), so the `expiration:complete` continues its trace
//!   whichever message triggers the expiry.
//!
//! Every replica receives every message; an entry is expired by the one replica whose
//! `ZREM` removed it (`expiry.rs`).
//!
//! This file is the Spin glue only: the Redis entry point and its connections. The
//! messages are read in `messages.rs`, the rules are in `expiry.rs`, the Redis commands
//! in `redis.rs`.
#![deny(missing_docs)]

pub mod deadlines;
pub mod expiry;
pub mod messages;
pub mod redis;

#[cfg(test)]
mod testing;

/// One message from `order:created` or `__keyevent@0__:expired`, in its trace context
/// (an `order:created`'s is stored with the deadline, for its `expiration:complete`).
/// Only Redis failures are errors; the host logs them (the chain is folded into the
/// message, which is all it prints).
// Native builds (tests) skip the export: its WIT-style symbol names break the native
// cdylib link ("; expected" in the linker version script).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    use common::outbox::{DEFAULT_REDIS_ADDRESS, RedisPublisher};

    common::message::serve(&message, || {
        let address =
            common::config::variable_or("redis_address", DEFAULT_REDIS_ADDRESS.to_owned())?;
        let deadlines = redis::RedisDeadlines::open(&address)?;
        let publisher = RedisPublisher::new(address);
        messages::handle(&deadlines, &publisher, &message, common::time::now_millis())
    })
}
