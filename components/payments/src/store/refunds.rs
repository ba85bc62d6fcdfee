//! The refunds queue: charges to give back, queued in the transaction that learns they
//! must be (`record`, `replicate`), and worked off by `crate::refunds`.
//!
//! Several instances may work the queue at once (every request and message runs it),
//! so a try first claims its rows with one UPDATE, pushing `next_attempt_at` a lease
//! ahead; only a try whose instance died leaves its rows to the lease. Stripe's
//! idempotency key (one per charge) makes a refund retried after such a death the same
//! refund.

use anyhow::{Context, anyhow};
use common::events::Event;
use common::outbox;
use common::sqlite::{
    Database, Row, Value, get_opt_text, get_text, get_u64, integer, text, transaction,
};
use common::trace::{self, TraceParent};

use super::{Payments, SOURCE, parse_order_id};
use crate::domain::refund::retry_delay;
use crate::domain::{Payment, Refund, RefundReason};

/// How long a claimed refund is left to the instance working on it: longer than a
/// request may run (the host's default timeout is 30 s).
pub const REFUND_LEASE_SECONDS: u64 = 60;

/// Refunds claimed at once.
const BATCH: u64 = 20;

impl<D: Database> Payments<D> {
    /// Queues the refund of `payment`'s charge, due now, inside the caller's
    /// transaction, with the current trace context (what calls for the refund). A charge
    /// is refunded at most once: queuing it again does nothing.
    pub(super) fn queue_refund(
        &self,
        payment: &Payment,
        reason: RefundReason,
        now: u64,
    ) -> anyhow::Result<()> {
        let traceparent = match trace::current() {
            Some(traceparent) => text(traceparent.as_str()),
            None => Value::Null,
        };
        self.db
            .query(
                "INSERT OR IGNORE INTO refunds
                    (stripe_id, payment_id, order_id, reason, next_attempt_at, created_at,
                     traceparent)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                &[
                    text(payment.stripe_id.as_str()),
                    text(payment.id.as_str()),
                    text(payment.order_id.as_ref()),
                    text(reason.as_str()),
                    integer(now)?,
                    integer(now)?,
                    traceparent,
                ],
            )
            .with_context(|| format!("Failed to queue the refund of {}", payment.stripe_id))?;
        Ok(())
    }

    /// Claims up to a batch of refunds due at `now` for [`REFUND_LEASE_SECONDS`].
    pub fn claim_due_refunds(&self, now: u64) -> anyhow::Result<Vec<Refund>> {
        // The usual case is nothing due: find out with a read, which (unlike any
        // UPDATE) does not take the database's write lock.
        let any = self
            .db
            .query(
                "SELECT stripe_id FROM refunds
                 WHERE refund_id IS NULL AND next_attempt_at <= ? LIMIT 1",
                &[integer(now)?],
            )
            .context("Failed to read the refunds queue")?;
        if any.rows.is_empty() {
            return Ok(Vec::new());
        }
        // One statement, so two instances never claim the same refund.
        let claimed = self
            .db
            .query(
                "UPDATE refunds SET next_attempt_at = ? WHERE stripe_id IN
                    (SELECT stripe_id FROM refunds
                     WHERE refund_id IS NULL AND next_attempt_at <= ?
                     ORDER BY next_attempt_at LIMIT ?)
                 RETURNING stripe_id, payment_id, order_id, reason, attempts, traceparent",
                &[
                    integer(now.saturating_add(REFUND_LEASE_SECONDS))?,
                    integer(now)?,
                    integer(BATCH)?,
                ],
            )
            .context("Failed to claim due refunds")?;
        claimed.rows().map(|row| refund_from(&row)).collect()
    }

    /// Stripe made `refund` as `refund_id`: stores it and queues `payment:refunded`,
    /// in one transaction. Whether this call recorded it (a second call does nothing).
    ///
    /// The event carries the trace context the refund was queued with, not the current
    /// one: the worker makes every due refund, also ones queued by earlier requests.
    pub fn refund_made(&self, refund: &Refund, refund_id: &str, now: u64) -> anyhow::Result<bool> {
        trace::with_current(refund.traceparent.clone(), || {
            self.store_refund(refund, refund_id, now)
        })
    }

    fn store_refund(&self, refund: &Refund, refund_id: &str, now: u64) -> anyhow::Result<bool> {
        transaction(&self.db, || {
            let updated = self
                .db
                .query(
                    "UPDATE refunds SET refund_id = ?
                     WHERE stripe_id = ? AND refund_id IS NULL RETURNING stripe_id",
                    &[text(refund_id), text(refund.stripe_id.as_str())],
                )
                .context("Failed to store a refund")?;
            if updated.rows.is_empty() {
                return Ok(false);
            }
            let event = Event::from(refund.event(refund_id));
            outbox::enqueue(&self.db, &event, SOURCE, now).with_context(|| {
                format!("Failed to queue the refund event of {}", refund.stripe_id)
            })?;
            Ok(true)
        })
    }

    /// A try at `refund` failed at `now`: the next one is due after a back-off.
    pub fn postpone_refund(&self, refund: &Refund, now: u64) -> anyhow::Result<()> {
        let failures = refund.attempts.saturating_add(1);
        self.db
            .query(
                "UPDATE refunds SET attempts = ?, next_attempt_at = ?
                 WHERE stripe_id = ? AND refund_id IS NULL",
                &[
                    integer(u64::from(failures))?,
                    integer(now.saturating_add(retry_delay(failures)))?,
                    text(refund.stripe_id.as_str()),
                ],
            )
            .with_context(|| format!("Failed to postpone the refund of {}", refund.stripe_id))?;
        Ok(())
    }

    /// When the earliest refund still to make is due (Unix seconds), if any.
    pub fn next_refund_due(&self) -> anyhow::Result<Option<u64>> {
        let result = self
            .db
            .query(
                "SELECT next_attempt_at FROM refunds WHERE refund_id IS NULL
                 ORDER BY next_attempt_at LIMIT 1",
                &[],
            )
            .context("Failed to read the refunds queue")?;
        result
            .rows()
            .next()
            .map(|row| get_u64(&row, "next_attempt_at"))
            .transpose()
    }

    /// The refund (`re_…`) made for the charge `stripe_id`: `None` when none is
    /// queued, `Some(None)` while it is still to make.
    pub fn refund_of(&self, stripe_id: &str) -> anyhow::Result<Option<Option<String>>> {
        let result = self
            .db
            .query(
                "SELECT refund_id FROM refunds WHERE stripe_id = ?",
                &[text(stripe_id)],
            )
            .context("Failed to read a refund")?;
        result
            .rows()
            .next()
            .map(|row| common::sqlite::get_opt_text(&row, "refund_id"))
            .transpose()
    }
}

fn refund_from(row: &Row<'_>) -> anyhow::Result<Refund> {
    let stripe_id = get_text(row, "stripe_id")?;
    let reason = get_text(row, "reason")?;
    let attempts = get_u64(row, "attempts")?;
    // Only this code writes it; anything unreadable is just no trace context.
    let traceparent = get_opt_text(row, "traceparent")
        .ok()
        .flatten()
        .and_then(|text| TraceParent::parse(&text));
    Ok(Refund {
        traceparent,
        reason: RefundReason::parse(&reason)
            .ok_or_else(|| anyhow!("Stored refund of {stripe_id} has reason {reason:?}"))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        payment_id: get_text(row, "payment_id")?,
        order_id: parse_order_id(&get_text(row, "order_id")?)?,
        stripe_id,
    })
}
