use common::events::{Event, OrderStatus, PaymentCreated};
use serde_json::json;
use spin_sdk::http::Method;

use super::*;

mod waits;
use crate::store::{ATTEMPT_LEASE_SECONDS, Payments};
use crate::testing::*;

fn pay(deps: &TestDeps, user: Option<&str>, body: Value) -> Result<Response, ApiError> {
    run(handle(
        &request(Method::Post, "/api/payments", user, Some(body)),
        deps,
    ))
}

fn with_card(card: &str) -> Value {
    json!({"orderId": ORDER, "token": card})
}

fn placed() -> TestDeps {
    let deps = deps();
    put_order(&deps.payments, ORDER, "buyer", 1099);
    deps
}

fn key(card: &str) -> String {
    format!("pi-create-{ORDER}-{card}")
}

#[test]
fn a_cancellation_that_lands_during_the_charge_is_a_409_and_the_charge_goes_back() {
    let (db, deps) = shared_deps();
    put_order(&deps.payments, ORDER, "buyer", 1099);
    deps.stripe.while_charging(move || {
        set_status(
            &Payments::new(db).unwrap(),
            ORDER,
            1,
            OrderStatus::Cancelled,
        );
    });

    let req = request(
        Method::Post,
        "/api/payments",
        Some("buyer"),
        Some(with_card("pm_card_visa")),
    );
    assert_error(
        run(handle(&req, &deps)),
        409,
        json!([{"message": crate::routes::REFUNDING}]),
    );
    assert_eq!(deps.stripe.charges(), 1);
    assert_eq!(deps.payments.refund_of("pi_fake1").unwrap(), Some(None));
    run(crate::refunds::make_due(&deps.payments, &deps.stripe, NOW)).unwrap();
    assert_eq!(deps.stripe.refunds(), ["pi_fake1"]);
}

#[test]
fn a_card_payment_is_charged_recorded_and_announced() {
    let deps = placed();

    let response = pay(&deps, Some("buyer"), with_card("pm_card_visa")).unwrap();

    assert_eq!(*response.status(), 201);
    let body = body_json(&response);
    let id = body["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(
        body,
        json!({"id": id, "orderId": ORDER, "stripeId": "pi_fake1"})
    );
    assert_eq!(
        deps.stripe.creates(),
        [NewPaymentIntent {
            amount_cents: 1099,
            order_id: ORDER.into(),
            payment_method: Some("pm_card_visa".into()),
            // No card was set up for the order: no Customer, as before Customers.
            customer: None,
            idempotency_key: key("pm_card_visa"),
        }]
    );
    let payment = deps.payments.payment_of(&order_id(ORDER)).unwrap().unwrap();
    assert_eq!(
        (payment.id.as_str(), payment.stripe_id.as_str()),
        (id, "pi_fake1")
    );
    assert_eq!(
        outbox(&deps.payments),
        [Event::PaymentCreated(PaymentCreated {
            id: id.into(),
            order_id: ORDER.into(),
            stripe_id: "pi_fake1".into(),
        })]
    );
}

#[test]
fn a_card_set_up_for_the_order_is_charged_with_the_orders_customer() {
    let deps = placed();
    put_order(&deps.payments, OTHER_ORDER, "buyer", 500);
    deps.payments
        .remember_customer(&order_id(ORDER), "cus_of_order", NOW)
        .unwrap();
    deps.payments
        .remember_customer(&order_id(OTHER_ORDER), "cus_of_other", NOW)
        .unwrap();

    let response = pay(&deps, Some("buyer"), with_card("pm_1SetUp")).unwrap();

    assert_eq!(*response.status(), 201);
    assert_eq!(
        deps.stripe.creates(),
        [NewPaymentIntent {
            amount_cents: 1099,
            order_id: ORDER.into(),
            payment_method: Some("pm_1SetUp".into()),
            customer: Some("cus_of_order".into()),
            // The key is unchanged: the order's and the payment method's.
            idempotency_key: key("pm_1SetUp"),
        }]
    );
}

#[test]
fn setting_up_then_paying_uses_one_customer() {
    let deps = placed();
    for _ in 0..2 {
        crate::testing::run(crate::routes::setup::handle(
            &request(
                Method::Post,
                "/api/payments/setup",
                Some("buyer"),
                Some(json!({"orderId": ORDER})),
            ),
            &deps,
        ))
        .unwrap();
    }
    pay(&deps, Some("buyer"), with_card("pm_1SetUp")).unwrap();
    assert_eq!(deps.stripe.new_customers().len(), 1);
    let [created] = deps.stripe.creates().try_into().unwrap();
    assert_eq!(created.customer.as_deref(), Some("cus_fake1"));
}

#[test]
fn without_a_token_the_browser_gets_a_client_secret_and_nothing_is_recorded() {
    let deps = placed();

    let response = pay(&deps, Some("buyer"), json!({"orderId": ORDER})).unwrap();

    assert_eq!(*response.status(), 201);
    assert_eq!(
        body_json(&response),
        json!({"clientSecret": "pi_fake1_secret_x", "stripeId": "pi_fake1"})
    );
    let [created] = deps.stripe.creates().try_into().unwrap();
    assert_eq!(created.payment_method, None);
    assert_eq!(created.customer, None);
    assert_eq!(created.idempotency_key, format!("pi-create-{ORDER}"));
    assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
    assert!(outbox(&deps.payments).is_empty());
    assert_eq!(
        deps.payments.intents_of(&order_id(ORDER), 5).unwrap(),
        ["pi_fake1"]
    );

    // Asking again (a reload, a retry) gets the same intent: one key per order.
    let again = pay(
        &deps,
        Some("buyer"),
        json!({"orderId": ORDER, "token": null}),
    )
    .unwrap();
    assert_eq!(body_json(&again)["stripeId"], "pi_fake1");
    assert_eq!(deps.stripe.charges(), 0);
}

#[test]
fn requires_a_session() {
    let deps = placed();
    assert_error(
        pay(&deps, None, with_card("pm_card_visa")),
        401,
        json!([{"message": "Not authorized"}]),
    );
    assert!(deps.stripe.calls().is_empty());
}

#[test]
fn the_order_id_must_be_provided() {
    let deps = placed();
    for body in [
        json!({}),
        json!({"orderId": ""}),
        json!({"orderId": null}),
        json!({"orderId": 5}),
        json!({"orderId": [ORDER]}),
        json!({"order_id": ORDER}),
    ] {
        assert_error(
            pay(&deps, Some("buyer"), body),
            400,
            json!([{"message": "OrderId must be provided", "field": "orderId"}]),
        );
    }
    assert_error(
        pay(&deps, Some("buyer"), json!({"token": 42})),
        400,
        json!([
            {"message": "OrderId must be provided", "field": "orderId"},
            {"message": "Token must be a Stripe payment method id", "field": "token"},
        ]),
    );
    assert!(deps.stripe.calls().is_empty());
}

#[test]
fn bad_json_is_a_bad_request() {
    let deps = placed();
    let mut req = request(Method::Post, "/api/payments", Some("buyer"), None);
    *req.body_mut() = b"{\"orderId\":".to_vec();
    assert_error(
        run(handle(&req, &deps)),
        400,
        json!([{"message": "Request body must be valid JSON"}]),
    );
}

#[test]
fn unknown_malformed_and_half_known_orders_are_not_found() {
    let deps = placed();
    // Known only from `order:cancelled` so far: no buyer to check against.
    set_status(&deps.payments, OTHER_ORDER, 1, OrderStatus::Cancelled);
    for id in ["6f1c2d3e-0000-4000-8000-000000000000", "abc", OTHER_ORDER] {
        assert_error(
            pay(
                &deps,
                Some("buyer"),
                json!({"orderId": id, "token": "pm_card_visa"}),
            ),
            404,
            json!([{"message": "Not Found"}]),
        );
    }
    assert!(deps.stripe.calls().is_empty());
}

#[test]
fn someone_elses_order_is_not_authorized() {
    let deps = placed();
    assert_error(
        pay(&deps, Some("intruder"), with_card("pm_card_visa")),
        401,
        json!([{"message": "Not authorized"}]),
    );
    assert!(deps.stripe.calls().is_empty());
}

#[test]
fn cancelled_expired_and_paid_orders_are_refused_in_that_order() {
    let mut deps = placed();
    set_status(&deps.payments, ORDER, 1, OrderStatus::Cancelled);
    deps.now = EXPIRES_AT + 1;
    assert_error(
        pay(&deps, Some("buyer"), with_card("pm_card_visa")),
        400,
        json!([{"message": "Cannot pay for an cancelled order"}]),
    );

    let mut deps = placed();
    deps.payments
        .record(&Payment::new(order_id(ORDER), "pi_earlier"), NOW)
        .unwrap();
    deps.now = EXPIRES_AT + 1;
    assert_error(
        pay(&deps, Some("buyer"), with_card("pm_card_visa")),
        400,
        json!([{"message": "Order has expired"}]),
    );
    deps.now = EXPIRES_AT;
    assert_error(
        pay(&deps, Some("buyer"), with_card("pm_card_visa")),
        400,
        json!([{"message": "Order is already paid"}]),
    );

    let deps = placed();
    set_status(&deps.payments, ORDER, 1, OrderStatus::Complete);
    assert_error(
        pay(&deps, Some("buyer"), json!({"orderId": ORDER})),
        400,
        json!([{"message": "Order is already paid"}]),
    );
    assert!(deps.stripe.calls().is_empty());
}

#[test]
fn a_retry_after_success_never_charges_again() {
    let deps = placed();
    pay(&deps, Some("buyer"), with_card("pm_card_visa")).unwrap();
    for card in ["pm_card_visa", "pm_card_mastercard"] {
        assert_error(
            pay(&deps, Some("buyer"), with_card(card)),
            400,
            json!([{"message": "Order is already paid"}]),
        );
    }
    assert_eq!(deps.stripe.creates().len(), 1);
    assert_eq!(deps.stripe.charges(), 1);
    assert_eq!(outbox(&deps.payments).len(), 1);
}

#[test]
fn a_decline_records_nothing_and_another_card_can_pay() {
    let deps = placed();
    for _ in 0..2 {
        // The identical retry is deduplicated by Stripe (same key): the decline again.
        assert_error(
            pay(&deps, Some("buyer"), with_card(DECLINED_CARD)),
            402,
            json!([{"message": "Your card was declined."}]),
        );
    }
    assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
    assert!(outbox(&deps.payments).is_empty());

    let response = pay(&deps, Some("buyer"), with_card("pm_card_visa")).unwrap();
    assert_eq!(*response.status(), 201);
    let keys: Vec<String> = deps
        .stripe
        .creates()
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(
        keys,
        [key(DECLINED_CARD), key(DECLINED_CARD), key("pm_card_visa")]
    );
    assert_eq!(deps.stripe.charges(), 1);
}

#[test]
fn an_unknown_payment_method_is_a_token_error() {
    let deps = placed();
    assert_error(
        pay(&deps, Some("buyer"), with_card(UNKNOWN_CARD)),
        400,
        json!([{"message": "No such PaymentMethod: 'pm_unknown'", "field": "token"}]),
    );
    // The attempt was released: another card is not "in progress".
    assert_eq!(
        *pay(&deps, Some("buyer"), with_card("pm_card_visa"))
            .unwrap()
            .status(),
        201
    );
}

#[test]
fn stripe_unreachable_is_a_503_and_records_nothing() {
    let deps = placed();
    deps.stripe.go_down();
    for body in [with_card("pm_card_visa"), json!({"orderId": ORDER})] {
        assert_error(
            pay(&deps, Some("buyer"), body),
            503,
            json!([{"message": "Payment provider unavailable"}]),
        );
    }
    assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
    assert!(outbox(&deps.payments).is_empty());

    deps.stripe.come_back();
    let response = pay(&deps, Some("buyer"), with_card("pm_card_visa")).unwrap();
    assert_eq!(*response.status(), 201);
}

#[test]
fn a_card_that_needs_authentication_is_handed_to_the_browser() {
    let mut deps = placed();

    let response = pay(&deps, Some("buyer"), with_card(THREE_D_SECURE_CARD)).unwrap();

    assert_eq!(*response.status(), 202);
    assert_eq!(
        body_json(&response),
        json!({
            "clientSecret": "pi_fake1_secret_x",
            "stripeId": "pi_fake1",
            "status": "requires_action",
        })
    );
    assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
    assert!(outbox(&deps.payments).is_empty());

    // While the buyer authenticates, another card is not charged for the same order…
    assert_error(
        pay(&deps, Some("buyer"), with_card("pm_card_visa")),
        409,
        json!([{"message": "A payment for this order is already in progress"}]),
    );
    // …the same request again is fine (Stripe answers it from its idempotency cache)…
    let again = pay(&deps, Some("buyer"), with_card(THREE_D_SECURE_CARD)).unwrap();
    assert_eq!(body_json(&again)["stripeId"], "pi_fake1");
    // …and once the attempt's lease is over, another card may try.
    deps.now += ATTEMPT_LEASE_SECONDS;
    let response = pay(&deps, Some("buyer"), with_card("pm_card_visa")).unwrap();
    assert_eq!(*response.status(), 201);
}

#[test]
fn a_failed_write_after_the_charge_is_a_500_and_the_intent_is_remembered() {
    let deps = placed();
    deps.payments
        .db()
        .fail_statements_containing("INSERT INTO payments");

    assert_error(
        pay(&deps, Some("buyer"), with_card("pm_card_visa")),
        500,
        json!([{"message": "Something went wrong"}]),
    );

    deps.payments.db().heal();
    assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
    assert!(outbox(&deps.payments).is_empty());
    // The webhook or the follow-up call can still find the order of the charge.
    assert_eq!(
        deps.payments.intent_order("pi_fake1").unwrap(),
        Some(order_id(ORDER))
    );

    // Retrying the same payment records it, without a second charge.
    let retry = pay(&deps, Some("buyer"), with_card("pm_card_visa")).unwrap();
    assert_eq!(*retry.status(), 201);
    assert_eq!(body_json(&retry)["stripeId"], "pi_fake1");
    assert_eq!(deps.stripe.charges(), 1);
    assert_eq!(outbox(&deps.payments).len(), 1);
}
