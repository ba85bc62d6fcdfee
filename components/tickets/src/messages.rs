//! Events from Redis: `order:created` reserves a ticket, `order:cancelled` releases it.
//!
//! Every replica receives every message, and pub/sub may repeat or reorder them, so
//! each effect is a conditional change in one transaction (see
//! [`Tickets::apply_order_event`]): a duplicate changes nothing and emits nothing, a
//! ticket held by another order stays with it, and only the holding order releases.
//! A message that is not an event this service handles is logged and dropped: an error
//! would only make the trigger log it again, and retrying cannot make it valid.

use common::events::{self, Event, OrderCancelled, OrderCreated, OrderStatus};
use common::sqlite::Database;

use crate::domain::Unchanged;
use crate::store::{OrderEffect, Tickets};

/// Handles one Redis message. Errors are failures to reach the database only.
pub fn handle(payload: &[u8], tickets: &Tickets<impl Database>, now: u64) -> anyhow::Result<()> {
    match events::decode_or_skip("tickets", payload) {
        Some(Event::OrderCreated(order)) => reserve(&order, tickets, now),
        Some(Event::OrderCancelled(order)) => release(&order, tickets, now),
        // Other channels are not routed here; nothing to do if one is.
        Some(other) => {
            events::skip_unconsumed("tickets", &other);
            Ok(())
        }
        None => Ok(()),
    }
}

fn reserve(order: &OrderCreated, tickets: &Tickets<impl Database>, now: u64) -> anyhow::Result<()> {
    if order.status != OrderStatus::Created {
        eprintln!(
            "tickets: ignoring order:created for order {} with status {}",
            order.id, order.status
        );
        return Ok(());
    }
    let ticket_id = &order.ticket.id;
    let effect = tickets.apply_order_event(&order.id, order.version, ticket_id, now, |ticket| {
        ticket.reserve(&order.id)
    })?;
    match effect {
        OrderEffect::Unchanged(Unchanged::HeldByAnother(holder)) => eprintln!(
            "tickets: order {} waits for ticket {ticket_id}: order {holder} holds it until \
             its cancellation arrives",
            order.id
        ),
        // Reserved now, or a duplicate delivery, which must change nothing.
        OrderEffect::Changed(_) | OrderEffect::Stale | OrderEffect::Unchanged(_) => {}
        OrderEffect::UnknownTicket => {
            eprintln!(
                "tickets: order {} names unknown ticket {ticket_id}",
                order.id
            );
        }
    }
    Ok(())
}

fn release(
    order: &OrderCancelled,
    tickets: &Tickets<impl Database>,
    now: u64,
) -> anyhow::Result<()> {
    let ticket_id = &order.ticket.id;
    let effect = tickets.apply_order_event(&order.id, order.version, ticket_id, now, |ticket| {
        ticket.release(&order.id)
    })?;
    if effect == OrderEffect::UnknownTicket {
        eprintln!(
            "tickets: cancelled order {} names unknown ticket {ticket_id}",
            order.id
        );
    }
    // Unchanged::NotHeld is the normal case of a late cancel: another order (or none)
    // holds the ticket now, and it must stay that way.
    Ok(())
}

#[cfg(test)]
mod tests;
