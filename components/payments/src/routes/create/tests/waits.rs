//! The two waits: for an order on its way to the replica, and for another request
//! charging the same order. The pauses play the other instance.

use std::cell::Cell;

use common::sqlite::testing::MemoryDb;
use serde_json::json;
use spin_sdk::http::Method;

use super::{key, with_card};
use crate::routes::create::*;
use crate::testing::*;

#[test]
fn an_order_that_reaches_the_replica_while_waiting_is_paid() {
    let db = MemoryDb::new();
    let paused = Cell::new(Duration::ZERO);
    let deps = with_other_instance(&db, &paused, |payments| {
        if payments.order(&order_id(ORDER)).unwrap().is_none() {
            put_order(payments, ORDER, "buyer", 1099);
        }
    });

    let response = run(handle(
        &request(
            Method::Post,
            "/api/payments",
            Some("buyer"),
            Some(with_card("pm_card_visa")),
        ),
        &deps,
    ))
    .unwrap();

    assert_eq!(*response.status(), 201);
    assert_eq!(paused.get(), POLL);
}

#[test]
fn an_unknown_order_is_looked_for_a_while_and_a_malformed_one_not_at_all() {
    let db = MemoryDb::new();
    let paused = Cell::new(Duration::ZERO);
    let deps = with_other_instance(&db, &paused, |_| {});
    let pay = |id: &str| {
        run(handle(
            &request(
                Method::Post,
                "/api/payments",
                Some("buyer"),
                Some(json!({"orderId": id})),
            ),
            &deps,
        ))
    };

    assert_error(pay(ORDER), 404, json!([{"message": "Not Found"}]));
    assert_eq!(paused.get(), REPLICA_WAIT);

    paused.set(Duration::ZERO);
    assert_error(pay("abc"), 404, json!([{"message": "Not Found"}]));
    assert_eq!(paused.get(), Duration::ZERO);
    assert!(deps.stripe.calls().is_empty());
}

/// Another request with `key` is charging the order when `deps` pays with the visa.
fn pay_while_another_request_charges(
    deps: &Deps<&MemoryDb, FakeStripe, impl Pause>,
    key: &str,
) -> Result<Response, ApiError> {
    put_order(&deps.payments, ORDER, "buyer", 1099);
    let claim = deps.payments.claim_attempt(&order_id(ORDER), key, NOW);
    assert_eq!(claim.unwrap(), Claim::Claimed);
    run(handle(
        &request(
            Method::Post,
            "/api/payments",
            Some("buyer"),
            Some(with_card("pm_card_visa")),
        ),
        deps,
    ))
}

#[test]
fn a_double_submit_waits_for_the_first_and_is_already_paid() {
    let db = MemoryDb::new();
    let paused = Cell::new(Duration::ZERO);
    let deps = with_other_instance(&db, &paused, |payments| {
        // The first request's charge succeeds and is recorded.
        let payment = Payment::new(order_id(ORDER), "pi_first");
        payments.record(&payment, NOW).unwrap();
    });

    assert_error(
        pay_while_another_request_charges(&deps, &key("pm_card_visa")),
        400,
        json!([{"message": "Order is already paid"}]),
    );
    assert_eq!(paused.get(), POLL);
    assert!(deps.stripe.calls().is_empty(), "charged once, by the first");
}

#[test]
fn after_another_requests_decline_this_card_is_tried() {
    let db = MemoryDb::new();
    let paused = Cell::new(Duration::ZERO);
    let deps = with_other_instance(&db, &paused, |payments| {
        payments
            .release_attempt(&order_id(ORDER), &key(DECLINED_CARD))
            .unwrap();
    });

    let response = pay_while_another_request_charges(&deps, &key(DECLINED_CARD)).unwrap();

    assert_eq!(*response.status(), 201);
    assert_eq!(deps.stripe.creates().len(), 1);
}

#[test]
fn a_charge_that_never_ends_is_a_409_after_a_while() {
    let db = MemoryDb::new();
    let paused = Cell::new(Duration::ZERO);
    let deps = with_other_instance(&db, &paused, |_| {});

    assert_error(
        pay_while_another_request_charges(&deps, &key("pm_card_visa")),
        409,
        json!([{"message": "A payment for this order is already in progress"}]),
    );
    assert_eq!(paused.get(), ATTEMPT_WAIT);
    assert!(deps.stripe.calls().is_empty());
}
