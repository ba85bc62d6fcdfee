//! Scheduling deadlines and publishing `expiration:complete` when they pass.
//!
//! Every replica receives every message, so each step is safe to run several times and
//! at once:
//! - [`schedule`] writes the same entry and timer for the same order (a duplicate
//!   `order:created` changes nothing), and skips an order whose expiry already went out;
//! - [`expire`] publishes only for the caller whose `ZREM` removed the entry and who
//!   then set the done marker (`SET NX`), so of any number of replicas sweeping at once,
//!   late duplicate `order:created`s included, exactly one publishes; if the publish
//!   fails the marker is cleared and the entry goes back into the set for a later sweep;
//! - [`sweep`] expires every entry that is due, whether or not its timer's notification
//!   arrived: pub/sub delivers at most once, and a replica may have been down.
//!
//! `expiration:complete` is caused by the `order:created` that scheduled it, not by
//! whatever message runs the expiry (a timer's notification names only a key; a sweep
//! runs on any message), so [`schedule`] keeps that message's trace context with the
//! deadline and [`expire`] publishes with it. Losing it loses only the trace, never the
//! expiry: a failure to keep or read it is logged and the work goes on without.
//!
//! An expiry is never published twice. The price is narrow ways to lose one: a replica
//! that dies between setting the marker and publishing; Redis killed between answering
//! the publish and sending it on (see `common::outbox::Publisher::confirm_sent`, which
//! expiration does not use: publishing again could publish twice); or Redis away for
//! longer than [`put_back`] waits after a claim (logged loudly). Either way orders'
//! overdue backstop still cancels the order; only the event is missing.

use common::events::{self, Event, ExpirationComplete, channel};
use common::outbox::{Publisher, RunChange};
use common::time::rfc3339;
use common::trace::TraceParent;

use crate::deadlines::{DONE_RETENTION_SECONDS, Deadlines, OrderId};

/// The `source` of the events this service publishes.
pub const SOURCE: &str = "/tessera/expiration";

/// Entries read from the set at once while sweeping.
pub const BATCH: usize = 100;

/// Batches one sweep handles at most, so a huge backlog cannot run one message into
/// the host's timeout; the rest is left to the sweeps of the next messages (each of its
/// timers brings one).
pub const MAX_BATCHES: usize = 10;

/// What [`schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduled {
    /// Recorded, and its timer set to fire at the deadline.
    Pending,
    /// Recorded with a deadline that has already passed: the next sweep expires it.
    DueNow,
    /// Its expiry was already published; nothing written.
    AlreadyExpired,
}

/// Records that `order` expires at `deadline_ms` (Unix ms), at `now_ms`, caused by a
/// message with trace context `traceparent`.
///
/// The trace context is kept first, so that whoever expires the entry finds it, until
/// [`DONE_RETENTION_SECONDS`] after the deadline (or now, for a late one). The set entry
/// comes next: it is the durable record, and a sweep honours it even if setting the
/// timer then fails. A deadline already past gets no timer (the sweep that follows
/// every message expires it).
pub fn schedule(
    deadlines: &impl Deadlines,
    order: &OrderId,
    deadline_ms: u64,
    now_ms: u64,
    traceparent: Option<&TraceParent>,
) -> anyhow::Result<Scheduled> {
    if deadlines.is_done(order)? {
        return Ok(Scheduled::AlreadyExpired);
    }
    if let Some(traceparent) = traceparent {
        let until_ms = deadline_ms
            .max(now_ms)
            .saturating_add(DONE_RETENTION_SECONDS.saturating_mul(1000));
        if let Err(err) = deadlines.keep_trace(order, traceparent, until_ms) {
            eprintln!(
                "expiration: order {order}: could not keep its trace context, its expiry \
                 will carry none: {err:#}"
            );
        }
    }
    deadlines.add(order, deadline_ms)?;
    if deadline_ms <= now_ms {
        return Ok(Scheduled::DueNow);
    }
    deadlines.arm_timer(order, deadline_ms)?;
    Ok(Scheduled::Pending)
}

/// What [`expire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// This caller claimed the entry and published `expiration:complete`.
    Published,
    /// Someone else claimed it first (or it was never scheduled): nothing published.
    NotOurs,
}

/// Claims `order`'s entry and publishes its `expiration:complete`, at `now_ms`.
///
/// Two steps decide who publishes: the `ZREM` of the entry, and then the done marker,
/// set only if absent. The marker is what stops a second publish when a late duplicate
/// `order:created` put the entry back while another replica was expiring it.
///
/// If the publish fails the marker is removed and the entry put back with the score
/// `retry_at_ms` (its deadline, or any time already past), so a later sweep tries again,
/// and the publish error is returned.
pub fn expire(
    deadlines: &impl Deadlines,
    publisher: &impl Publisher,
    order: &OrderId,
    retry_at_ms: u64,
    now_ms: u64,
) -> anyhow::Result<Expired> {
    if !deadlines.claim(order)? {
        return Ok(Expired::NotOurs);
    }
    let ours = match deadlines.mark_done(order) {
        Ok(ours) => ours,
        Err(err) => return Err(put_back(deadlines, order, retry_at_ms, err, "mark as done")),
    };
    if !ours {
        // Already expired by someone else; the entry we removed was a stale copy.
        return Ok(Expired::NotOurs);
    }
    let traceparent = kept_trace(deadlines, order);
    if let Err(err) = publish(publisher, order, now_ms, traceparent.as_ref()) {
        let unmarked = while_redis_is_away(|| deadlines.unmark_done(order));
        if let Err(unmark) = unmarked {
            eprintln!("expiration: order {order}: could not clear its done marker: {unmark:#}");
        }
        return Err(put_back(
            deadlines,
            order,
            retry_at_ms,
            err,
            "publish expiration:complete for",
        ));
    }
    Ok(Expired::Published)
}

/// Attempts [`while_redis_is_away`] makes, [`RETRY_PAUSE`] apart: about 5 s, longer
/// than Redis takes to restart.
const RETRY_ATTEMPTS: u32 = 20;

/// The pause between two attempts (none in native tests, which fail on purpose).
const RETRY_PAUSE: std::time::Duration = if cfg!(test) {
    std::time::Duration::ZERO
} else {
    std::time::Duration::from_millis(250)
};

/// Runs `step` until it succeeds or [`RETRY_ATTEMPTS`] have failed; the last error.
///
/// For the steps that undo a claim: by the time one runs, the claim's `ZREM` has
/// happened, so if this step fails for good nothing in Redis says the order must still
/// expire. A Redis restarted in the middle of an expiry (the chaos run: `ZREM`, then
/// "connection refused" for `SET` and for the put-back `ZADD`) is back within a second or
/// two, so waiting for it turns that lost expiry into a late one.
fn while_redis_is_away<T>(mut step: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let mut attempt = 1;
    loop {
        match step() {
            Ok(value) => return Ok(value),
            Err(err) if attempt >= RETRY_ATTEMPTS => return Err(err),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    }
}

/// Puts a claimed entry back after `err` stopped its expiry (waiting for a Redis that is
/// away, [`while_redis_is_away`]), and says so in the error.
fn put_back(
    deadlines: &impl Deadlines,
    order: &OrderId,
    retry_at_ms: u64,
    err: anyhow::Error,
    what: &str,
) -> anyhow::Error {
    let context = match while_redis_is_away(|| deadlines.add(order, retry_at_ms)) {
        Ok(()) => format!("order {order} is due again for the next sweep"),
        Err(put_back) => {
            // Nothing left in Redis says this order must expire: say so loudly.
            let lost = format!(
                "the deadline of order {order} (due at {retry_at_ms} ms) is LOST: it \
                 could not be put back either ({put_back:#}); the order stays reserved \
                 until cancelled by hand"
            );
            eprintln!("expiration: {lost}");
            lost
        }
    };
    err.context(format!("Failed to {what} order {order}; {context}"))
}

/// Fails while Redis is a new run since expiries were last published and has been up
/// only moments (its subscribers, orders among them, may not be back: an expiry
/// published now could be lost to them); otherwise remembers the run. See
/// `common::outbox::REDIS_SETTLE_SECONDS`.
pub fn check_redis_run(
    deadlines: &impl Deadlines,
    publisher: &impl Publisher,
) -> anyhow::Result<()> {
    let Some(run) = publisher.redis_run()? else {
        return Ok(());
    };
    match run.since(deadlines.last_redis_run()?.as_deref()) {
        RunChange::Same => Ok(()),
        RunChange::RestartedMomentsAgo => Err(anyhow::anyhow!(run.hold_message())),
        RunChange::New => deadlines.remember_redis_run(&run.id),
    }
}

/// Expires every entry due at `now_ms` (up to [`MAX_BATCHES`] × [`BATCH`]), returning
/// how many this caller published. Stops at the first failure, with the failed entry
/// back in the set.
pub fn sweep(
    deadlines: &impl Deadlines,
    publisher: &impl Publisher,
    now_ms: u64,
) -> anyhow::Result<usize> {
    let mut published = 0;
    let mut checked_run = false;
    for _ in 0..MAX_BATCHES {
        let batch = deadlines.due(now_ms, BATCH)?;
        let full = batch.len() >= BATCH;
        // Asked of Redis only when something is due (most sweeps find nothing), and
        // once per sweep; right after a Redis restart the entries stay due.
        if !batch.is_empty() && !checked_run {
            check_redis_run(deadlines, publisher)?;
            checked_run = true;
        }
        for due in batch {
            if expire(deadlines, publisher, &due.order, due.deadline_ms, now_ms)?
                == Expired::Published
            {
                published += 1;
            }
        }
        // Claimed entries left the set, so the next read starts past them.
        if !full {
            break;
        }
    }
    Ok(published)
}

/// The trace context `order` was scheduled in. A failure to read it is logged and
/// means none: the expiry matters more than its trace.
fn kept_trace(deadlines: &impl Deadlines, order: &OrderId) -> Option<TraceParent> {
    deadlines.kept_trace(order).unwrap_or_else(|err| {
        eprintln!(
            "expiration: order {order}: could not read its trace context, its expiry \
             carries none: {err:#}"
        );
        None
    })
}

/// Publishes `order`'s `expiration:complete` envelope (fresh id, `time` = now, the
/// `traceparent` of the `order:created` that scheduled it).
fn publish(
    publisher: &impl Publisher,
    order: &OrderId,
    now_ms: u64,
    traceparent: Option<&TraceParent>,
) -> anyhow::Result<()> {
    let event = Event::from(ExpirationComplete {
        order_id: order.to_string(),
    });
    let id = uuid::Uuid::new_v4().to_string();
    let payload = events::encode(&event, SOURCE, &id, &rfc3339(now_ms / 1000), traceparent);
    publisher.publish(channel::EXPIRATION_COMPLETE, &payload)
}

#[cfg(test)]
mod tests;
