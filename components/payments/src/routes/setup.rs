//! POST /api/payments/setup `{orderId}` → 201 `{clientSecret}`: a fresh SetupIntent for
//! the browser to turn the card typed into Stripe.js Elements into a PaymentMethod.
//!
//! The browser confirms it with `stripe.confirmCardSetup(clientSecret, {payment_method:
//! {card}})`, which gives it a `pm_…`, then pays with `POST /api/payments {orderId,
//! token: "pm_…"}`. Real Stripe.js and localstripe's stand-in both do this (the stand-in
//! can neither create a PaymentMethod nor confirm a PaymentIntent with the card's data),
//! so the browser's flow is the same in production and in tests.
//!
//! The checks are those of `POST /api/payments`, in the same order and before Stripe is
//! asked anything: 401 not signed in → 400 `orderId` → 404 (after the replica wait) →
//! 401 not the owner → 400 cancelled → 400 expired → 400 already paid. Nothing is
//! recorded: the payment that uses the card is. Stripe unreachable is a 503.

use common::sqlite::Database;
use common::{ApiError, json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spin_sdk::http::{Request, Response};

use super::create::payable_order;
use super::{Deps, Pause, order_id_field, stripe_failure};
use crate::stripe::{NewSetupIntent, Stripe};

#[derive(Deserialize)]
struct Input {
    #[serde(default, rename = "orderId")]
    order_id: Option<Value>,
}

/// `{clientSecret}` of the SetupIntent.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SetupBody<'a> {
    client_secret: &'a str,
}

/// Creates a SetupIntent for the card that will pay one of the caller's orders.
pub async fn handle<D: Database, S: Stripe, P: Pause>(
    req: &Request,
    deps: &Deps<D, S, P>,
) -> Result<Response, ApiError> {
    let user = deps.user(req)?;
    let input: Input = json::parse_body(req.body())?;
    let raw_id =
        order_id_field(input.order_id.as_ref()).map_err(|err| ApiError::Validation(vec![err]))?;
    let (order, _) = payable_order(deps, raw_id, &user)?;
    let request = NewSetupIntent {
        order_id: order.id.to_string(),
    };
    // Only `orderId` comes from the buyer, and it has been checked: a refusal of this
    // request is ours (a 500), an outage a 503.
    let setup = deps
        .stripe
        .create_setup_intent(&request)
        .await
        .map_err(|err| stripe_failure(err, false))?;
    let client_secret = setup
        .client_secret
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("SetupIntent {} came without a client secret", setup.id))?;
    Ok(json::json_response(201, &SetupBody { client_secret }))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use common::events::OrderStatus;
    use common::sqlite::testing::MemoryDb;
    use serde_json::json;
    use spin_sdk::http::Method;

    use super::*;
    use crate::domain::Payment;
    use crate::routes::create::REPLICA_WAIT;
    use crate::testing::*;

    fn setup(
        deps: &Deps<impl Database, FakeStripe, impl Pause>,
        user: Option<&str>,
        body: Value,
    ) -> Result<Response, ApiError> {
        run(handle(
            &request(Method::Post, "/api/payments/setup", user, Some(body)),
            deps,
        ))
    }

    fn for_order() -> Value {
        json!({"orderId": ORDER})
    }

    fn placed() -> TestDeps {
        let deps = deps();
        put_order(&deps.payments, ORDER, "buyer", 1099);
        deps
    }

    #[test]
    fn the_buyer_gets_a_fresh_setup_intent_and_nothing_is_recorded() {
        let deps = placed();

        let response = setup(&deps, Some("buyer"), for_order()).unwrap();

        assert_eq!(*response.status(), 201);
        assert_eq!(
            body_json(&response),
            json!({"clientSecret": "seti_fake1_secret_x"})
        );
        assert_eq!(
            deps.stripe.calls(),
            [Call::Setup(NewSetupIntent {
                order_id: ORDER.into()
            })]
        );
        assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
        assert!(
            deps.payments
                .intents_of(&order_id(ORDER), 5)
                .unwrap()
                .is_empty()
        );
        assert!(outbox(&deps.payments).is_empty());

        // Another card (a reload, a retry after a decline) gets another intent.
        let again = setup(
            &deps,
            Some("buyer"),
            json!({"orderId": format!(" {ORDER} ")}),
        );
        assert_eq!(
            body_json(&again.unwrap()),
            json!({"clientSecret": "seti_fake2_secret_x"})
        );
        assert_eq!(deps.stripe.charges(), 0);
    }

    #[test]
    fn requires_a_session_before_anything_else() {
        let deps = placed();
        for body in [for_order(), json!({})] {
            assert_error(
                setup(&deps, None, body),
                401,
                json!([{"message": "Not authorized"}]),
            );
        }
        assert!(deps.stripe.calls().is_empty());
    }

    #[test]
    fn the_order_id_must_be_provided() {
        let deps = placed();
        for body in [
            json!({}),
            json!({"orderId": ""}),
            json!({"orderId": "  "}),
            json!({"orderId": null}),
            json!({"orderId": 5}),
            json!({"order_id": ORDER}),
        ] {
            assert_error(
                setup(&deps, Some("buyer"), body),
                400,
                json!([{"message": "OrderId must be provided", "field": "orderId"}]),
            );
        }
        let mut req = request(Method::Post, "/api/payments/setup", Some("buyer"), None);
        *req.body_mut() = b"{\"orderId\":".to_vec();
        assert_error(
            run(handle(&req, &deps)),
            400,
            json!([{"message": "Request body must be valid JSON"}]),
        );
        assert!(deps.stripe.calls().is_empty());
    }

    #[test]
    fn unknown_malformed_and_half_known_orders_are_not_found() {
        let deps = placed();
        set_status(&deps.payments, OTHER_ORDER, 1, OrderStatus::Cancelled);
        for id in ["6f1c2d3e-0000-4000-8000-000000000000", "abc", OTHER_ORDER] {
            assert_error(
                setup(&deps, Some("buyer"), json!({"orderId": id})),
                404,
                json!([{"message": "Not Found"}]),
            );
        }
        assert!(deps.stripe.calls().is_empty());
    }

    #[test]
    fn an_order_on_its_way_to_the_replica_is_waited_for() {
        let db = MemoryDb::new();
        let paused = Cell::new(Duration::ZERO);
        let deps = with_other_instance(&db, &paused, |payments| {
            if payments.order(&order_id(ORDER)).unwrap().is_none() {
                put_order(payments, ORDER, "buyer", 1099);
            }
        });
        let response = setup(&deps, Some("buyer"), for_order()).unwrap();
        assert_eq!(*response.status(), 201);
        assert!(paused.get() > Duration::ZERO && paused.get() < REPLICA_WAIT);

        let db = MemoryDb::new();
        let paused = Cell::new(Duration::ZERO);
        let deps = with_other_instance(&db, &paused, |_| {});
        assert_error(
            setup(&deps, Some("buyer"), for_order()),
            404,
            json!([{"message": "Not Found"}]),
        );
        assert_eq!(paused.get(), REPLICA_WAIT);
        assert!(deps.stripe.calls().is_empty());
    }

    #[test]
    fn someone_elses_order_is_not_authorized() {
        let deps = placed();
        assert_error(
            setup(&deps, Some("intruder"), for_order()),
            401,
            json!([{"message": "Not authorized"}]),
        );
        assert!(deps.stripe.calls().is_empty());
    }

    #[test]
    fn cancelled_expired_and_paid_orders_are_refused_in_that_order() {
        let refused = |deps: &TestDeps, message: &str| {
            assert_error(
                setup(deps, Some("buyer"), for_order()),
                400,
                json!([{ "message": message }]),
            );
        };
        let paid = || {
            let deps = placed();
            deps.payments
                .record(&Payment::new(order_id(ORDER), "pi_earlier"), NOW)
                .unwrap();
            deps
        };

        let mut deps = paid();
        set_status(&deps.payments, ORDER, 1, OrderStatus::Cancelled);
        deps.now = EXPIRES_AT + 1;
        refused(&deps, "Cannot pay for an cancelled order");

        let mut deps = paid();
        deps.now = EXPIRES_AT + 1;
        refused(&deps, "Order has expired");
        deps.now = EXPIRES_AT;
        refused(&deps, "Order is already paid");
        assert!(deps.stripe.calls().is_empty());

        let deps = placed();
        set_status(&deps.payments, ORDER, 1, OrderStatus::Complete);
        refused(&deps, "Order is already paid");
        assert!(deps.stripe.calls().is_empty());
    }

    #[test]
    fn stripe_unreachable_is_a_503() {
        let deps = placed();
        deps.stripe.go_down();
        assert_error(
            setup(&deps, Some("buyer"), for_order()),
            503,
            json!([{"message": "Payment provider unavailable"}]),
        );
        assert!(outbox(&deps.payments).is_empty());

        deps.stripe.come_back();
        assert_eq!(
            *setup(&deps, Some("buyer"), for_order()).unwrap().status(),
            201
        );
    }
}
