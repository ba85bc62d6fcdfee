use common::events::OrderStatus;

use crate::domain::RefundReason;

use super::*;
use crate::testing::*;

fn order() -> OrderId {
    order_id(ORDER)
}

#[test]
fn the_replica_round_trips_with_and_without_terms() {
    let store = store();
    assert_eq!(store.order(&order()).unwrap(), None);

    set_status(&store, ORDER, 1, OrderStatus::Cancelled);
    assert_eq!(
        store.order(&order()).unwrap(),
        Some(Order {
            id: order(),
            version: 1,
            status: OrderStatus::Cancelled,
            terms: None,
        })
    );

    put_order(&store, OTHER_ORDER, "buyer", 1099);
    let other = store.order(&order_id(OTHER_ORDER)).unwrap().unwrap();
    assert_eq!(
        other.terms,
        Some(Terms {
            user_id: "buyer".into(),
            price_cents: 1099,
            expires_at: EXPIRES_AT,
        })
    );
    // A duplicate changes nothing.
    let duplicate = Change::Status {
        version: 1,
        status: OrderStatus::Complete,
    };
    assert!(!store.replicate(&order(), duplicate, NOW).unwrap());
    assert!(outbox(&store).is_empty(), "replicas publish nothing");
}

#[test]
fn while_a_request_charges_an_order_nobody_else_may() {
    let store = store();
    let claim = |key: &str, now: u64| store.claim_attempt(&order(), key, now).unwrap();

    assert_eq!(claim("k1", NOW), Claim::Claimed);
    // Not even the same request sent twice: both would reach Stripe.
    assert_eq!(claim("k1", NOW + 1), Claim::Charging);
    assert_eq!(claim("k2", NOW + 1), Claim::Charging);
    // A request that died is forgotten when its lease runs out.
    assert_eq!(
        claim("k2", NOW + ATTEMPT_LEASE_SECONDS - 1),
        Claim::Charging
    );
    assert_eq!(claim("k2", NOW + ATTEMPT_LEASE_SECONDS), Claim::Claimed);

    // Releasing another key's attempt does nothing; releasing one's own frees the order.
    store.release_attempt(&order(), "k1").unwrap();
    assert_eq!(claim("k3", NOW + 61), Claim::Charging);
    store.release_attempt(&order(), "k2").unwrap();
    assert_eq!(claim("k3", NOW + 61), Claim::Claimed);

    // Attempts on other orders are independent.
    let other = store
        .claim_attempt(&order_id(OTHER_ORDER), "k9", NOW + 61)
        .unwrap();
    assert_eq!(other, Claim::Claimed);
}

#[test]
fn a_held_attempt_can_be_continued_by_its_key_only() {
    let store = store();
    let claim = |key: &str, now: u64| store.claim_attempt(&order(), key, now).unwrap();
    assert_eq!(claim("k1", NOW), Claim::Claimed);
    store.hold_attempt(&order(), "k1", NOW + 10).unwrap();

    assert_eq!(claim("k2", NOW + 11), Claim::Busy);
    assert_eq!(claim("k1", NOW + 11), Claim::Claimed);
    assert_eq!(claim("k1", NOW + 12), Claim::Charging);

    store.hold_attempt(&order(), "k1", NOW + 12).unwrap();
    assert_eq!(
        claim("k2", NOW + 12 + ATTEMPT_LEASE_SECONDS),
        Claim::Claimed
    );
}

#[test]
fn a_recorded_payment_ends_attempts() {
    let store = store();
    assert_eq!(
        store.claim_attempt(&order(), "k1", NOW).unwrap(),
        Claim::Claimed
    );
    let payment = Payment::new(order(), "pi_1");
    store.record(&payment, NOW).unwrap();
    assert_eq!(
        store.claim_attempt(&order(), "k2", NOW).unwrap(),
        Claim::Paid(payment)
    );
}

#[test]
fn payments_are_recorded_once_per_order_with_their_event() {
    let store = store();
    let first = Payment::new(order(), "pi_1");

    assert_eq!(
        store.record(&first, NOW).unwrap(),
        Recorded::New(first.clone())
    );
    assert_eq!(store.payment_of(&order()).unwrap(), Some(first.clone()));

    // The same intent again (webhook after the follow-up).
    let again = Payment::new(order(), "pi_1");
    assert_eq!(
        store.record(&again, NOW).unwrap(),
        Recorded::Existing(first.clone())
    );
    assert_eq!(outbox(&store), [Event::PaymentCreated(first.event())]);
    assert_eq!(store.refund_of("pi_1").unwrap(), None, "the kept payment");
}

#[test]
fn a_second_charge_of_a_paid_order_is_queued_for_a_refund_once() {
    let store = store();
    let first = Payment::new(order(), "pi_1");
    store.record(&first, NOW).unwrap();
    for _ in 0..2 {
        let second = Payment::new(order(), "pi_2");
        assert_eq!(
            store.record(&second, NOW).unwrap(),
            Recorded::Duplicate {
                kept: first.clone()
            }
        );
    }
    assert_eq!(store.payment_of(&order()).unwrap(), Some(first.clone()));
    assert_eq!(outbox(&store), [Event::PaymentCreated(first.event())]);
    assert_eq!(store.refund_of("pi_2").unwrap(), Some(None));
    let due = store.claim_due_refunds(NOW).unwrap();
    assert_eq!(due.len(), 1, "queued once: {due:?}");
    assert_eq!(
        (due[0].stripe_id.as_str(), due[0].reason),
        ("pi_2", RefundReason::AlreadyPaid)
    );
}

#[test]
fn a_payment_and_a_cancellation_queue_one_refund_in_either_order() {
    // The cancellation first: recording the payment queues its refund.
    let store = self::store();
    put_order(&store, ORDER, "buyer", 1099);
    set_status(&store, ORDER, 1, OrderStatus::Cancelled);
    let payment = Payment::new(order(), "pi_1");
    assert_eq!(
        store.record(&payment, NOW).unwrap(),
        Recorded::Refunding(payment.clone())
    );
    assert_eq!(store.refund_of("pi_1").unwrap(), Some(None));
    // Recorded all the same, and announced: orders shows the payment until the refund.
    assert_eq!(outbox(&store), [Event::PaymentCreated(payment.event())]);

    // The payment first: the cancellation queues its refund, and a duplicate of the
    // cancellation (or orders announcing it again) does not queue a second.
    let store = self::store();
    put_order(&store, ORDER, "buyer", 1099);
    let payment = Payment::new(order(), "pi_1");
    assert_eq!(
        store.record(&payment, NOW).unwrap(),
        Recorded::New(payment.clone())
    );
    assert_eq!(store.refund_of("pi_1").unwrap(), None);
    let cancelled = || Change::Status {
        version: 1,
        status: OrderStatus::Cancelled,
    };
    assert!(store.replicate(&order(), cancelled(), NOW).unwrap());
    assert!(!store.replicate(&order(), cancelled(), NOW).unwrap());
    assert_eq!(store.claim_due_refunds(NOW).unwrap().len(), 1);
}

#[test]
fn a_completed_order_keeps_its_payment() {
    let store = store();
    put_order(&store, ORDER, "buyer", 1099);
    let payment = Payment::new(order(), "pi_1");
    store.record(&payment, NOW).unwrap();
    set_status(&store, ORDER, 1, OrderStatus::Complete);
    assert_eq!(store.refund_of("pi_1").unwrap(), None);
    assert!(store.claim_due_refunds(NOW + 1_000).unwrap().is_empty());
}

#[test]
fn a_cancelled_order_cannot_be_claimed_for_charging() {
    let store = store();
    put_order(&store, ORDER, "buyer", 1099);
    set_status(&store, ORDER, 1, OrderStatus::Cancelled);
    assert_eq!(
        store.claim_attempt(&order(), "k1", NOW).unwrap(),
        Claim::Cancelled
    );
}

#[test]
fn an_intent_pays_for_one_order_only() {
    let store = store();
    store.record(&Payment::new(order(), "pi_1"), NOW).unwrap();
    let misdirected = Payment::new(order_id(OTHER_ORDER), "pi_1");
    let err = store.record(&misdirected, NOW).unwrap_err();
    assert!(format!("{err:#}").contains("UNIQUE"), "{err:#}");
    assert_eq!(store.payment_of(&order_id(OTHER_ORDER)).unwrap(), None);
    assert_eq!(outbox(&store).len(), 1, "rolled back with its event");
}

#[test]
fn intents_are_remembered_per_order_newest_first() {
    let store = store();
    store.remember_intent(&order(), "pi_1", NOW).unwrap();
    store.remember_intent(&order(), "pi_2", NOW).unwrap();
    store.remember_intent(&order(), "pi_3", NOW + 5).unwrap();
    store.remember_intent(&order(), "pi_1", NOW + 9).unwrap();
    store
        .remember_intent(&order_id(OTHER_ORDER), "pi_4", NOW)
        .unwrap();

    assert_eq!(
        store.intents_of(&order(), 5).unwrap(),
        ["pi_3", "pi_2", "pi_1"]
    );
    assert_eq!(store.intents_of(&order(), 2).unwrap(), ["pi_3", "pi_2"]);
    assert_eq!(store.intent_order("pi_2").unwrap(), Some(order()));
    assert_eq!(
        store.intent_order("pi_4").unwrap(),
        Some(order_id(OTHER_ORDER))
    );
    assert_eq!(store.intent_order("pi_9").unwrap(), None);
}

#[test]
fn the_first_customer_remembered_for_an_order_is_its_customer() {
    let store = store();
    assert_eq!(store.customer_of(&order()).unwrap(), None);

    assert_eq!(
        store.remember_customer(&order(), "cus_1", NOW).unwrap(),
        "cus_1"
    );
    // A concurrent first setup call created another: it gets the first one back.
    assert_eq!(
        store.remember_customer(&order(), "cus_2", NOW + 1).unwrap(),
        "cus_1"
    );
    assert_eq!(
        store.customer_of(&order()).unwrap().as_deref(),
        Some("cus_1")
    );

    assert_eq!(
        store
            .remember_customer(&order_id(OTHER_ORDER), "cus_3", NOW)
            .unwrap(),
        "cus_3"
    );
    assert_eq!(
        store.customer_of(&order()).unwrap().as_deref(),
        Some("cus_1")
    );
    assert!(outbox(&store).is_empty());
}

#[test]
fn a_database_from_before_customers_gets_the_table() {
    let db = common::sqlite::testing::MemoryDb::new();
    let store = Payments::new(&db).unwrap();
    store.remember_intent(&order(), "pi_1", NOW).unwrap();
    // A database from before customers (and before schema versions: user_version 0),
    // so also from before refunds kept their trace context.
    db.query("DROP TABLE customers", &[]).unwrap();
    db.query("ALTER TABLE refunds DROP COLUMN traceparent", &[])
        .unwrap();
    db.query("PRAGMA user_version = 0", &[]).unwrap();

    let reopened = Payments::new(&db).unwrap();
    assert_eq!(reopened.customer_of(&order()).unwrap(), None);
    assert_eq!(reopened.intents_of(&order(), 5).unwrap(), ["pi_1"]);
    reopened.remember_customer(&order(), "cus_1", NOW).unwrap();
    // Opening again keeps what is there.
    let again = Payments::new(&db).unwrap();
    assert_eq!(
        again.customer_of(&order()).unwrap().as_deref(),
        Some("cus_1")
    );
}

#[test]
fn refunds_queued_before_trace_contexts_are_made_without_one() {
    let db = common::sqlite::testing::MemoryDb::new();
    sqlite::migrate(&db, &Schema { migrations: &[V1] }).unwrap();
    db.query(
        "INSERT INTO refunds (stripe_id, payment_id, order_id, reason, next_attempt_at, created_at)
         VALUES ('pi_1', 'p1', ?, 'order_cancelled', ?, ?)",
        &[text(ORDER), integer(NOW).unwrap(), integer(NOW).unwrap()],
    )
    .unwrap();

    let store = Payments::new(&db).unwrap();
    let [refund] = <[_; 1]>::try_from(store.claim_due_refunds(NOW).unwrap()).unwrap();
    assert_eq!(refund.stripe_id, "pi_1");
    assert_eq!(refund.traceparent, None);
}

#[test]
fn corrupt_rows_are_errors() {
    let store = store();
    put_order(&store, ORDER, "buyer", 1099);
    store
        .db()
        .query("UPDATE orders SET price_cents = NULL", &[])
        .unwrap();
    let err = store.order(&order()).unwrap_err();
    assert!(format!("{err:#}").contains("corrupt"), "{err:#}");

    store
        .db()
        .query("UPDATE orders SET price_cents = 1, status = 'paid'", &[])
        .unwrap_err();
    store.remember_intent(&order(), "pi_1", NOW).unwrap();
    store
        .db()
        .query("UPDATE intents SET order_id = 'nope'", &[])
        .unwrap();
    let err = store.intent_order("pi_1").unwrap_err();
    assert!(format!("{err:#}").contains("malformed"), "{err:#}");
}
