//! What orders shows of an order's payment (`payment: null | {status, stripeId}`),
//! learnt from the payments service's events.
//!
//! Money is kept only for an order that completes: payments refunds a charge whose
//! order was cancelled (or that paid an order twice) and announces it with
//! `payment:refunded`. Pub/sub may deliver `payment:created` and `payment:refunded`
//! late, twice or in either order, so [`Payment::apply`] converges on the same answer
//! whatever the order of arrival:
//! - a refund of the payment shown (or of a charge when none is shown yet) shows it
//!   refunded, and a late `payment:created` of that charge does not undo it;
//! - a refund of another charge (a second card, given back because the order was
//!   already paid) leaves the payment shown as it is;
//! - a payment that arrives after another charge's refund is the one that counts.

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// The charge is kept: the order is (or is about to be) complete.
    Paid,
    /// The charge was given back.
    Refunded,
}

impl PaymentStatus {
    /// The API and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Refunded => "refunded",
        }
    }

    /// The stored form read back.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "paid" => Some(Self::Paid),
            "refunded" => Some(Self::Refunded),
            _ => None,
        }
    }
}

/// The payment shown on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Paid or refunded.
    pub status: PaymentStatus,
    /// The Stripe PaymentIntent that charged the card (`pi_…`).
    pub stripe_id: String,
}

/// A payments event about one of the order's charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEvent<'a> {
    /// `payment:created`: the charge `stripe_id` paid for the order.
    Created(&'a str),
    /// `payment:refunded`: the charge `stripe_id` was given back.
    Refunded(&'a str),
}

impl Payment {
    /// The payment to show after `event`, given the one shown now (`None`: none yet);
    /// `None` when nothing changes (a duplicate, or a refund of another charge).
    pub fn apply(current: Option<&Payment>, event: PaymentEvent<'_>) -> Option<Payment> {
        let (status, stripe_id) = match event {
            PaymentEvent::Created(stripe_id) => (PaymentStatus::Paid, stripe_id),
            PaymentEvent::Refunded(stripe_id) => (PaymentStatus::Refunded, stripe_id),
        };
        let next = Payment {
            status,
            stripe_id: stripe_id.to_owned(),
        };
        let Some(current) = current else {
            return Some(next);
        };
        let same_charge = current.stripe_id == stripe_id;
        let changes = match (status, current.status) {
            // Refunded is final for a charge; a payment replaces only another's refund.
            (PaymentStatus::Paid, PaymentStatus::Refunded) => !same_charge,
            (PaymentStatus::Refunded, PaymentStatus::Paid) => same_charge,
            (PaymentStatus::Paid, PaymentStatus::Paid)
            | (PaymentStatus::Refunded, PaymentStatus::Refunded) => false,
        };
        changes.then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentEvent::{Created, Refunded};

    fn shown(status: PaymentStatus, stripe_id: &str) -> Payment {
        Payment {
            status,
            stripe_id: stripe_id.into(),
        }
    }

    /// The payment shown after `events`, in order, from none.
    fn after(events: &[PaymentEvent<'_>]) -> Option<Payment> {
        events.iter().fold(None, |current, event| {
            Payment::apply(current.as_ref(), *event).or(current)
        })
    }

    #[test]
    fn a_payment_then_its_refund_in_either_order_ends_refunded() {
        let refunded = Some(shown(PaymentStatus::Refunded, "pi_1"));
        assert_eq!(after(&[Created("pi_1"), Refunded("pi_1")]), refunded);
        assert_eq!(after(&[Refunded("pi_1"), Created("pi_1")]), refunded);
    }

    #[test]
    fn duplicates_change_nothing() {
        let paid = shown(PaymentStatus::Paid, "pi_1");
        assert_eq!(Payment::apply(Some(&paid), Created("pi_1")), None);
        let refunded = shown(PaymentStatus::Refunded, "pi_1");
        assert_eq!(Payment::apply(Some(&refunded), Refunded("pi_1")), None);
        assert_eq!(Payment::apply(Some(&refunded), Created("pi_1")), None);
    }

    #[test]
    fn the_refund_of_a_second_charge_leaves_the_kept_payment() {
        let kept = Some(shown(PaymentStatus::Paid, "pi_1"));
        assert_eq!(after(&[Created("pi_1"), Refunded("pi_2")]), kept);
        assert_eq!(after(&[Refunded("pi_2"), Created("pi_1")]), kept);
    }

    #[test]
    fn a_first_payment_is_shown_paid() {
        assert_eq!(
            after(&[Created("pi_1")]),
            Some(shown(PaymentStatus::Paid, "pi_1"))
        );
    }

    #[test]
    fn statuses_round_trip() {
        for status in [PaymentStatus::Paid, PaymentStatus::Refunded] {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PaymentStatus::parse("pending"), None);
    }
}
