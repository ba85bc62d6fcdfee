//! The order lifecycle: what happens to an order when its buyer cancels it, when its
//! lock window expires, and when it is paid. This is the one place these rules live;
//! the routes and the event consumers only ask [`Lifecycle::on`] (through
//! `crate::update::apply`, which also settles races) and carry out the answer.
//!
//! ```text
//!            BuyerCancels / LockExpired
//!   created ───────────────────────────► cancelled
//!      │
//!      │ PaymentReceived
//!      ▼
//!   complete
//! ```
//!
//! `cancelled` and `complete` are final. Every change bumps the order's version by one
//! and publishes an event (`order:cancelled`, `order:completed`); a trigger that finds
//! the order already where it would lead changes nothing, so duplicate deliveries and
//! retried requests are harmless.
//!
//! - The buyer cancels: a `created` order is cancelled; an already `cancelled` one stays
//!   as it is (204, no event); a `complete` (paid) order cannot be cancelled (400).
//! - The lock window expires (`expiration:complete`): a `created` order is cancelled,
//!   which releases its ticket; a paid or already cancelled order is left alone.
//! - A payment arrives (`payment:created`): a `created` order becomes `complete`, even
//!   if its deadline has just passed (payments refuses to charge expired orders, so a
//!   payment that got through was made in time). A payment for an order that is
//!   already `cancelled` does NOT revive it: the ticket may already be someone else's.
//!   It is reported as [`Refusal::PaidAfterCancellation`]: the payments service refunds
//!   the charge once it sees the cancellation (money is kept only for an order that
//!   completes), and orders announces the cancellation again so that a payments
//!   replica that missed it still does (`crate::messages`).

pub use common::events::OrderStatus;

/// Something that can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// DELETE /api/orders/:id by the buyer.
    BuyerCancels,
    /// `expiration:complete`: the lock window has passed.
    LockExpired,
    /// `payment:created`: the buyer has paid.
    PaymentReceived,
}

/// What a trigger does to an order in a given status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to this status (version + 1, one event).
    To(OrderStatus),
    /// Nothing to do: the order is already where the trigger would take it, or the
    /// trigger no longer matters (a paid order's lock expiring).
    Unchanged,
    /// The trigger is not allowed in this status; nothing changes.
    Refused(Refusal),
}

/// Why a trigger was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A paid order cannot be cancelled by its buyer (400 `Cannot cancel a completed order`).
    CancelCompleted,
    /// A payment arrived for an order that was already cancelled (usually by expiry):
    /// the order stays cancelled and payments refunds the charge.
    PaidAfterCancellation,
}

/// The lifecycle rules, on the status type generated from `wit/events.wit`.
pub trait Lifecycle: Sized {
    /// What `trigger` does to an order in this status.
    fn on(self, trigger: Trigger) -> Transition;
    /// Whether an order in this status holds its ticket (keeps others from reserving it).
    fn holds_ticket(self) -> bool;
}

impl Lifecycle for OrderStatus {
    fn on(self, trigger: Trigger) -> Transition {
        use OrderStatus::{Cancelled, Complete, Created};
        use Trigger::{BuyerCancels, LockExpired, PaymentReceived};
        match (self, trigger) {
            (Created, BuyerCancels | LockExpired) => Transition::To(Cancelled),
            (Created, PaymentReceived) => Transition::To(Complete),
            (Cancelled, BuyerCancels | LockExpired) => Transition::Unchanged,
            (Cancelled, PaymentReceived) => Transition::Refused(Refusal::PaidAfterCancellation),
            (Complete, BuyerCancels) => Transition::Refused(Refusal::CancelCompleted),
            (Complete, LockExpired | PaymentReceived) => Transition::Unchanged,
        }
    }

    fn holds_ticket(self) -> bool {
        matches!(self, OrderStatus::Created | OrderStatus::Complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::{Cancelled, Complete, Created};
    use Trigger::{BuyerCancels, LockExpired, PaymentReceived};

    #[test]
    fn a_created_order_can_be_cancelled_expired_or_paid() {
        assert_eq!(Created.on(BuyerCancels), Transition::To(Cancelled));
        assert_eq!(Created.on(LockExpired), Transition::To(Cancelled));
        assert_eq!(Created.on(PaymentReceived), Transition::To(Complete));
    }

    #[test]
    fn cancelling_twice_or_expiring_a_cancelled_order_changes_nothing() {
        assert_eq!(Cancelled.on(BuyerCancels), Transition::Unchanged);
        assert_eq!(Cancelled.on(LockExpired), Transition::Unchanged);
    }

    #[test]
    fn a_paid_order_ignores_expiry_and_duplicate_payments() {
        assert_eq!(Complete.on(LockExpired), Transition::Unchanged);
        assert_eq!(Complete.on(PaymentReceived), Transition::Unchanged);
    }

    #[test]
    fn a_paid_order_cannot_be_cancelled_by_its_buyer() {
        assert_eq!(
            Complete.on(BuyerCancels),
            Transition::Refused(Refusal::CancelCompleted)
        );
    }

    #[test]
    fn a_payment_does_not_revive_a_cancelled_order() {
        assert_eq!(
            Cancelled.on(PaymentReceived),
            Transition::Refused(Refusal::PaidAfterCancellation)
        );
    }

    #[test]
    fn final_states_never_move() {
        for status in [Cancelled, Complete] {
            for trigger in [BuyerCancels, LockExpired, PaymentReceived] {
                assert!(
                    !matches!(status.on(trigger), Transition::To(_)),
                    "{status:?} on {trigger:?}"
                );
            }
        }
    }

    #[test]
    fn only_live_and_paid_orders_hold_their_ticket() {
        assert!(Created.holds_ticket());
        assert!(Complete.holds_ticket());
        assert!(!Cancelled.holds_ticket());
    }
}
