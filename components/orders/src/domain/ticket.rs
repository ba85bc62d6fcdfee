//! The orders service's replica of a ticket, fed by `ticket:created` and
//! `ticket:updated`.
//!
//! The tickets service owns tickets and bumps `version` by one per change. Redis may
//! deliver its events late, twice, or out of order, so the replica takes an event only
//! when it is newer than what it holds ([`Ticket::replace`]): an update that overtakes
//! the create is applied (the create is then ignored), and an older or repeated version
//! leaves the replica as it is. A `ticket:created` always carries version 0, so for it
//! the rule reads "insert if absent".

use common::events::{TicketCreated, TicketUpdated, is_newer};

use super::{Lifecycle, OrderStatus};

/// A ticket as this service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The tickets service's id.
    pub id: String,
    /// Title shown with the order.
    pub title: String,
    /// Price in cents.
    pub price_cents: u64,
    /// The seller.
    pub user_id: String,
    /// The tickets service's version of this ticket.
    pub version: u64,
    /// The order holding the ticket, according to the tickets service.
    pub order_id: Option<String>,
}

impl Ticket {
    /// The replica to store after `incoming` arrives, or `None` to keep `current`:
    /// `incoming` wins only over nothing or over an older version.
    pub fn replace(current: Option<&Ticket>, incoming: Ticket) -> Option<Ticket> {
        is_newer(incoming.version, current.map(|current| current.version)).then_some(incoming)
    }

    /// The price as the JSON `price` (a number of currency units, e.g. 10.99).
    pub fn price(&self) -> f64 {
        // Not exact in binary, but serde_json writes the shortest form that reads back
        // as the same f64, which for cents / 100 is the two-decimal price.
        self.price_cents as f64 / 100.0
    }

    /// Whether another order holds this ticket according to the tickets service.
    ///
    /// `holder_status` is the status of [`Ticket::order_id`]'s order in this service, if
    /// known. An order cancelled here no longer holds the ticket even while the tickets
    /// service has yet to release it (its `order:cancelled` is on the way); an order this
    /// service does not know is taken at the tickets service's word.
    pub fn is_held(&self, holder_status: Option<OrderStatus>) -> bool {
        self.order_id.is_some() && holder_status.is_none_or(Lifecycle::holds_ticket)
    }
}

impl From<TicketCreated> for Ticket {
    fn from(event: TicketCreated) -> Self {
        Self {
            id: event.id,
            title: event.title,
            price_cents: event.price_cents,
            user_id: event.user_id,
            version: event.version,
            order_id: None,
        }
    }
}

impl From<TicketUpdated> for Ticket {
    fn from(event: TicketUpdated) -> Self {
        Self {
            id: event.id,
            title: event.title,
            price_cents: event.price_cents,
            user_id: event.user_id,
            version: event.version,
            order_id: event.order_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(version: u64, order_id: Option<&str>) -> Ticket {
        Ticket {
            id: "t1".into(),
            title: format!("Concert v{version}"),
            price_cents: 1099,
            user_id: "seller".into(),
            version,
            order_id: order_id.map(str::to_owned),
        }
    }

    #[test]
    fn the_first_event_creates_the_replica() {
        assert_eq!(
            Ticket::replace(None, ticket(0, None)),
            Some(ticket(0, None))
        );
        // An update that overtook its create is applied all the same.
        assert_eq!(
            Ticket::replace(None, ticket(2, Some("o1"))),
            Some(ticket(2, Some("o1")))
        );
    }

    #[test]
    fn newer_versions_replace_the_replica() {
        let current = ticket(1, Some("o1"));
        assert_eq!(
            Ticket::replace(Some(&current), ticket(2, None)),
            Some(ticket(2, None))
        );
    }

    #[test]
    fn duplicates_and_older_versions_are_ignored() {
        let current = ticket(2, Some("o1"));
        for stale in [ticket(2, None), ticket(1, None), ticket(0, None)] {
            assert_eq!(Ticket::replace(Some(&current), stale), None);
        }
    }

    #[test]
    fn events_become_replicas() {
        let created = TicketCreated {
            id: "t1".into(),
            version: 0,
            title: "Concert v0".into(),
            price_cents: 1099,
            user_id: "seller".into(),
        };
        assert_eq!(Ticket::from(created), ticket(0, None));
        let updated = TicketUpdated {
            id: "t1".into(),
            version: 3,
            title: "Concert v3".into(),
            price_cents: 1099,
            user_id: "seller".into(),
            order_id: Some("o1".into()),
        };
        assert_eq!(Ticket::from(updated), ticket(3, Some("o1")));
    }

    #[test]
    fn prices_are_cents_over_one_hundred() {
        assert_eq!(ticket(0, None).price(), 10.99);
        let json = serde_json::to_string(&ticket(0, None).price()).unwrap();
        assert_eq!(json, "10.99");
    }

    #[test]
    fn a_ticket_is_held_while_its_order_holds_it() {
        let free = ticket(0, None);
        assert!(!free.is_held(None));
        let held = ticket(1, Some("o1"));
        assert!(held.is_held(None), "an order unknown here");
        assert!(held.is_held(Some(OrderStatus::Created)));
        assert!(held.is_held(Some(OrderStatus::Complete)));
        assert!(!held.is_held(Some(OrderStatus::Cancelled)));
    }
}
