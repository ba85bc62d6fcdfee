use common::events::{Event, OrderStatus};
use serde_json::json;
use spin_sdk::http::{IntoResponse, Method};

use super::*;
use crate::testing::*;

const SECRET: &str = "whsec_test";

/// A delivery recorded from localstripe 1.15.10, byte for byte, with its signature
/// (secret `whsec_capture`): checks our HMAC against a real sender's.
const LOCALSTRIPE_BODY: &[u8] = include_bytes!("localstripe_succeeded.json");
const LOCALSTRIPE_SIGNATURE: &str =
    "t=1795488717,v1=facf001f427b325900b5d1d2b856f48a3e86e6df000c68a52ec7094d44968b8c";
const LOCALSTRIPE_INTENT: &str = "pi_0CzWOAz1JuCPG3";

fn delivery(body: &[u8], signature: Option<&str>) -> Request {
    let mut builder = Request::builder();
    builder
        .method(Method::Post)
        .uri("/api/payments/webhook")
        .header("content-type", "application/json; charset=utf-8");
    if let Some(signature) = signature {
        builder.header("Stripe-Signature", signature);
    }
    builder.body(body.to_vec()).build()
}

fn event(event_type: &str, intent_id: &str, status: &str, order: Option<&str>) -> Vec<u8> {
    let metadata = order.map_or(json!({}), |order| json!({"orderId": order}));
    serde_json::to_vec(&json!({
        "id": "evt_1",
        "object": "event",
        "type": event_type,
        "created": NOW,
        "data": {"object": {
            "id": intent_id,
            "object": "payment_intent",
            "amount": 1099,
            "currency": "usd",
            "status": status,
            "metadata": metadata,
        }},
    }))
    .unwrap()
}

fn deliver(store: &TestStore, body: &[u8]) -> Result<Response, ApiError> {
    let signature = signature::header(body, SECRET, NOW - 1);
    handle(&delivery(body, Some(&signature)), store, SECRET, NOW)
}

fn placed_with_intent(stripe_id: &str) -> TestStore {
    let store = store();
    put_order(&store, ORDER, "buyer", 1099);
    store
        .remember_intent(&order_id(ORDER), stripe_id, NOW)
        .unwrap();
    store
}

fn received_ok(response: Result<Response, ApiError>) {
    let response = response.unwrap();
    assert_eq!(*response.status(), 200);
    assert_eq!(body_json(&response), json!({"received": true}));
}

#[test]
fn a_success_for_a_cancelled_order_is_recorded_and_queued_for_a_refund() {
    let store = placed_with_intent("pi_1");
    set_status(&store, ORDER, 1, OrderStatus::Cancelled);

    received_ok(deliver(
        &store,
        &event(SUCCEEDED, "pi_1", "succeeded", Some(ORDER)),
    ));

    let payment = store.payment_of(&order_id(ORDER)).unwrap().unwrap();
    assert_eq!(payment.stripe_id, "pi_1");
    assert_eq!(store.refund_of("pi_1").unwrap(), Some(None));
}

#[test]
fn a_succeeded_intent_is_recorded_once() {
    let store = placed_with_intent("pi_1");
    let body = event(SUCCEEDED, "pi_1", "succeeded", Some(ORDER));

    received_ok(deliver(&store, &body));
    received_ok(deliver(&store, &body));

    let payment = store.payment_of(&order_id(ORDER)).unwrap().unwrap();
    assert_eq!(payment.stripe_id, "pi_1");
    let events = outbox(&store);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0], Event::PaymentCreated(payment.event()));
}

#[test]
fn localstripes_delivery_verifies_and_records() {
    let store = store();
    // The intent was never remembered here: its metadata names the order.
    put_order(&store, ORDER, "buyer", 1099);
    let request = delivery(LOCALSTRIPE_BODY, Some(LOCALSTRIPE_SIGNATURE));

    received_ok(handle(&request, &store, "whsec_capture", 1_795_488_718));

    let payment = store.payment_of(&order_id(ORDER)).unwrap().unwrap();
    assert_eq!(payment.stripe_id, LOCALSTRIPE_INTENT);
}

#[test]
fn a_payment_already_recorded_by_the_charge_is_not_recorded_again() {
    let store = placed_with_intent("pi_1");
    let earlier = Payment::new(order_id(ORDER), "pi_1");
    store.record(&earlier, NOW).unwrap();

    received_ok(deliver(
        &store,
        &event(SUCCEEDED, "pi_1", "succeeded", Some(ORDER)),
    ));

    assert_eq!(store.payment_of(&order_id(ORDER)).unwrap(), Some(earlier));
    assert_eq!(outbox(&store).len(), 1);
}

#[test]
fn a_payment_of_a_cancelled_order_is_recorded() {
    let store = placed_with_intent("pi_1");
    set_status(&store, ORDER, 1, OrderStatus::Cancelled);
    received_ok(deliver(
        &store,
        &event(SUCCEEDED, "pi_1", "succeeded", Some(ORDER)),
    ));
    assert!(store.payment_of(&order_id(ORDER)).unwrap().is_some());
}

#[test]
fn bad_signatures_are_400s_and_record_nothing() {
    let store = placed_with_intent("pi_1");
    let body = event(SUCCEEDED, "pi_1", "succeeded", Some(ORDER));
    let stale = signature::header(&body, SECRET, NOW - signature::TOLERANCE_SECONDS - 1);
    let foreign = signature::header(&body, "whsec_other", NOW);
    let cases = [
        (None, "Missing Stripe-Signature header"),
        (Some("v1=abc"), "Malformed Stripe-Signature header"),
        (
            Some(foreign.as_str()),
            "Stripe-Signature does not match the payload",
        ),
        (
            Some(stale.as_str()),
            "Stripe-Signature timestamp is outside the tolerance",
        ),
    ];
    for (signature, message) in cases {
        assert_error(
            handle(&delivery(&body, signature), &store, SECRET, NOW),
            400,
            json!([{ "message": message }]),
        );
    }
    // A body changed after signing.
    let signature = signature::header(&body, SECRET, NOW);
    let tampered = event(SUCCEEDED, "pi_2", "succeeded", Some(ORDER));
    assert_error(
        handle(&delivery(&tampered, Some(&signature)), &store, SECRET, NOW),
        400,
        json!([{"message": "Stripe-Signature does not match the payload"}]),
    );
    assert_eq!(store.payment_of(&order_id(ORDER)).unwrap(), None);
    assert!(outbox(&store).is_empty());
}

#[test]
fn other_events_are_acknowledged_and_ignored() {
    let store = placed_with_intent("pi_1");
    for body in [
        event(
            "payment_intent.payment_failed",
            "pi_1",
            "requires_payment_method",
            Some(ORDER),
        ),
        event("charge.succeeded", "ch_1", "succeeded", Some(ORDER)),
        // Says succeeded, but the intent does not.
        event(SUCCEEDED, "pi_1", "processing", Some(ORDER)),
        // Neither remembered here nor naming a known order.
        event(SUCCEEDED, "pi_9", "succeeded", None),
        event(SUCCEEDED, "pi_9", "succeeded", Some(OTHER_ORDER)),
        event(SUCCEEDED, "pi_9", "succeeded", Some("not-an-id")),
    ] {
        received_ok(deliver(&store, &body));
    }
    assert_eq!(store.payment_of(&order_id(ORDER)).unwrap(), None);
    assert!(outbox(&store).is_empty());
}

#[test]
fn signed_garbage_is_a_400() {
    let store = store();
    for body in [
        &b"not json"[..],
        b"{}",
        br#"{"type": "payment_intent.succeeded"}"#,
    ] {
        let response = deliver(&store, body);
        assert_eq!(response.into_response().status(), &400, "{body:?}");
    }
    let body = serde_json::to_vec(&json!({
        "type": SUCCEEDED, "data": {"object": {"object": "payment_intent"}}
    }))
    .unwrap();
    assert_error(
        deliver(&store, &body),
        400,
        json!([{"message": "Invalid payment_intent.succeeded event: missing field `id`"}]),
    );
}

#[test]
fn a_store_failure_is_a_500_so_stripe_retries() {
    let store = placed_with_intent("pi_1");
    store
        .db()
        .fail_statements_containing("INSERT INTO payments");
    let body = event(SUCCEEDED, "pi_1", "succeeded", Some(ORDER));
    assert_error(
        deliver(&store, &body),
        500,
        json!([{"message": "Something went wrong"}]),
    );
    store.db().heal();
    received_ok(deliver(&store, &body));
    assert!(store.payment_of(&order_id(ORDER)).unwrap().is_some());
}
