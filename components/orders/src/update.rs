//! Carrying out a [`Trigger`] on a stored order: ask the lifecycle
//! ([`crate::domain::status`]) what to do, then write it conditionally.
//!
//! The write only lands if the order is still as it was read, so two instances acting
//! on one order at once (a buyer's cancel racing the payment, or the same event
//! delivered to two replicas) cannot both change it: the loser reads the order again
//! and asks the lifecycle anew, which then usually says "unchanged".

use anyhow::{anyhow, bail};

use crate::domain::{Lifecycle, Order, Refusal, Transition, Trigger};
use crate::store::OrderStore;

/// Orders change at most once (both targets are final), so a second attempt always
/// settles; the third is only a guard against a misbehaving store.
const MAX_ATTEMPTS: usize = 3;

/// What a trigger came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The order moved on; its event is queued in the outbox.
    Changed(Order),
    /// Nothing to do; nothing written, no event.
    Unchanged(Order),
    /// Not allowed in the order's status; nothing written, no event.
    Refused(Order, Refusal),
}

/// Applies `trigger` to `order`, as just read from `store`.
pub fn apply(store: &impl OrderStore, order: Order, trigger: Trigger) -> anyhow::Result<Applied> {
    let mut order = order;
    for _ in 0..MAX_ATTEMPTS {
        let status = match order.status.on(trigger) {
            Transition::To(status) => status,
            Transition::Unchanged => return Ok(Applied::Unchanged(order)),
            Transition::Refused(refusal) => return Ok(Applied::Refused(order, refusal)),
        };
        let updated = order.with_status(status);
        if store.update_order(&order, &updated)? {
            return Ok(Applied::Changed(updated));
        }
        // A concurrent change won: decide again on what it left.
        order = store
            .order(&order.id)?
            .ok_or_else(|| anyhow!("Order {} disappeared while being updated", order.id))?;
    }
    bail!("Order {} kept changing under {trigger:?}", order.id)
}
