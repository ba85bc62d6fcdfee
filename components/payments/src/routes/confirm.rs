//! POST /api/payments/confirm `{orderId}`: the browser's follow-up after it confirmed
//! the PaymentIntent with Stripe.js (or finished 3-D Secure).
//!
//! Stripe is asked for the order's PaymentIntents (newest first); the first that
//! succeeded is recorded, unless the webhook got there first: 201 `{id, orderId,
//! stripeId}` when recorded now, 200 with the order's payment when it already was (by
//! this intent or another). Whatever the order's status, Stripe has taken the money and
//! it is recorded; if the order was cancelled meanwhile the charge is refunded (a 409
//! saying so). Otherwise 402 with the decline's message, or 400 while the intent is not
//! paid yet.

use common::sqlite::Database;
use common::{ApiError, json};
use spin_sdk::http::{Request, Response};

use super::{Deps, Pause, PaymentBody, REFUNDING, stripe_failure};
use crate::domain::Payment;
use crate::store::Recorded;
use crate::stripe::{IntentStatus, Stripe};

/// Message when no PaymentIntent was created for the order.
pub const NOT_STARTED: &str = "No payment was started for this order";

/// Message while the newest PaymentIntent is neither paid nor declined.
pub const NOT_COMPLETE: &str = "Payment is not complete";

/// How many of an order's PaymentIntents are checked (each is one Stripe call).
const MAX_INTENTS: u64 = 3;

/// Records the payment of one of the caller's orders if Stripe says it succeeded.
pub async fn handle<D: Database, S: Stripe, P: Pause>(
    req: &Request,
    deps: &Deps<D, S, P>,
) -> Result<Response, ApiError> {
    let (user, raw_id) = deps.caller_and_order_id(req)?;
    let (order, _) = deps.buyers_order(&raw_id, &user)?;
    if let Some(payment) = deps.payments.payment_of(&order.id)? {
        return Ok(json::json_response(200, &PaymentBody::from(&payment)));
    }

    let mut newest = None;
    for stripe_id in deps.payments.intents_of(&order.id, MAX_INTENTS)? {
        let intent = deps
            .stripe
            .retrieve_payment_intent(&stripe_id)
            .await
            .map_err(|err| stripe_failure(err, false))?;
        if intent.status == IntentStatus::Succeeded {
            let payment = Payment::new(order.id.clone(), &intent.id);
            return match deps.payments.record(&payment, deps.now)? {
                Recorded::New(payment) => {
                    Ok(json::json_response(201, &PaymentBody::from(&payment)))
                }
                Recorded::Existing(payment) | Recorded::Duplicate { kept: payment } => {
                    Ok(json::json_response(200, &PaymentBody::from(&payment)))
                }
                Recorded::Refunding(_) => Err(ApiError::Conflict(REFUNDING.to_owned())),
            };
        }
        newest.get_or_insert(intent);
    }
    let Some(newest) = newest else {
        return Err(ApiError::BadRequest(NOT_STARTED.to_owned()));
    };
    match newest.failure_message() {
        Some(message) if newest.status == IntentStatus::RequiresPaymentMethod => {
            Err(ApiError::PaymentRequired(message.to_owned()))
        }
        _ => Err(ApiError::BadRequest(NOT_COMPLETE.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::create;
    use crate::testing::*;
    use common::events::{Event, OrderStatus};
    use serde_json::{Value, json};
    use spin_sdk::http::Method;

    fn confirm(deps: &TestDeps, user: Option<&str>, body: Value) -> Result<Response, ApiError> {
        run(handle(
            &request(Method::Post, "/api/payments/confirm", user, Some(body)),
            deps,
        ))
    }

    /// An order whose PaymentIntent the browser now holds (no token); its id.
    fn started(deps: &TestDeps) -> String {
        put_order(&deps.payments, ORDER, "buyer", 1099);
        let req = request(
            Method::Post,
            "/api/payments",
            Some("buyer"),
            Some(json!({"orderId": ORDER})),
        );
        let response = run(create::handle(&req, deps)).unwrap();
        body_json(&response)["stripeId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn records_a_payment_the_browser_confirmed_once() {
        let deps = deps();
        let stripe_id = started(&deps);
        deps.stripe.succeed(&stripe_id);

        let first = confirm(&deps, Some("buyer"), json!({"orderId": ORDER})).unwrap();
        let second = confirm(&deps, Some("buyer"), json!({"orderId": ORDER})).unwrap();

        assert_eq!(*first.status(), 201);
        let body = body_json(&first);
        assert_eq!(body["orderId"], ORDER);
        assert_eq!(body["stripeId"], stripe_id.as_str());
        assert_eq!(*second.status(), 200);
        assert_eq!(body_json(&second), body);
        let events = outbox(&deps.payments);
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], Event::PaymentCreated(p) if p.stripe_id == stripe_id));
    }

    #[test]
    fn a_payment_of_an_order_cancelled_meanwhile_is_recorded_and_refunded() {
        let deps = deps();
        let stripe_id = started(&deps);
        deps.stripe.succeed(&stripe_id);
        set_status(&deps.payments, ORDER, 1, OrderStatus::Cancelled);

        assert_error(
            confirm(&deps, Some("buyer"), json!({"orderId": ORDER})),
            409,
            json!([{"message": REFUNDING}]),
        );
        let payment = deps.payments.payment_of(&order_id(ORDER)).unwrap().unwrap();
        assert_eq!(payment.stripe_id, stripe_id);
        assert_eq!(deps.payments.refund_of(&stripe_id).unwrap(), Some(None));
        // Asking again answers with the payment, which is being refunded.
        let again = confirm(&deps, Some("buyer"), json!({"orderId": ORDER})).unwrap();
        assert_eq!(*again.status(), 200);
    }

    #[test]
    fn an_unpaid_intent_is_not_recorded() {
        let deps = deps();
        let stripe_id = started(&deps);
        assert_error(
            confirm(&deps, Some("buyer"), json!({"orderId": ORDER})),
            400,
            json!([{"message": "Payment is not complete"}]),
        );
        deps.stripe.decline(&stripe_id);
        assert_error(
            confirm(&deps, Some("buyer"), json!({"orderId": ORDER})),
            402,
            json!([{"message": "Your card was declined."}]),
        );
        assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
        assert!(outbox(&deps.payments).is_empty());
    }

    #[test]
    fn finds_the_intent_that_succeeded_among_several() {
        let deps = deps();
        put_order(&deps.payments, ORDER, "buyer", 1099);
        let req = |card: &str| {
            request(
                Method::Post,
                "/api/payments",
                Some("buyer"),
                Some(json!({"orderId": ORDER, "token": card})),
            )
        };
        // A 3-D Secure card the buyer then authenticated, after a declined one.
        let _ = run(create::handle(&req(DECLINED_CARD), &deps));
        let pending = run(create::handle(&req(THREE_D_SECURE_CARD), &deps)).unwrap();
        let stripe_id = body_json(&pending)["stripeId"].as_str().unwrap().to_owned();
        deps.stripe.succeed(&stripe_id);

        let response = confirm(&deps, Some("buyer"), json!({"orderId": ORDER})).unwrap();
        assert_eq!(*response.status(), 201);
        assert_eq!(body_json(&response)["stripeId"], stripe_id.as_str());
    }

    #[test]
    fn an_order_without_an_intent_has_nothing_to_confirm() {
        let deps = deps();
        put_order(&deps.payments, ORDER, "buyer", 1099);
        assert_error(
            confirm(&deps, Some("buyer"), json!({"orderId": ORDER})),
            400,
            json!([{"message": "No payment was started for this order"}]),
        );
    }

    #[test]
    fn session_validation_and_ownership_come_first() {
        let deps = deps();
        started(&deps);
        assert_error(
            confirm(&deps, None, json!({"orderId": ORDER})),
            401,
            json!([{"message": "Not authorized"}]),
        );
        assert_error(
            confirm(&deps, Some("buyer"), json!({})),
            400,
            json!([{"message": "OrderId must be provided", "field": "orderId"}]),
        );
        assert_error(
            confirm(&deps, Some("buyer"), json!({"orderId": OTHER_ORDER})),
            404,
            json!([{"message": "Not Found"}]),
        );
        assert_error(
            confirm(&deps, Some("intruder"), json!({"orderId": ORDER})),
            401,
            json!([{"message": "Not authorized"}]),
        );
    }

    #[test]
    fn stripe_unreachable_is_a_503() {
        let deps = deps();
        let stripe_id = started(&deps);
        deps.stripe.succeed(&stripe_id);
        deps.stripe.go_down();
        assert_error(
            confirm(&deps, Some("buyer"), json!({"orderId": ORDER})),
            503,
            json!([{"message": "Payment provider unavailable"}]),
        );
        assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
    }
}
