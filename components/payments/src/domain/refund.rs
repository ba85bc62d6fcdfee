//! The money rule: a charge is kept only for an order that completes.
//!
//! Replicas lag, so payments can charge an order that orders has just cancelled (the
//! buyer cancelled and paid in the same instant, or the lock window ended while the card
//! was being charged), and two cards can both succeed for one order. Whichever arrives
//! first at payments, the cancellation or the success, the charge ends up here as a
//! [`Refund`] to make, queued in the same transaction as the fact that calls for it
//! (see `store.rs`: `record` and `replicate`), and made by `crate::refunds` through
//! Stripe's Refunds API, retried while Stripe is unreachable.

use common::events::PaymentRefunded;
use common::trace::TraceParent;

use super::OrderId;

/// Why a charge is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// The order was cancelled (by its buyer, or when its lock window ended).
    OrderCancelled,
    /// Another charge already pays for the order.
    AlreadyPaid,
}

impl RefundReason {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderCancelled => "order_cancelled",
            Self::AlreadyPaid => "already_paid",
        }
    }

    /// The stored form read back.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "order_cancelled" => Some(Self::OrderCancelled),
            "already_paid" => Some(Self::AlreadyPaid),
            _ => None,
        }
    }
}

/// A charge to give back, as queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The PaymentIntent that charged the card (`pi_…`): at most one refund each.
    pub stripe_id: String,
    /// Our payment id (`payment:created`'s, when the charge was recorded as the payment).
    pub payment_id: String,
    /// The order it was meant to pay for.
    pub order_id: OrderId,
    /// Why it is given back.
    pub reason: RefundReason,
    /// Failed tries so far.
    pub attempts: u32,
    /// The trace context of what queued it, which its `payment:refunded` carries.
    pub traceparent: Option<TraceParent>,
}

impl Refund {
    /// Stripe's `Idempotency-Key` for refunding this charge: derived from the
    /// PaymentIntent, so every replica and every retry asks for the same one refund.
    pub fn idempotency_key(&self) -> String {
        format!("refund-{}", self.stripe_id)
    }

    /// The `payment:refunded` event once Stripe made refund `refund_id`.
    pub fn event(&self, refund_id: &str) -> PaymentRefunded {
        PaymentRefunded {
            id: self.payment_id.clone(),
            order_id: self.order_id.to_string(),
            stripe_id: self.stripe_id.clone(),
            refund_id: refund_id.to_owned(),
        }
    }
}

/// The longest wait between two tries.
pub const MAX_RETRY_DELAY_SECONDS: u64 = 300;

/// Seconds to wait before the next try after `failures` failed ones: 2, 4, 8, … up to
/// [`MAX_RETRY_DELAY_SECONDS`], so a Stripe outage is not hammered and a short one
/// costs seconds.
pub fn retry_delay(failures: u32) -> u64 {
    2u64.saturating_pow(failures.max(1))
        .min(MAX_RETRY_DELAY_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refund() -> Refund {
        Refund {
            stripe_id: "pi_1".into(),
            payment_id: "p1".into(),
            order_id: OrderId::parse("9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5").unwrap(),
            reason: RefundReason::OrderCancelled,
            attempts: 0,
            traceparent: None,
        }
    }

    #[test]
    fn one_key_per_charge() {
        let refund = refund();
        assert_eq!(refund.idempotency_key(), "refund-pi_1");
        let retried = Refund {
            attempts: 3,
            ..refund.clone()
        };
        assert_eq!(retried.idempotency_key(), refund.idempotency_key());
    }

    #[test]
    fn the_event_names_payment_order_charge_and_refund() {
        assert_eq!(
            refund().event("re_1"),
            PaymentRefunded {
                id: "p1".into(),
                order_id: "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5".into(),
                stripe_id: "pi_1".into(),
                refund_id: "re_1".into(),
            }
        );
    }

    #[test]
    fn retries_back_off_up_to_a_ceiling() {
        let delays: Vec<u64> = (1..=10).map(retry_delay).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(retry_delay(0), 2);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_DELAY_SECONDS);
    }

    #[test]
    fn reasons_round_trip() {
        for reason in [RefundReason::OrderCancelled, RefundReason::AlreadyPaid] {
            assert_eq!(RefundReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(RefundReason::parse("fraud"), None);
    }
}
