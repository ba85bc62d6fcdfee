//! The replica of an order, built from the orders service's events, and what it says
//! about paying for the order.
//!
//! `order:created` carries everything payments needs (buyer, price, deadline), which
//! never changes afterwards; `order:cancelled` and `order:completed` carry only a new
//! status and version. Pub/sub may deliver them twice, late or out of order, so
//! [`Order::apply`] takes a status only from a newer version, and a status event that
//! overtakes its `order:created` leaves a replica without [`Terms`] that the late
//! `order:created` completes (without rolling the status back).

use common::events::OrderStatus;

use super::OrderId;

/// What `order:created` fixes for the lifetime of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The buyer, the only user who may pay.
    pub user_id: String,
    /// The amount to charge, in cents.
    pub price_cents: u64,
    /// The deadline to pay, Unix seconds.
    pub expires_at: u64,
}

/// The replica of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The order's id.
    pub id: OrderId,
    /// The newest version seen in an event.
    pub version: u64,
    /// The status at that version.
    pub status: OrderStatus,
    /// `None` until `order:created` has arrived.
    pub terms: Option<Terms>,
}

/// What one order event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `order:created`.
    Created {
        /// The event's version.
        version: u64,
        /// The status it announces (normally `created`).
        status: OrderStatus,
        /// Buyer, price and deadline.
        terms: Terms,
    },
    /// `order:cancelled` or `order:completed`.
    Status {
        /// The event's version.
        version: u64,
        /// `cancelled` or `complete`.
        status: OrderStatus,
    },
}

/// Why an order cannot be paid for, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The order was cancelled (by the buyer or on expiry).
    Cancelled,
    /// The deadline has passed (the cancellation may still be on its way).
    Expired,
    /// A payment is recorded, or the order is complete.
    AlreadyPaid,
}

impl Refusal {
    /// The 400 message of the contract.
    pub fn message(self) -> &'static str {
        match self {
            Self::Cancelled => "Cannot pay for an cancelled order",
            Self::Expired => "Order has expired",
            Self::AlreadyPaid => "Order is already paid",
        }
    }
}

impl Order {
    /// The replica after `change` to `current` (`None`: no replica yet), or `None` when
    /// the event changes nothing (a duplicate, or older than the replica).
    pub fn apply(current: Option<&Order>, id: &OrderId, change: Change) -> Option<Order> {
        let (version, status, terms) = match change {
            Change::Created {
                version,
                status,
                terms,
            } => (version, status, Some(terms)),
            Change::Status { version, status } => (version, status, None),
        };
        let Some(current) = current else {
            return Some(Order {
                id: id.clone(),
                version,
                status,
                terms,
            });
        };
        let newer = version > current.version;
        let completes_terms = current.terms.is_none() && terms.is_some();
        if !newer && !completes_terms {
            return None;
        }
        Some(Order {
            id: current.id.clone(),
            version: version.max(current.version),
            status: if newer { status } else { current.status },
            terms: current.terms.clone().or(terms),
        })
    }

    /// Why `self` cannot be paid for at `now` (Unix seconds), `paid` saying whether a
    /// payment is already recorded; `None` when it can.
    pub fn refusal(&self, terms: &Terms, paid: bool, now: u64) -> Option<Refusal> {
        if self.status == OrderStatus::Cancelled {
            Some(Refusal::Cancelled)
        } else if now > terms.expires_at {
            Some(Refusal::Expired)
        } else if paid || self.status == OrderStatus::Complete {
            Some(Refusal::AlreadyPaid)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> OrderId {
        OrderId::parse("9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5").unwrap()
    }

    fn terms() -> Terms {
        Terms {
            user_id: "buyer".into(),
            price_cents: 1099,
            expires_at: 1_000,
        }
    }

    fn created() -> Change {
        Change::Created {
            version: 0,
            status: OrderStatus::Created,
            terms: terms(),
        }
    }

    fn status(version: u64, status: OrderStatus) -> Change {
        Change::Status { version, status }
    }

    fn order(version: u64, status: OrderStatus, terms: Option<Terms>) -> Order {
        Order {
            id: id(),
            version,
            status,
            terms,
        }
    }

    #[test]
    fn created_makes_the_replica() {
        assert_eq!(
            Order::apply(None, &id(), created()),
            Some(order(0, OrderStatus::Created, Some(terms())))
        );
    }

    #[test]
    fn newer_status_events_apply_and_duplicates_do_not() {
        let placed = order(0, OrderStatus::Created, Some(terms()));
        let cancelled = Order::apply(Some(&placed), &id(), status(1, OrderStatus::Cancelled));
        assert_eq!(
            cancelled,
            Some(order(1, OrderStatus::Cancelled, Some(terms())))
        );
        let cancelled = cancelled.unwrap();
        assert_eq!(
            Order::apply(Some(&cancelled), &id(), status(1, OrderStatus::Cancelled)),
            None
        );
        assert_eq!(Order::apply(Some(&cancelled), &id(), created()), None);
    }

    #[test]
    fn an_older_status_event_is_ignored() {
        let complete = order(2, OrderStatus::Complete, Some(terms()));
        assert_eq!(
            Order::apply(Some(&complete), &id(), status(1, OrderStatus::Cancelled)),
            None
        );
    }

    #[test]
    fn a_status_that_overtakes_created_keeps_its_status_and_gets_the_terms() {
        let early = Order::apply(None, &id(), status(1, OrderStatus::Complete)).unwrap();
        assert_eq!(early, order(1, OrderStatus::Complete, None));

        let completed = Order::apply(Some(&early), &id(), created()).unwrap();
        assert_eq!(completed, order(1, OrderStatus::Complete, Some(terms())));
        assert_eq!(Order::apply(Some(&completed), &id(), created()), None);
    }

    #[test]
    fn refusals_come_in_the_contracts_order() {
        let terms = terms();
        let at = |status| order(0, status, Some(terms.clone()));
        let created = at(OrderStatus::Created);
        assert_eq!(
            created.refusal(&terms, false, 1_000),
            None,
            "the last second counts"
        );
        assert_eq!(
            created.refusal(&terms, false, 1_001),
            Some(Refusal::Expired)
        );
        assert_eq!(
            created.refusal(&terms, true, 999),
            Some(Refusal::AlreadyPaid)
        );
        assert_eq!(
            at(OrderStatus::Complete).refusal(&terms, false, 999),
            Some(Refusal::AlreadyPaid)
        );
        assert_eq!(
            at(OrderStatus::Cancelled).refusal(&terms, true, 5_000),
            Some(Refusal::Cancelled)
        );
        assert_eq!(
            at(OrderStatus::Complete).refusal(&terms, true, 5_000),
            Some(Refusal::Expired)
        );
    }

    #[test]
    fn refusal_messages_are_the_contracts() {
        assert_eq!(
            Refusal::Cancelled.message(),
            "Cannot pay for an cancelled order"
        );
        assert_eq!(Refusal::Expired.message(), "Order has expired");
        assert_eq!(Refusal::AlreadyPaid.message(), "Order is already paid");
    }
}
