//! POST /api/payments/setup `{orderId}` → 201 `{clientSecret}`: a fresh SetupIntent for
//! the browser to turn the card typed into Stripe.js Elements into a PaymentMethod.
//!
//! The SetupIntent belongs to the order's Stripe Customer, created by the order's first
//! setup call and remembered for the later ones: Stripe attaches the PaymentMethod to it,
//! and refuses to charge a PaymentMethod that a SetupIntent without a Customer confirmed
//! (`payment_method_used_without_customer`), so `POST /api/payments` names the same
//! Customer in its PaymentIntent.
//!
//! The browser confirms it with `stripe.confirmCardSetup(clientSecret, {payment_method:
//! {card}})`, which gives it a `pm_…`, then pays with `POST /api/payments {orderId,
//! token: "pm_…"}`. Real Stripe.js and localstripe's stand-in both do this (the stand-in
//! can neither create a PaymentMethod nor confirm a PaymentIntent with the card's data),
//! so the browser's flow is the same in production and in tests.
//!
//! The checks are those of `POST /api/payments`, in the same order and before Stripe is
//! asked anything: 401 not signed in → 400 `orderId` → 404 (after the replica wait) →
//! 401 not the owner → 400 cancelled → 400 expired → 400 already paid. Only the
//! Customer is recorded: the payment that uses the card is recorded when it is made.
//! Stripe unreachable is a 503, and a Customer is remembered only once Stripe created it.

use common::sqlite::Database;
use common::{ApiError, json};
use serde::Serialize;
use spin_sdk::http::{Request, Response};

use super::create::payable_order;
use super::{Deps, Pause, stripe_failure};
use crate::domain::{Order, Terms};
use crate::stripe::{NewCustomer, NewSetupIntent, Stripe};

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
    let (user, raw_id) = deps.caller_and_order_id(req)?;
    let (order, terms) = payable_order(deps, &raw_id, &user)?;
    let request = NewSetupIntent {
        customer: order_customer(deps, &order, &terms).await?,
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

/// The order's Stripe Customer: the one remembered, else a new one, remembered.
///
/// Two first setup calls for one order at once may both create a Customer at Stripe;
/// the one remembered first is the order's, for both, and the other stays at Stripe
/// unused (an empty Customer costs nothing). A Stripe failure remembers nothing (an
/// outage is a 503); a Customer created but not remembered (the write failed, a 500) is
/// such an orphan too.
async fn order_customer<D: Database, S: Stripe, P: Pause>(
    deps: &Deps<D, S, P>,
    order: &Order,
    terms: &Terms,
) -> Result<String, ApiError> {
    if let Some(customer) = deps.payments.customer_of(&order.id)? {
        return Ok(customer);
    }
    let request = NewCustomer {
        user_id: terms.user_id.clone(),
        order_id: order.id.to_string(),
    };
    // Nothing in this request comes from the buyer: a refusal is ours (a 500).
    let created = deps
        .stripe
        .create_customer(&request)
        .await
        .map_err(|err| stripe_failure(err, false))?;
    let customer = deps
        .payments
        .remember_customer(&order.id, &created.id, deps.now)?;
    if customer != created.id {
        eprintln!(
            "payments: order {} already has Stripe customer {customer}; customer {} created \
             at the same time is left unused",
            order.id, created.id
        );
    }
    Ok(customer)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use common::events::OrderStatus;
    use common::sqlite::testing::MemoryDb;
    use serde_json::{Value, json};
    use spin_sdk::http::Method;

    use super::*;
    use crate::domain::Payment;
    use crate::routes::create::REPLICA_WAIT;
    use crate::store::Payments;
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

    fn setup_for(customer: &str) -> Call {
        Call::Setup(NewSetupIntent {
            customer: customer.into(),
            order_id: ORDER.into(),
        })
    }

    fn new_customer() -> Call {
        Call::Customer(NewCustomer {
            user_id: "buyer".into(),
            order_id: ORDER.into(),
        })
    }

    #[test]
    fn the_buyer_gets_a_fresh_setup_intent_of_the_orders_customer() {
        let deps = placed();

        let response = setup(&deps, Some("buyer"), for_order()).unwrap();

        assert_eq!(*response.status(), 201);
        assert_eq!(
            body_json(&response),
            json!({"clientSecret": "seti_fake1_secret_x"})
        );
        assert_eq!(
            deps.stripe.calls(),
            [new_customer(), setup_for("cus_fake1")]
        );
        assert_eq!(
            deps.payments
                .customer_of(&order_id(ORDER))
                .unwrap()
                .as_deref(),
            Some("cus_fake1")
        );
        assert_eq!(deps.payments.payment_of(&order_id(ORDER)).unwrap(), None);
        assert!(
            deps.payments
                .intents_of(&order_id(ORDER), 5)
                .unwrap()
                .is_empty()
        );
        assert!(outbox(&deps.payments).is_empty());

        // Another card (a reload, a retry after a decline) gets another intent, of the
        // same Customer: it is created once per order.
        let again = setup(
            &deps,
            Some("buyer"),
            json!({"orderId": format!(" {ORDER} ")}),
        );
        assert_eq!(
            body_json(&again.unwrap()),
            json!({"clientSecret": "seti_fake2_secret_x"})
        );
        assert_eq!(
            deps.stripe.calls(),
            [
                new_customer(),
                setup_for("cus_fake1"),
                setup_for("cus_fake1")
            ]
        );
        assert_eq!(deps.stripe.charges(), 0);
    }

    #[test]
    fn each_order_has_its_own_customer() {
        let deps = placed();
        put_order(&deps.payments, OTHER_ORDER, "buyer", 500);
        setup(&deps, Some("buyer"), for_order()).unwrap();
        setup(&deps, Some("buyer"), json!({"orderId": OTHER_ORDER})).unwrap();
        assert_eq!(
            deps.payments
                .customer_of(&order_id(OTHER_ORDER))
                .unwrap()
                .as_deref(),
            Some("cus_fake2")
        );
        assert_eq!(
            deps.payments
                .customer_of(&order_id(ORDER))
                .unwrap()
                .as_deref(),
            Some("cus_fake1")
        );
    }

    #[test]
    fn a_customer_remembered_by_another_request_is_used() {
        let deps = placed();
        // Another instance's first setup call won the race, or an earlier call.
        deps.payments
            .remember_customer(&order_id(ORDER), "cus_earlier", NOW)
            .unwrap();

        assert_eq!(
            *setup(&deps, Some("buyer"), for_order()).unwrap().status(),
            201
        );
        assert_eq!(deps.stripe.calls(), [setup_for("cus_earlier")]);
    }

    #[test]
    fn concurrent_first_setups_end_up_with_one_customer() {
        // The other request, played by the fake, shares the database.
        let (db, deps) = shared_deps();
        put_order(&deps.payments, ORDER, "buyer", 1099);
        // The other request creates its Customer and remembers it while ours is created.
        deps.stripe.while_creating_customers(move || {
            let other = Payments::new(db).unwrap();
            assert_eq!(
                other
                    .remember_customer(&order_id(ORDER), "cus_other", NOW)
                    .unwrap(),
                "cus_other"
            );
        });

        assert_eq!(
            *setup(&deps, Some("buyer"), for_order()).unwrap().status(),
            201
        );
        // Ours (cus_fake1) is left unused at Stripe; both SetupIntents use the other.
        assert_eq!(
            deps.stripe.calls(),
            [new_customer(), setup_for("cus_other")]
        );
        assert_eq!(
            deps.payments
                .customer_of(&order_id(ORDER))
                .unwrap()
                .as_deref(),
            Some("cus_other")
        );
    }

    #[test]
    fn a_customer_that_could_not_be_remembered_is_not_used() {
        let deps = placed();
        deps.payments
            .db()
            .fail_statements_containing("INTO customers");

        assert_error(
            setup(&deps, Some("buyer"), for_order()),
            500,
            json!([{"message": "Something went wrong"}]),
        );
        // No SetupIntent for a Customer the order would not know.
        assert_eq!(deps.stripe.calls(), [new_customer()]);

        deps.payments.db().heal();
        assert_eq!(deps.payments.customer_of(&order_id(ORDER)).unwrap(), None);
        setup(&deps, Some("buyer"), for_order()).unwrap();
        assert_eq!(deps.stripe.calls()[2], setup_for("cus_fake2"));
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
    fn stripe_unreachable_is_a_503_and_no_customer_is_remembered() {
        let deps = placed();
        deps.stripe.go_down();
        assert_error(
            setup(&deps, Some("buyer"), for_order()),
            503,
            json!([{"message": "Payment provider unavailable"}]),
        );
        assert_eq!(deps.stripe.calls(), [new_customer()]);
        assert_eq!(deps.payments.customer_of(&order_id(ORDER)).unwrap(), None);
        assert!(outbox(&deps.payments).is_empty());

        deps.stripe.come_back();
        assert_eq!(
            *setup(&deps, Some("buyer"), for_order()).unwrap().status(),
            201
        );
        assert_eq!(
            deps.payments
                .customer_of(&order_id(ORDER))
                .unwrap()
                .as_deref(),
            Some("cus_fake1")
        );
    }

    #[test]
    fn stripe_unreachable_after_the_customer_keeps_it_for_the_retry() {
        let deps = placed();
        setup(&deps, Some("buyer"), for_order()).unwrap();
        deps.stripe.go_down();
        assert_error(
            setup(&deps, Some("buyer"), for_order()),
            503,
            json!([{"message": "Payment provider unavailable"}]),
        );
        deps.stripe.come_back();
        setup(&deps, Some("buyer"), for_order()).unwrap();
        assert_eq!(deps.stripe.new_customers().len(), 1);
        assert_eq!(deps.stripe.calls().last(), Some(&setup_for("cus_fake1")));
    }
}
