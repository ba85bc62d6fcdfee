//! A ticket and the rules of its life: listed by a seller at version 0, edited only by
//! its seller and only while no order holds it, held by at most one order at a time.
//! Every change bumps `version` by exactly one.

use common::events::{Event, TicketCreated, TicketUpdated};

use super::{PriceCents, Title};

/// A ticket for sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// UUID v4.
    pub id: String,
    /// What is being sold.
    pub title: Title,
    /// Asking price.
    pub price: PriceCents,
    /// The seller.
    pub user_id: String,
    /// 0 when listed, +1 on every change.
    pub version: u64,
    /// The order holding the ticket, if any.
    pub order_id: Option<String>,
}

/// Why a ticket cannot be edited, in the order the contract checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditRefusal {
    /// An order holds the ticket (400 `Cannot edit a reserved ticket`).
    Reserved,
    /// The editor is not the seller (401).
    NotOwner,
}

/// Why an order event leaves a ticket as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unchanged {
    /// This order already holds the ticket (a duplicate `order:created`).
    AlreadyHeld,
    /// Another order holds the ticket.
    HeldByAnother(String),
    /// This order does not hold the ticket (it is free, or another order holds it).
    NotHeld,
}

impl Ticket {
    /// A new listing by `seller`, at version 0 and not reserved.
    pub fn new(id: String, title: Title, price: PriceCents, seller: &str) -> Self {
        Self {
            id,
            title,
            price,
            user_id: seller.to_owned(),
            version: 0,
            order_id: None,
        }
    }

    /// Whether an order holds the ticket.
    pub fn is_reserved(&self) -> bool {
        self.order_id.is_some()
    }

    /// The ticket with a new title and price, edited by `editor`.
    pub fn edit(&self, editor: &str, title: Title, price: PriceCents) -> Result<Self, EditRefusal> {
        if self.is_reserved() {
            return Err(EditRefusal::Reserved);
        }
        if self.user_id != editor {
            return Err(EditRefusal::NotOwner);
        }
        Ok(Self {
            title,
            price,
            ..self.next_version()
        })
    }

    /// The ticket held by `order_id`, if it is free.
    pub fn reserve(&self, order_id: &str) -> Result<Self, Unchanged> {
        match self.order_id.as_deref() {
            None => Ok(Self {
                order_id: Some(order_id.to_owned()),
                ..self.next_version()
            }),
            Some(holder) if holder == order_id => Err(Unchanged::AlreadyHeld),
            Some(holder) => Err(Unchanged::HeldByAnother(holder.to_owned())),
        }
    }

    /// The ticket freed, if `order_id` holds it; a late cancel of an order that no
    /// longer holds the ticket must not free it from the order that does.
    pub fn release(&self, order_id: &str) -> Result<Self, Unchanged> {
        if self.order_id.as_deref() != Some(order_id) {
            return Err(Unchanged::NotHeld);
        }
        Ok(Self {
            order_id: None,
            ..self.next_version()
        })
    }

    fn next_version(&self) -> Self {
        Self {
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// `ticket:created` for this ticket.
    pub fn created_event(&self) -> Event {
        TicketCreated {
            id: self.id.clone(),
            version: self.version,
            title: self.title.as_ref().to_owned(),
            price_cents: self.price.cents(),
            user_id: self.user_id.clone(),
        }
        .into()
    }

    /// `ticket:updated` for this ticket.
    pub fn updated_event(&self) -> Event {
        TicketUpdated {
            id: self.id.clone(),
            version: self.version,
            title: self.title.as_ref().to_owned(),
            price_cents: self.price.cents(),
            user_id: self.user_id.clone(),
            order_id: self.order_id.clone(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(raw: &str) -> Title {
        Title::parse(Some(raw)).unwrap()
    }

    fn price(cents: u64) -> PriceCents {
        PriceCents::from_cents(cents).unwrap()
    }

    fn listed() -> Ticket {
        Ticket::new("t1".into(), title("Concert"), price(1099), "seller")
    }

    #[test]
    fn a_new_ticket_is_free_at_version_0() {
        let ticket = listed();
        assert_eq!(ticket.version, 0);
        assert!(!ticket.is_reserved());
        assert_eq!(ticket.user_id, "seller");
    }

    #[test]
    fn the_seller_edits_a_free_ticket() {
        let edited = listed()
            .edit("seller", title("Opera"), price(5000))
            .unwrap();
        assert_eq!(edited.title, title("Opera"));
        assert_eq!(edited.price, price(5000));
        assert_eq!(edited.version, 1);
        assert_eq!(
            (edited.id.as_str(), edited.user_id.as_str()),
            ("t1", "seller")
        );
    }

    #[test]
    fn reserved_is_checked_before_ownership() {
        let reserved = listed().reserve("o1").unwrap();
        assert_eq!(
            reserved.edit("someone else", title("x"), price(1)),
            Err(EditRefusal::Reserved)
        );
        assert_eq!(
            reserved.edit("seller", title("x"), price(1)),
            Err(EditRefusal::Reserved)
        );
        assert_eq!(
            listed().edit("someone else", title("x"), price(1)),
            Err(EditRefusal::NotOwner)
        );
    }

    #[test]
    fn one_order_at_a_time_holds_a_ticket() {
        let reserved = listed().reserve("o1").unwrap();
        assert_eq!(reserved.order_id.as_deref(), Some("o1"));
        assert_eq!(reserved.version, 1);
        assert_eq!(reserved.reserve("o1"), Err(Unchanged::AlreadyHeld));
        assert_eq!(
            reserved.reserve("o2"),
            Err(Unchanged::HeldByAnother("o1".into()))
        );
    }

    #[test]
    fn only_the_holding_order_releases() {
        let reserved = listed().reserve("o1").unwrap();
        assert_eq!(reserved.release("o2"), Err(Unchanged::NotHeld));
        assert_eq!(listed().release("o1"), Err(Unchanged::NotHeld));
        let released = reserved.release("o1").unwrap();
        assert_eq!(released.order_id, None);
        assert_eq!(released.version, 2);
    }

    #[test]
    fn events_carry_the_whole_state() {
        let reserved = listed().reserve("o1").unwrap();
        assert_eq!(
            reserved.updated_event(),
            Event::TicketUpdated(TicketUpdated {
                id: "t1".into(),
                version: 1,
                title: "Concert".into(),
                price_cents: 1099,
                user_id: "seller".into(),
                order_id: Some("o1".into()),
            })
        );
        assert_eq!(listed().created_event().channel(), "ticket:created");
    }
}
