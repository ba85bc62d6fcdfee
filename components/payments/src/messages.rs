//! The events this service consumes, from its Redis triggers: the order replica.
//!
//! | event             | effect                                              |
//! |-------------------|-----------------------------------------------------|
//! | `order:created`   | create the replica (buyer, price, deadline, status) |
//! | `order:cancelled` | status `cancelled`, if newer                        |
//! | `order:completed` | status `complete`, if newer                         |
//!
//! A replica that is `cancelled` while a payment is recorded queues the payment's
//! refund (`Payments::replicate`): the cancellation that arrives after the charge.
//! Bare key names from `__keyevent@0__:expired` are not events: they wake the refunds
//! worker ([`crate::refunds`]), which runs after every message.
//!
//! Pub/sub delivers at most once to every replica of the app, possibly late, twice or
//! out of order; [`crate::domain::Order::apply`] makes each effect idempotent. The
//! component learns an event's type from its envelope, never from the channel. A
//! message that cannot be understood is logged and acknowledged: pub/sub would not
//! redeliver it, and retrying cannot make it valid.

use common::events::{self, Event, OrderCreated, OrderStatus};
use common::sqlite::Database;
use common::time::parse_rfc3339;

use crate::domain::{Change, OrderId, Terms};
use crate::store::Payments;

/// Handles one Redis message at `now` (Unix seconds). Errors are failures of the
/// store only.
pub fn handle(payments: &Payments<impl Database>, payload: &[u8], now: u64) -> anyhow::Result<()> {
    if crate::refunds::is_key_name(payload) {
        return Ok(());
    }
    let Some(event) = events::decode_or_skip("payments", payload) else {
        return Ok(());
    };
    let (id, change) = match event {
        Event::OrderCreated(created) => match terms_of(&created) {
            Some(terms) => (
                created.id,
                Change::Created {
                    version: created.version,
                    status: created.status,
                    terms,
                },
            ),
            None => {
                eprintln!(
                    "payments: ignoring order:created for order {:?} with a malformed \
                     expires_at {:?}",
                    created.id, created.expires_at
                );
                return Ok(());
            }
        },
        Event::OrderCancelled(cancelled) => (
            cancelled.id,
            Change::Status {
                version: cancelled.version,
                status: OrderStatus::Cancelled,
            },
        ),
        Event::OrderCompleted(completed) => (
            completed.id,
            Change::Status {
                version: completed.version,
                status: OrderStatus::Complete,
            },
        ),
        other => {
            events::skip_unconsumed("payments", &other);
            return Ok(());
        }
    };
    let Some(order_id) = OrderId::parse(&id) else {
        eprintln!("payments: ignoring an order event with a malformed order id {id:?}");
        return Ok(());
    };
    payments.replicate(&order_id, change, now)?;
    Ok(())
}

fn terms_of(created: &OrderCreated) -> Option<Terms> {
    Some(Terms {
        user_id: created.user_id.clone(),
        price_cents: created.ticket.price_cents,
        expires_at: parse_rfc3339(&created.expires_at)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Order;
    use crate::testing::*;
    use common::events::{OrderCancelled, OrderCompleted, PaymentCreated, TicketRef};

    fn deliver(store: &TestStore, event: impl Into<Event>) {
        handle(store, &message(event), NOW).unwrap();
    }

    fn cancelled(version: u64) -> OrderCancelled {
        OrderCancelled {
            id: ORDER.into(),
            version,
            ticket: TicketRef { id: "t1".into() },
        }
    }

    fn completed(version: u64) -> OrderCompleted {
        OrderCompleted {
            id: ORDER.into(),
            version,
            ticket: TicketRef { id: "t1".into() },
        }
    }

    fn replica(store: &TestStore) -> Option<Order> {
        store.order(&order_id(ORDER)).unwrap()
    }

    fn terms() -> Terms {
        Terms {
            user_id: "buyer".into(),
            price_cents: 1099,
            expires_at: EXPIRES_AT,
        }
    }

    fn expected(version: u64, status: OrderStatus) -> Option<Order> {
        Some(Order {
            id: order_id(ORDER),
            version,
            status,
            terms: Some(terms()),
        })
    }

    #[test]
    fn order_created_builds_the_replica() {
        let store = store();
        deliver(&store, order_created(ORDER, "buyer", 1099));
        assert_eq!(replica(&store), expected(0, OrderStatus::Created));
    }

    #[test]
    fn status_events_apply_once_and_in_version_order() {
        let store = store();
        deliver(&store, order_created(ORDER, "buyer", 1099));
        deliver(&store, completed(1));
        deliver(&store, completed(1));
        deliver(&store, order_created(ORDER, "buyer", 1099));
        assert_eq!(replica(&store), expected(1, OrderStatus::Complete));

        let store = self::store();
        deliver(&store, order_created(ORDER, "buyer", 1099));
        deliver(&store, cancelled(1));
        deliver(&store, completed(1));
        assert_eq!(replica(&store), expected(1, OrderStatus::Cancelled));
    }

    #[test]
    fn a_status_event_that_overtakes_order_created_is_kept() {
        let store = store();
        deliver(&store, cancelled(1));
        assert_eq!(
            replica(&store),
            Some(Order {
                id: order_id(ORDER),
                version: 1,
                status: OrderStatus::Cancelled,
                terms: None,
            })
        );
        deliver(&store, order_created(ORDER, "buyer", 1099));
        assert_eq!(replica(&store), expected(1, OrderStatus::Cancelled));
    }

    #[test]
    fn ids_are_normalised() {
        let store = store();
        deliver(&store, order_created(&ORDER.to_uppercase(), "buyer", 1099));
        assert_eq!(replica(&store), expected(0, OrderStatus::Created));
    }

    #[test]
    fn malformed_unknown_and_foreign_messages_are_acknowledged() {
        let store = store();
        let mut bad_deadline = order_created(ORDER, "buyer", 1099);
        bad_deadline.expires_at = "soon".into();
        let mut bad_id = order_created("42", "buyer", 1099);
        bad_id.expires_at = common::time::rfc3339(EXPIRES_AT);
        let unknown =
            br#"{"specversion":"1.0","id":"1","type":"order:deleted","source":"/x","data":{}}"#;
        let bad_data = br#"{"specversion":"1.0","id":"1","type":"order:created","source":"/x","data":{"id":5}}"#;
        for payload in [
            &b""[..],
            b"not json",
            b"{}",
            unknown,
            bad_data,
            &message(bad_deadline),
            &message(bad_id),
            &message(PaymentCreated {
                id: "p1".into(),
                order_id: ORDER.into(),
                stripe_id: "pi_1".into(),
            }),
        ] {
            handle(&store, payload, NOW).unwrap();
        }
        assert_eq!(replica(&store), None);
        assert!(outbox(&store).is_empty(), "replicas publish nothing");
    }

    #[test]
    fn store_failures_are_errors() {
        let store = store();
        store.db().fail_statements_containing("FROM orders");
        assert!(handle(&store, &message(order_created(ORDER, "buyer", 1099)), NOW).is_err());
    }
}
