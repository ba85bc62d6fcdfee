//! The events this service consumes, from its Redis triggers.
//!
//! | event                 | effect                                                   |
//! |-----------------------|----------------------------------------------------------|
//! | `ticket:created`      | create the ticket's replica (if absent)                  |
//! | `ticket:updated`      | replace the replica if the event is newer                |
//! | `expiration:complete` | [`Trigger::LockExpired`]: cancel unless paid or cancelled |
//! | `payment:created`     | [`Trigger::PaymentReceived`]: mark the order complete;   |
//! |                       | show the payment as paid                                 |
//! | `payment:refunded`    | show the payment as refunded                             |
//!
//! A payment of an order that is already cancelled does not revive it: payments
//! refunds the charge once it sees the cancellation, and orders announces the
//! cancellation once more in case that payments replica missed it.
//!
//! Pub/sub delivers at most once to every replica of the app, possibly late, twice or
//! out of order, so each effect is idempotent: replicas take only newer versions, and
//! order changes go through the lifecycle and a conditional write, so a duplicate finds
//! nothing to do. The component learns an event's type from its envelope, never from
//! the channel. A message that cannot be understood is logged and acknowledged: pub/sub
//! would not redeliver it anyway, and failing would only hide it in the host's log.

use common::events::{self, Event};
use common::trace;

use crate::domain::{OrderId, PaymentEvent, Refusal, Ticket, Trigger};
use crate::store::OrderStore;
use crate::update::{Applied, apply};

/// Handles one message at `now` (Unix seconds). Errors are failures of the store only.
pub fn handle(store: &impl OrderStore, payload: &[u8], now: u64) -> anyhow::Result<()> {
    let Some(event) = events::decode_or_skip("orders", payload) else {
        return Ok(());
    };
    match event {
        Event::TicketCreated(created) => {
            store.replicate_ticket(Ticket::from(created))?;
        }
        Event::TicketUpdated(updated) => {
            store.replicate_ticket(Ticket::from(updated))?;
        }
        Event::ExpirationComplete(expired) => {
            on_order(store, &expired.order_id, Trigger::LockExpired, now)?;
        }
        Event::PaymentCreated(payment) => {
            let shown = PaymentEvent::Created(&payment.stripe_id);
            on_payment(store, &payment.order_id, shown)?;
            if let Some(Applied::Refused(order, Refusal::PaidAfterCancellation)) =
                on_order(store, &payment.order_id, Trigger::PaymentReceived, now)?
            {
                // The order stays cancelled: its ticket may already be someone else's.
                eprintln!(
                    "payment {} (Stripe {}) arrived for order {}, which is already \
                     cancelled; the order stays cancelled and payments refunds the charge",
                    payment.id, payment.stripe_id, order.id
                );
                store.announce_again(&order, now)?;
            }
        }
        Event::PaymentRefunded(refunded) => {
            let shown = PaymentEvent::Refunded(&refunded.stripe_id);
            on_payment(store, &refunded.order_id, shown)?;
        }
        // Our own order events, should a trigger ever route them here.
        Event::OrderCreated(_) | Event::OrderCancelled(_) | Event::OrderCompleted(_) => {}
    }
    Ok(())
}

/// How long past its deadline an order may stay `created` before orders cancels it
/// itself. The expiration service normally does it at the deadline; this backstop covers
/// a deadline whose expiry was lost (e.g. its Redis notification fired while the whole
/// app was down). Long enough that a merely late expiration service (Redis paused for a
/// few seconds) does not send every orders replica, on every message, racing to cancel
/// the same orders: in the chaos run (RELIABILITY.md) that race, at 2 s, starved sqlite
/// writers past their busy timeout.
pub const OVERDUE_GRACE_SECONDS: u64 = 10;

/// Cancels (as if `expiration:complete` had arrived) orders overdue by more than the grace
/// period; called on every message orders handles and before every new order (reads
/// stay read-only). Returns how many changed.
///
/// Runs without a trace context: the request or message that happens to run the
/// backstop did not cause these cancellations, so their `order:cancelled` events carry
/// no `traceparent`.
pub fn cancel_overdue(store: &impl OrderStore, now: u64) -> anyhow::Result<usize> {
    trace::without(|| {
        let cutoff = now.saturating_sub(OVERDUE_GRACE_SECONDS);
        let mut cancelled = 0;
        for order in store.overdue_orders(cutoff, 50)? {
            if let Applied::Changed(_) = apply(store, order, Trigger::LockExpired, now)? {
                cancelled += 1;
            }
        }
        Ok(cancelled)
    })
}

/// Shows a payments event on order `raw_id` (logged and ignored when there is no such
/// order).
fn on_payment(
    store: &impl OrderStore,
    raw_id: &str,
    event: PaymentEvent<'_>,
) -> anyhow::Result<()> {
    let applied = match OrderId::parse(raw_id) {
        Some(id) => store.apply_payment(&id, event)?,
        None => None,
    };
    if applied.is_none() {
        eprintln!("ignoring {event:?} for unknown order {raw_id:?}");
    }
    Ok(())
}

/// Applies `trigger` to order `raw_id`; `None` (logged) when there is no such order.
fn on_order(
    store: &impl OrderStore,
    raw_id: &str,
    trigger: Trigger,
    now: u64,
) -> anyhow::Result<Option<Applied>> {
    let Some(order) = OrderId::parse(raw_id)
        .map(|id| store.order(&id))
        .transpose()?
        .flatten()
    else {
        eprintln!("ignoring {trigger:?} for unknown order {raw_id:?}");
        return Ok(None);
    };
    apply(store, order, trigger, now).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExpiresAt, Order, OrderStatus, PaymentStatus};
    use crate::testing::*;
    use common::events::{
        ExpirationComplete, OrderCancelled, PaymentCreated, PaymentRefunded, TicketRef,
    };
    use common::sqlite::Database;

    fn deliver(store: &TestStore, event: impl Into<Event>) {
        handle(store, &message(event), NOW).unwrap();
    }

    fn placed(store: &TestStore) -> Order {
        placed_on(store, "t1")
    }

    fn placed_on(store: &TestStore, ticket: &str) -> Order {
        put_ticket(store, ticket, 1099);
        let ticket = store.ticket(ticket).unwrap().unwrap();
        let order = Order::place("buyer", ticket, ExpiresAt::from_unix_seconds(NOW + 60));
        store.insert_order(&order, NOW).unwrap();
        order
    }

    fn expired(order: &Order) -> ExpirationComplete {
        ExpirationComplete {
            order_id: order.id.to_string(),
        }
    }

    fn refunded(order: &Order, stripe_id: &str) -> PaymentRefunded {
        PaymentRefunded {
            id: "p1".into(),
            order_id: order.id.to_string(),
            stripe_id: stripe_id.into(),
            refund_id: "re_1".into(),
        }
    }

    fn shown_payment(store: &TestStore, order: &Order) -> Option<(PaymentStatus, &'static str)> {
        let payment = store.order(&order.id).unwrap().unwrap().payment?;
        let stripe_id = match payment.stripe_id.as_str() {
            "pi_1" => "pi_1",
            "pi_2" => "pi_2",
            other => panic!("unexpected charge {other}"),
        };
        Some((payment.status, stripe_id))
    }

    fn paid(order: &Order) -> PaymentCreated {
        PaymentCreated {
            id: "p1".into(),
            order_id: order.id.to_string(),
            stripe_id: "pi_1".into(),
        }
    }

    /// Status, version and the channels of the events queued after `order:created`.
    fn state(store: &TestStore, order: &Order) -> (OrderStatus, u64, Vec<&'static str>) {
        let stored = store.order(&order.id).unwrap().unwrap();
        let events = outbox(store);
        let channels = events[1..].iter().map(Event::channel).collect();
        (stored.status, stored.version, channels)
    }

    #[test]
    fn ticket_events_build_the_replica() {
        let store = store();
        deliver(&store, created("t1", 1099));
        assert_eq!(
            store.ticket("t1").unwrap(),
            Some(created("t1", 1099).into())
        );
        deliver(&store, updated("t1", 1, Some("o1")));
        assert_eq!(
            store.ticket("t1").unwrap(),
            Some(updated("t1", 1, Some("o1")).into())
        );
    }

    #[test]
    fn duplicate_and_stale_ticket_events_are_ignored() {
        let store = store();
        deliver(&store, created("t1", 1099));
        deliver(&store, updated("t1", 2, None));
        deliver(&store, updated("t1", 1, Some("o1")));
        deliver(&store, updated("t1", 2, Some("o2")));
        deliver(&store, created("t1", 1099));
        assert_eq!(
            store.ticket("t1").unwrap(),
            Some(updated("t1", 2, None).into())
        );
    }

    #[test]
    fn an_update_that_overtakes_the_create_is_applied() {
        let store = store();
        deliver(&store, updated("t1", 1, Some("o1")));
        deliver(&store, created("t1", 1099));
        assert_eq!(
            store.ticket("t1").unwrap(),
            Some(updated("t1", 1, Some("o1")).into())
        );
    }

    #[test]
    fn expiry_cancels_an_unpaid_order_once() {
        let store = store();
        let order = placed(&store);
        deliver(&store, expired(&order));
        assert_eq!(
            state(&store, &order),
            (OrderStatus::Cancelled, 1, vec!["order:cancelled"])
        );
        assert_eq!(
            outbox(&store)[1],
            Event::OrderCancelled(OrderCancelled {
                id: order.id.to_string(),
                version: 1,
                ticket: TicketRef { id: "t1".into() },
            })
        );

        deliver(&store, expired(&order));
        assert_eq!(
            state(&store, &order),
            (OrderStatus::Cancelled, 1, vec!["order:cancelled"])
        );
    }

    #[test]
    fn expiry_leaves_a_paid_order_alone() {
        let store = store();
        let order = placed(&store);
        deliver(&store, paid(&order));
        deliver(&store, expired(&order));
        assert_eq!(
            state(&store, &order),
            (OrderStatus::Complete, 1, vec!["order:completed"])
        );
    }

    #[test]
    fn a_payment_completes_the_order_once() {
        let store = store();
        let order = placed(&store);
        deliver(&store, paid(&order));
        deliver(&store, paid(&order));
        assert_eq!(
            state(&store, &order),
            (OrderStatus::Complete, 1, vec!["order:completed"])
        );
    }

    #[test]
    fn a_payment_after_expiry_does_not_revive_the_order_and_is_refunded() {
        let store = store();
        let order = placed(&store);
        deliver(&store, expired(&order));
        deliver(&store, paid(&order));
        // The cancellation goes out again, the same version, for a payments replica
        // that missed it: that is what makes payments refund the charge.
        assert_eq!(
            state(&store, &order),
            (
                OrderStatus::Cancelled,
                1,
                vec!["order:cancelled", "order:cancelled"]
            )
        );
        let events = outbox(&store);
        assert_eq!(events[1], events[2]);
        assert_eq!(
            shown_payment(&store, &order),
            Some((PaymentStatus::Paid, "pi_1"))
        );

        deliver(&store, refunded(&order, "pi_1"));
        assert_eq!(
            shown_payment(&store, &order),
            Some((PaymentStatus::Refunded, "pi_1"))
        );
        assert_eq!(state(&store, &order).0, OrderStatus::Cancelled);
    }

    #[test]
    fn the_payment_shows_on_the_order_whatever_the_order_of_arrival() {
        let store = store();
        let order = placed(&store);
        assert_eq!(shown_payment(&store, &order), None);
        deliver(&store, paid(&order));
        assert_eq!(
            shown_payment(&store, &order),
            Some((PaymentStatus::Paid, "pi_1"))
        );
        // The refund of a second card leaves the kept payment shown.
        deliver(&store, refunded(&order, "pi_2"));
        assert_eq!(
            shown_payment(&store, &order),
            Some((PaymentStatus::Paid, "pi_1"))
        );

        let other = placed_on(&store, "t2");
        deliver(&store, refunded(&other, "pi_1"));
        deliver(&store, paid(&other));
        assert_eq!(
            shown_payment(&store, &other),
            Some((PaymentStatus::Refunded, "pi_1")),
            "a late payment:created does not undo its refund"
        );
    }

    #[test]
    fn events_for_unknown_orders_are_ignored() {
        let store = store();
        for order_id in ["6f1c2d3e-0000-4000-8000-000000000000", "not-an-id", ""] {
            deliver(
                &store,
                ExpirationComplete {
                    order_id: order_id.into(),
                },
            );
            deliver(
                &store,
                PaymentCreated {
                    id: "p1".into(),
                    order_id: order_id.into(),
                    stripe_id: "pi_1".into(),
                },
            );
            deliver(
                &store,
                PaymentRefunded {
                    id: "p1".into(),
                    order_id: order_id.into(),
                    stripe_id: "pi_1".into(),
                    refund_id: "re_1".into(),
                },
            );
        }
        assert!(outbox(&store).is_empty());
        let shown = store
            .db()
            .query("SELECT order_id FROM order_payments", &[])
            .unwrap();
        assert!(
            shown.rows.is_empty(),
            "no payment is kept for an unknown order"
        );
    }

    #[test]
    fn malformed_and_unknown_messages_are_acknowledged() {
        let store = store();
        let order = placed(&store);
        let unknown_type = br#"{"specversion":"1.0","id":"1","type":"ticket:deleted","source":"/x","data":{"id":"t1"}}"#;
        let bad_data = br#"{"specversion":"1.0","id":"1","type":"expiration:complete","source":"/x","data":{"orderId":5}}"#;
        for payload in [
            &b""[..],
            b"not json",
            b"{}",
            b"[1,2]",
            unknown_type,
            bad_data,
        ] {
            handle(&store, payload, NOW).unwrap();
        }
        assert_eq!(state(&store, &order), (OrderStatus::Created, 0, vec![]));
    }

    #[test]
    fn this_services_own_events_are_ignored() {
        let store = store();
        let order = placed(&store);
        deliver(&store, order.with_status(OrderStatus::Cancelled).event());
        assert_eq!(state(&store, &order), (OrderStatus::Created, 0, vec![]));
    }

    #[test]
    fn store_failures_are_errors() {
        let store = store();
        let order = placed(&store);
        store.db().fail_statements_containing("FROM orders");
        assert!(handle(&store, &message(expired(&order)), NOW).is_err());
        store.db().fail_statements_containing("tickets");
        assert!(handle(&store, &message(created("t2", 1)), NOW).is_err());
    }

    #[test]
    fn overdue_orders_are_cancelled_once_by_the_backstop() {
        let store = store();
        let order = placed(&store);
        let deadline = order.expires_at.unix_seconds();
        // Within the grace period nothing happens; expiration normally acts first.
        assert_eq!(
            cancel_overdue(&store, deadline + OVERDUE_GRACE_SECONDS - 1).unwrap(),
            0
        );
        assert_eq!(
            cancel_overdue(&store, deadline + OVERDUE_GRACE_SECONDS).unwrap(),
            1
        );
        let cancelled = store.order(&order.id).unwrap().unwrap();
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        assert_eq!(cancelled.version, order.version + 1);
        // A later sweep, or the late expiration:complete, changes nothing.
        assert_eq!(cancel_overdue(&store, deadline + 60).unwrap(), 0);
        deliver(
            &store,
            ExpirationComplete {
                order_id: order.id.to_string(),
            },
        );
        assert_eq!(
            store.order(&order.id).unwrap().unwrap().version,
            order.version + 1
        );
    }

    #[test]
    fn a_messages_events_carry_its_traceparent_and_the_backstops_none() {
        use common::outbox::testing::pending_traceparents;
        use common::testing::{traced_message, traceparent};

        let store = store();
        let overdue = placed_on(&store, "t1");
        // Not overdue yet: its expiration:complete, early as far as orders knows, decides.
        put_ticket(&store, "t2", 1099);
        let ticket = store.ticket("t2").unwrap().unwrap();
        let expiring = Order::place("buyer", ticket, ExpiresAt::from_unix_seconds(NOW + 600));
        store.insert_order(&expiring, NOW).unwrap();
        let queued_before = pending_traceparents(store.db()).unwrap().len();
        let now = overdue.expires_at.unix_seconds() + OVERDUE_GRACE_SECONDS;

        // As `on_message` runs a message: the backstop, then the message's own work.
        let consumer = traceparent(9);
        let payload = traced_message(expired(&expiring), Some(&consumer));
        common::message::serve(&payload, || {
            assert_eq!(cancel_overdue(&store, now)?, 1);
            handle(&store, &payload, now)
        })
        .unwrap();

        let events = outbox(&store);
        let traceparents = pending_traceparents(store.db()).unwrap();
        let cancelled: Vec<_> = events[queued_before..]
            .iter()
            .zip(&traceparents[queued_before..])
            .map(|(event, traceparent)| match event {
                Event::OrderCancelled(cancelled) => (cancelled.id.clone(), traceparent.clone()),
                other => panic!("queued {other:?}"),
            })
            .collect();
        assert_eq!(
            cancelled,
            [
                (overdue.id.to_string(), None),
                (expiring.id.to_string(), Some(consumer.to_string())),
            ]
        );
        assert_eq!(
            trace::current(),
            Some(consumer),
            "restored after the backstop"
        );
    }
}
