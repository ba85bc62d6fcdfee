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

/// Applies `trigger` to `order`, as just read from `store`, at `now` (Unix seconds).
pub fn apply(
    store: &impl OrderStore,
    order: Order,
    trigger: Trigger,
    now: u64,
) -> anyhow::Result<Applied> {
    let mut order = order;
    for _ in 0..MAX_ATTEMPTS {
        let status = match order.status.on(trigger) {
            Transition::To(status) => status,
            Transition::Unchanged => return Ok(Applied::Unchanged(order)),
            Transition::Refused(refusal) => return Ok(Applied::Refused(order, refusal)),
        };
        let updated = order.with_status(status);
        if store.update_order(&order, &updated, now)? {
            return Ok(Applied::Changed(updated));
        }
        // A concurrent change won: decide again on what it left.
        order = store
            .order(&order.id)?
            .ok_or_else(|| anyhow!("Order {} disappeared while being updated", order.id))?;
    }
    bail!("Order {} kept changing under {trigger:?}", order.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExpiresAt, OrderStatus};
    use crate::testing::{NOW, TestStore, outbox, put_ticket, store};

    fn placed(store: &TestStore) -> Order {
        put_ticket(store, "t1", 1099);
        let ticket = store.ticket("t1").unwrap().unwrap();
        let order = Order::place("buyer", ticket, ExpiresAt::from_unix_seconds(NOW + 60));
        store.insert_order(&order, NOW).unwrap();
        order
    }

    #[test]
    fn a_change_is_written_and_announced() {
        let store = store();
        let order = placed(&store);
        let applied = apply(&store, order.clone(), Trigger::LockExpired, NOW).unwrap();
        let cancelled = order.with_status(OrderStatus::Cancelled);
        assert_eq!(applied, Applied::Changed(cancelled.clone()));
        assert_eq!(store.order(&order.id).unwrap(), Some(cancelled.clone()));
        assert_eq!(outbox(&store).last(), Some(&cancelled.event()));
    }

    #[test]
    fn losing_a_race_decides_again_on_the_winners_result() {
        let store = store();
        let order = placed(&store);
        // Another instance completes the order after this one read it.
        apply(&store, order.clone(), Trigger::PaymentReceived, NOW).unwrap();

        let stale = order;
        let applied = apply(&store, stale, Trigger::BuyerCancels, NOW).unwrap();

        let Applied::Refused(current, Refusal::CancelCompleted) = applied else {
            panic!("expected a refusal, got {applied:?}");
        };
        assert_eq!(
            (current.status, current.version),
            (OrderStatus::Complete, 1)
        );
        assert_eq!(outbox(&store).len(), 2, "created and completed only");
    }

    #[test]
    fn a_duplicate_after_a_race_is_unchanged() {
        let store = store();
        let order = placed(&store);
        apply(&store, order.clone(), Trigger::LockExpired, NOW).unwrap();
        let applied = apply(&store, order, Trigger::LockExpired, NOW).unwrap();
        assert!(
            matches!(applied, Applied::Unchanged(ref o) if o.version == 1),
            "{applied:?}"
        );
        assert_eq!(outbox(&store).len(), 2);
    }

    #[test]
    fn store_failures_are_errors() {
        let store = store();
        let order = placed(&store);
        store.db().fail_statements_containing("UPDATE orders");
        assert!(apply(&store, order, Trigger::LockExpired, NOW).is_err());
    }
}
