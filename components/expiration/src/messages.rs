//! The messages this component receives, and what it does with each.
//!
//! Two triggers feed it, and the trigger does not say which channel a message came from:
//! - `order:created`: a CloudEvents envelope; the order's deadline is scheduled
//!   ([`expiry::schedule`]), with the message's trace context (`common::trace::current`)
//!   for the `expiration:complete` it will cause;
//! - `__keyevent@0__:expired`: a Redis keyspace notification whose payload is the bare
//!   name of the key that expired. For our timer keys (`expiration:order:<id>`) the order
//!   is expired at once ([`expiry::expire`]): Redis saying the timer fired is the
//!   deadline passing, whatever this host's clock says. Every other key is ignored
//!   without a word: the notification covers every key of the database.
//!
//! After either, and after anything ignored, every due entry is expired
//! ([`expiry::sweep`]), so a notification missed by every replica is honoured by the
//! next message any of them handles.
//!
//! A message that is not understood is logged and acknowledged: pub/sub would not
//! deliver it again, and an error would only be logged a second time by the host.
//! Errors are Redis failures only.

use anyhow::Context;
use common::events::{self, Event, OrderCreated, OrderStatus};
use common::outbox::Publisher;
use common::time::parse_rfc3339;
use common::trace;

use crate::deadlines::{Deadlines, OrderId, TIMER_PREFIX};
use crate::expiry::{self, Scheduled};

/// A message, as far as expiration is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `order:created`: the order expires at `deadline_ms` (Unix ms).
    Schedule {
        /// The order.
        order: OrderId,
        /// Its `expires_at`, in milliseconds.
        deadline_ms: u64,
    },
    /// The order's timer key expired.
    TimerFired(OrderId),
    /// Anything else (already logged if it deserved it).
    Ignored,
}

/// Handles one message at `now_ms` (Unix ms), then sweeps.
pub fn handle(
    deadlines: &impl Deadlines,
    publisher: &impl Publisher,
    payload: &[u8],
    now_ms: u64,
) -> anyhow::Result<()> {
    let handled = match parse(payload) {
        Message::Schedule { order, deadline_ms } => {
            // The message's trace context (`common::message::serve` set it), for the
            // expiry this schedules.
            let traceparent = trace::current();
            let scheduled =
                expiry::schedule(deadlines, &order, deadline_ms, now_ms, traceparent.as_ref());
            scheduled.map(|scheduled| {
                if scheduled == Scheduled::AlreadyExpired {
                    eprintln!("expiration: order {order} already expired; not scheduled again");
                }
            })
        }
        // Put back as due now should the publish fail.
        // Nothing is claimed right after a Redis restart: the entry stays due, and a
        // later message's sweep expires it.
        Message::TimerFired(order) => expiry::check_redis_run(deadlines, publisher)
            .with_context(|| format!("order {order} waits"))
            .and_then(|()| expiry::expire(deadlines, publisher, &order, now_ms, now_ms))
            .map(drop),
        Message::Ignored => Ok(()),
    };
    // Sweep even when the message failed: the two may fail for different reasons.
    let swept = expiry::sweep(deadlines, publisher, now_ms).map(drop);
    match (handled, swept) {
        (Err(err), Err(sweep_err)) => {
            eprintln!("expiration: the sweep failed too: {sweep_err:#}");
            Err(err)
        }
        (handled, swept) => handled.and(swept),
    }
}

/// What `payload` asks for. Logs what is malformed; never fails.
pub fn parse(payload: &[u8]) -> Message {
    if let Some(rest) = payload.strip_prefix(TIMER_PREFIX.as_bytes()) {
        return match std::str::from_utf8(rest).ok().and_then(OrderId::parse) {
            Some(order) => Message::TimerFired(order),
            None => {
                eprintln!(
                    "expiration: ignoring the timer key {:?}: not an order id",
                    String::from_utf8_lossy(payload)
                );
                Message::Ignored
            }
        };
    }
    if !payload.trim_ascii_start().starts_with(b"{") {
        // A key that expired and is not one of our timers (or our done markers).
        return Message::Ignored;
    }
    match events::decode_or_skip("expiration", payload) {
        Some(Event::OrderCreated(order)) => schedule(&order),
        Some(other) => {
            events::skip_unconsumed("expiration", &other);
            Message::Ignored
        }
        None => Message::Ignored,
    }
}

fn schedule(order: &OrderCreated) -> Message {
    if order.status != OrderStatus::Created {
        eprintln!(
            "expiration: ignoring order:created for order {} with status {}",
            order.id, order.status
        );
        return Message::Ignored;
    }
    let Some(id) = OrderId::parse(&order.id) else {
        eprintln!(
            "expiration: ignoring order:created with invalid id {:?}",
            order.id
        );
        return Message::Ignored;
    };
    let Some(seconds) = parse_rfc3339(&order.expires_at) else {
        eprintln!(
            "expiration: ignoring order:created for order {id}: expires_at {:?} is not an \
             RFC 3339 time",
            order.expires_at
        );
        return Message::Ignored;
    };
    Message::Schedule {
        order: id,
        deadline_ms: seconds.saturating_mul(1000),
    }
}

#[cfg(test)]
mod tests;
