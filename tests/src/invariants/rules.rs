//! The rules a settled marketplace keeps, each a function from a [`Snapshot`] (and what
//! the workload did) to the violations it finds.

use std::collections::{BTreeMap, BTreeSet};

use super::snapshot::Snapshot;
use super::{Rule, Violation};
use crate::workload::Record;

/// How long past its deadline an order may still be `created`: the expiry travels
/// through Redis and orders (which also cancels overdue orders itself after 2 s).
const EXPIRY_GRACE_SECONDS: i64 = 5;

/// Every rule, on one snapshot.
pub fn evaluate(snapshot: &Snapshot, record: &Record) -> Vec<Violation> {
    let mut violations = Vec::new();
    no_ticket_sold_twice(snapshot, &mut violations);
    paid_orders_hold_their_ticket(snapshot, record, &mut violations);
    money_only_for_complete_orders(snapshot, &mut violations);
    unpaid_orders_expire(snapshot, &mut violations);
    tickets_held_by_their_holder(snapshot, &mut violations);
    replicas_converged(snapshot, &mut violations);
    expirations_once(snapshot, record, &mut violations);
    violations
}

fn violation(rule: Rule, ids: &[&str], detail: String) -> Violation {
    Violation {
        rule,
        ids: ids.iter().map(|id| id.to_string()).collect(),
        detail,
    }
}

/// At most one `complete` order per ticket.
fn no_ticket_sold_twice(s: &Snapshot, out: &mut Vec<Violation>) {
    let mut sold: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, order) in &s.orders {
        if order.status == "complete" {
            sold.entry(&order.ticket_id).or_default().push(id);
        }
    }
    for (ticket, orders) in sold.into_iter().filter(|(_, o)| o.len() > 1) {
        let mut ids = vec![ticket];
        ids.extend(&orders);
        let detail = format!("ticket {ticket} sold to {} orders", orders.len());
        out.push(violation(Rule::TicketSoldTwice, &ids, detail));
    }
}

/// The orders someone paid for: a 201 from payments, a payment recorded by payments, or
/// a `paid` payment shown on the order.
fn paid_orders<'a>(s: &'a Snapshot, record: &'a Record) -> BTreeSet<&'a str> {
    let shown_paid = s
        .api_orders
        .iter()
        .filter(|(_, order)| order["payment"]["status"] == "paid")
        .map(|(id, _)| id.as_str());
    record
        .payments
        .iter()
        .map(|p| p.order_id.as_str())
        .chain(s.payments.keys().map(String::as_str))
        .chain(shown_paid)
        .collect()
}

/// A paid order is complete and holds its ticket, unless it ended cancelled and its
/// payment was refunded.
fn paid_orders_hold_their_ticket(s: &Snapshot, record: &Record, out: &mut Vec<Violation>) {
    for id in paid_orders(s, record) {
        let Some(order) = s.orders.get(id) else {
            let detail = "paid, but orders does not know the order".to_owned();
            out.push(violation(Rule::PaidOrderNotComplete, &[id], detail));
            continue;
        };
        let shown = s.api_orders.get(id).map(|o| &o["payment"]["status"]);
        match order.status.as_str() {
            "complete" => {
                let holder = s
                    .tickets
                    .get(&order.ticket_id)
                    .and_then(|t| t.order_id.as_deref());
                let api_holder = s
                    .api_tickets
                    .get(&order.ticket_id)
                    .and_then(|t| t["orderId"].as_str());
                if holder != Some(id) || api_holder != Some(id) {
                    let detail = format!(
                        "complete, but ticket {} is held by {holder:?} (API: {api_holder:?})",
                        order.ticket_id
                    );
                    out.push(violation(
                        Rule::PaidTicketNotHeld,
                        &[id, &order.ticket_id],
                        detail,
                    ));
                }
            }
            "cancelled" => {
                let refunded = s
                    .refunds
                    .iter()
                    .any(|r| r.order_id == id && r.refund_id.is_some());
                if !refunded || shown.is_some_and(|status| status != "refunded") {
                    let detail = format!(
                        "paid and cancelled, but refund made: {refunded}, order shows payment {:?}",
                        shown
                    );
                    out.push(violation(Rule::CancelledPaymentNotRefunded, &[id], detail));
                }
            }
            status => {
                let detail = format!("paid, but the order is {status}");
                out.push(violation(Rule::PaidOrderNotComplete, &[id], detail));
            }
        }
    }
}

/// Money is kept (charged and not refunded) exactly for the complete orders, at their
/// ticket's price.
fn money_only_for_complete_orders(s: &Snapshot, out: &mut Vec<Violation>) {
    let mut complete_charges: BTreeMap<&str, &str> = BTreeMap::new();
    for id in s
        .orders
        .iter()
        .filter(|(_, o)| o.status == "complete")
        .map(|(id, _)| id)
    {
        match s.order_payments.get(id) {
            Some((status, stripe_id)) if status == "paid" => {
                complete_charges.insert(stripe_id, id);
            }
            other => {
                let detail = format!("complete, but its payment is {other:?}");
                out.push(violation(Rule::TicketWithoutMoney, &[id], detail));
            }
        }
    }
    let kept: BTreeMap<&str, i64> = s.money.kept().map(|(id, a)| (id.as_str(), *a)).collect();
    for (stripe_id, amount) in &kept {
        match complete_charges.get(stripe_id) {
            None => {
                let detail = format!("{amount} cents charged and kept, for no complete order");
                out.push(violation(Rule::MoneyWithoutTicket, &[stripe_id], detail));
            }
            Some(order_id) => {
                let price = s
                    .orders
                    .get(*order_id)
                    .and_then(|o| s.tickets.get(&o.ticket_id))
                    .map(|t| t.price_cents);
                if price != Some(*amount) {
                    let detail = format!("charged {amount} cents for a ticket of {price:?}");
                    out.push(violation(Rule::WrongAmount, &[order_id, stripe_id], detail));
                }
            }
        }
    }
    for (stripe_id, order_id) in &complete_charges {
        if !kept.contains_key(stripe_id) {
            let detail = format!("complete with charge {stripe_id}, which Stripe does not keep");
            out.push(violation(
                Rule::TicketWithoutMoney,
                &[order_id, stripe_id],
                detail,
            ));
        }
    }
}

/// No order is still waiting for payment after its window.
fn unpaid_orders_expire(s: &Snapshot, out: &mut Vec<Violation>) {
    for (id, order) in &s.orders {
        let overdue = s.now - order.expires_at;
        if order.status == "created" && overdue > EXPIRY_GRACE_SECONDS {
            let detail = format!("still created {overdue} s after its deadline");
            out.push(violation(Rule::OrderNotExpired, &[id], detail));
        }
    }
}

/// Each ticket is held (`orderId`) by exactly the order that holds it in orders (status
/// `created` or `complete`), and is free when there is none — in the tickets service's
/// file and in its API.
fn tickets_held_by_their_holder(s: &Snapshot, out: &mut Vec<Violation>) {
    let holders: BTreeMap<&str, &str> = s
        .orders
        .iter()
        .filter(|(_, o)| o.status == "created" || o.status == "complete")
        .map(|(id, o)| (o.ticket_id.as_str(), id.as_str()))
        .collect();
    for (id, ticket) in &s.tickets {
        let expected = holders.get(id.as_str()).copied();
        let stored = ticket.order_id.as_deref();
        let api = s.api_tickets.get(id).and_then(|t| t["orderId"].as_str());
        if stored != expected || api != expected {
            let detail = format!("held by {stored:?} (API: {api:?}); orders says {expected:?}");
            let mut ids = vec![id.as_str()];
            ids.extend(expected.or(stored));
            out.push(violation(Rule::TicketHolderMismatch, &ids, detail));
        }
    }
}

/// Orders' copy of each ticket (its file, and the ticket embedded in each order) equals
/// the ticket itself; payments' copy of each order has the order's status.
fn replicas_converged(s: &Snapshot, out: &mut Vec<Violation>) {
    for (id, ticket) in &s.tickets {
        let same = |r: &super::snapshot::TicketRow| {
            (&r.title, r.price_cents, r.version)
                == (&ticket.title, ticket.price_cents, ticket.version)
        };
        match s.order_tickets.get(id) {
            Some(replica) if same(replica) => {}
            replica => {
                let detail = format!("tickets has {ticket:?}, orders' replica {replica:?}");
                out.push(violation(Rule::TicketReplicaDiverged, &[id], detail));
            }
        }
    }
    for (order_id, order) in &s.api_orders {
        let embedded = &order["ticket"];
        let Some(id) = embedded["id"].as_str() else {
            continue;
        };
        let own = s.api_tickets.get(id);
        let fields = |t: &serde_json::Value| {
            (
                t["title"].clone(),
                t["priceCents"].clone(),
                t["version"].clone(),
            )
        };
        if own.map(fields) != Some(fields(embedded)) {
            let detail = format!(
                "order {order_id} embeds {:?}, the ticket is {:?}",
                fields(embedded),
                own.map(fields)
            );
            out.push(violation(
                Rule::TicketReplicaDiverged,
                &[id, order_id],
                detail,
            ));
        }
    }
    for (id, order) in &s.orders {
        let replica = s.payment_orders.get(id);
        if replica != Some(&order.status) {
            let detail = format!(
                "orders says {}, payments' replica {replica:?}",
                order.status
            );
            out.push(violation(Rule::PaymentsReplicaDiverged, &[id], detail));
        }
    }
}

/// No order got two `expiration:complete` events, and every order that ended cancelled
/// without its buyer cancelling it got one.
fn expirations_once(s: &Snapshot, record: &Record, out: &mut Vec<Violation>) {
    for (id, count) in s.expirations.iter().filter(|(_, n)| **n > 1) {
        let detail = format!("{count} expiration:complete events");
        out.push(violation(Rule::DuplicateExpiration, &[id], detail));
    }
    for (id, order) in &s.orders {
        let buyer_cancelled = record.order(id).is_some_and(|o| o.cancel_may_have_happened);
        let expected = order.status == "cancelled" && !buyer_cancelled;
        let published = s.expirations.contains_key(id) || s.expirations_done.contains(id);
        if expected && !published {
            let detail =
                "cancelled without its buyer, but no expiration:complete seen or marked".to_owned();
            out.push(violation(Rule::MissingExpiration, &[id], detail));
        }
    }
}
