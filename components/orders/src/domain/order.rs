//! An order, and the event that announces each of its states.

use common::events::{Event, OrderCancelled, OrderCompleted, OrderCreated, OrderTicket, TicketRef};

use super::{ExpiresAt, OrderId, OrderStatus, Payment, Ticket};

/// An order with its ticket (as replicated here).
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// UUID v4.
    pub id: OrderId,
    /// The buyer.
    pub user_id: String,
    /// Where it is in its lifecycle (see [`super::status`]).
    pub status: OrderStatus,
    /// When the lock on the ticket ends unless the order is paid.
    pub expires_at: ExpiresAt,
    /// 0 when placed, +1 on every change.
    pub version: u64,
    /// The ticket it reserves.
    pub ticket: Ticket,
    /// Its payment as payments announced it (paid or refunded), if any.
    pub payment: Option<Payment>,
}

impl Order {
    /// A new order by `user_id` for `ticket`, holding it until `expires_at`.
    pub fn place(user_id: &str, ticket: Ticket, expires_at: ExpiresAt) -> Self {
        Self {
            id: OrderId::generate(),
            user_id: user_id.to_owned(),
            status: OrderStatus::Created,
            expires_at,
            version: 0,
            ticket,
            payment: None,
        }
    }

    /// This order moved to `status`: the next version.
    pub fn with_status(&self, status: OrderStatus) -> Self {
        Self {
            status,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The event that announces this order in its current status: `order:created`,
    /// `order:cancelled` or `order:completed`.
    pub fn event(&self) -> Event {
        let id = self.id.to_string();
        let version = self.version;
        let ticket = TicketRef {
            id: self.ticket.id.clone(),
        };
        match self.status {
            OrderStatus::Created => Event::OrderCreated(OrderCreated {
                id,
                version,
                status: self.status,
                user_id: self.user_id.clone(),
                expires_at: self.expires_at.to_rfc3339(),
                ticket: OrderTicket {
                    id: ticket.id,
                    price_cents: self.ticket.price_cents,
                },
            }),
            OrderStatus::Cancelled => Event::OrderCancelled(OrderCancelled {
                id,
                version,
                ticket,
            }),
            OrderStatus::Complete => Event::OrderCompleted(OrderCompleted {
                id,
                version,
                ticket,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        let ticket = Ticket {
            id: "t1".into(),
            title: "Concert".into(),
            price_cents: 2500,
            user_id: "seller".into(),
            version: 0,
            order_id: None,
        };
        Order::place("buyer", ticket, ExpiresAt::from_unix_seconds(1_795_514_580))
    }

    #[test]
    fn a_placed_order_is_created_at_version_zero() {
        let order = order();
        assert_eq!(order.status, OrderStatus::Created);
        assert_eq!(order.version, 0);
        assert_eq!(OrderId::parse(order.id.as_ref()), Some(order.id.clone()));
        assert_ne!(order.id, self::order().id);
    }

    #[test]
    fn each_change_is_the_next_version() {
        let cancelled = order().with_status(OrderStatus::Cancelled);
        assert_eq!(
            (cancelled.status, cancelled.version),
            (OrderStatus::Cancelled, 1)
        );
    }

    #[test]
    fn placing_announces_order_created() {
        let order = order();
        let Event::OrderCreated(event) = order.event() else {
            panic!("expected order:created");
        };
        assert_eq!(event.id, order.id.as_ref());
        assert_eq!(event.version, 0);
        assert_eq!(event.status, OrderStatus::Created);
        assert_eq!(event.user_id, "buyer");
        assert_eq!(event.expires_at, "2026-11-24T10:03:00Z");
        assert_eq!(
            (event.ticket.id.as_str(), event.ticket.price_cents),
            ("t1", 2500)
        );
    }

    #[test]
    fn cancelling_and_completing_announce_the_new_version() {
        let order = order();
        match order.with_status(OrderStatus::Cancelled).event() {
            Event::OrderCancelled(event) => {
                assert_eq!((event.version, event.ticket.id.as_str()), (1, "t1"));
                assert_eq!(event.id, order.id.as_ref());
            }
            other => panic!("expected order:cancelled, got {other:?}"),
        }
        match order.with_status(OrderStatus::Complete).event() {
            Event::OrderCompleted(event) => {
                assert_eq!((event.version, event.ticket.id.as_str()), (1, "t1"));
            }
            other => panic!("expected order:completed, got {other:?}"),
        }
    }
}
