//! The lock window and payments, end to end: orders, expiration and payments over real
//! HTTP, Redis and localstripe (a fake Stripe server started per test).

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tessera_blackbox::ChannelWatch;
use tessera_blackbox::marketplace::{
    Deal, Marketplace, STRIPE_WEBHOOK_SECRET, body, eventually, messages,
};
use tessera_blackbox::stripe::{
    get as stripe_get, list as stripe_list, pay_in_browser, payment_intents, succeeded_charges,
};

const DEADLINE: Duration = Duration::from_secs(20);

async fn order_status(m: &Marketplace, buyer: &Client, order_id: &str) -> String {
    let order = body(m.get(buyer, &format!("/api/orders/{order_id}")).await).await;
    order["status"].as_str().unwrap_or_default().to_owned()
}

async fn wait_for_status(m: &Marketplace, buyer: &Client, order_id: &str, want: &str) {
    eventually(
        &format!("order {order_id} to be {want}"),
        DEADLINE,
        || async { (order_status(m, buyer, order_id).await == want).then_some(()) },
    )
    .await;
}

/// Every SetupIntent localstripe holds.
async fn setup_intents(m: &Marketplace) -> Vec<Value> {
    stripe_list(m, "setup_intents").await
}

/// Every Customer localstripe holds.
async fn customers(m: &Marketplace) -> Vec<Value> {
    stripe_list(m, "customers").await
}

/// `POST /api/payments/setup` for `order_id` as `client`.
async fn setup(m: &Marketplace, client: &Client, order_id: &str) -> (StatusCode, Value) {
    let resp = m
        .post(client, "/api/payments/setup", json!({"orderId": order_id}))
        .await;
    let status = resp.status();
    (status, body(resp).await)
}

/// What Stripe.js (localstripe's stand-in) sends for `stripe.confirmCardSetup(
/// clientSecret, {payment_method: {card}})` with a Visa typed into the card element,
/// authenticated with the publishable key the app hands the browser; localstripe's
/// answer.
async fn confirm_card_setup(m: &Marketplace, client_secret: &str) -> (StatusCode, Value) {
    let config = body(m.get(&Client::new(), "/api/payments/config").await).await;
    let key = config["publishableKey"].as_str().expect("publishableKey");
    let seti = client_secret
        .split("_secret_")
        .next()
        .expect("a SetupIntent client secret");
    let resp = Client::new()
        .post(format!(
            "{}/v1/setup_intents/{seti}/confirm",
            m.stripe.base_url()
        ))
        .json(&json!({
            "key": key,
            "use_stripe_sdk": true,
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2030,
                    "cvc": "123",
                },
            },
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, body(resp).await)
}

#[tokio::test]
async fn the_browser_saves_the_card_with_a_setup_intent_and_pays_with_it() {
    let m = Marketplace::start();
    let deal = m.ordered_ticket(7.25).await;

    let (status, setup_body) = setup(&m, &deal.buyer, &deal.order_id).await;
    assert_eq!(status, StatusCode::CREATED, "{setup_body}");
    let client_secret = setup_body["clientSecret"].as_str().unwrap().to_owned();
    assert!(client_secret.starts_with("seti_"), "{setup_body}");
    assert_eq!(setup_body, json!({"clientSecret": client_secret}));
    let intents = setup_intents(&m).await;
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(
        (
            intents[0]["usage"].clone(),
            intents[0]["metadata"]["orderId"].clone()
        ),
        (json!("on_session"), json!(deal.order_id))
    );
    // The SetupIntent belongs to the order's Customer, made for it.
    let customer = intents[0]["customer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(customer.starts_with("cus_"), "{intents:?}");
    let known = customers(&m).await;
    assert_eq!(known.len(), 1, "{known:?}");
    assert_eq!(
        (
            known[0]["id"].clone(),
            known[0]["metadata"]["orderId"].clone()
        ),
        (json!(customer), json!(deal.order_id))
    );
    assert!(known[0]["metadata"]["userId"].is_string(), "{known:?}");

    let (status, confirmed) = confirm_card_setup(&m, &client_secret).await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    let method = confirmed["payment_method"].as_str().unwrap().to_owned();
    assert!(method.starts_with("pm_"), "{confirmed}");
    assert_eq!(
        order_status(&m, &deal.buyer, &deal.order_id).await,
        "created",
        "saving the card charges nothing"
    );
    let seti = client_secret.split("_secret_").next().unwrap();
    let confirmed_setup = stripe_get(&m, &format!("/v1/setup_intents/{seti}")).await;
    assert_eq!(
        (
            confirmed_setup["customer"].clone(),
            confirmed_setup["payment_method"].clone()
        ),
        (json!(customer), json!(method))
    );

    // Another setup for the same order (a reload, another card) reuses its Customer.
    let (status, again) = setup(&m, &deal.buyer, &deal.order_id).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_ne!(again["clientSecret"], json!(client_secret));
    let intents = setup_intents(&m).await;
    assert_eq!(intents.len(), 2, "{intents:?}");
    for intent in &intents {
        assert_eq!(intent["customer"], json!(customer), "{intents:?}");
    }
    assert_eq!(customers(&m).await.len(), 1, "one Customer per order");

    // The first card pays: the PaymentIntent names the Customer the card belongs to.
    let (status, payment) = m.pay(&deal.buyer, &deal.order_id, Some(&method)).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["orderId"], deal.order_id.as_str());
    wait_for_status(&m, &deal.buyer, &deal.order_id, "complete").await;
    let charged = payment_intents(&m, 725).await;
    assert_eq!(charged.len(), 1, "{charged:?}");
    assert_eq!(
        (
            charged[0]["status"].clone(),
            charged[0]["id"].clone(),
            charged[0]["customer"].clone(),
            charged[0]["payment_method"].clone(),
        ),
        (
            json!("succeeded"),
            payment["stripeId"].clone(),
            json!(customer),
            json!(method),
        )
    );

    let (status, errors) = setup(&m, &deal.buyer, &deal.order_id).await;
    assert_eq!(
        (status, messages(&errors)),
        (
            StatusCode::BAD_REQUEST,
            vec!["Order is already paid".to_owned()]
        )
    );
}

#[tokio::test]
async fn setup_checks_the_order_as_paying_does() {
    let m = Marketplace::start();
    let deal = m.ordered_ticket(6.5).await;
    let stranger = m.client();
    m.sign_up(&stranger, "setup-stranger@example.com").await;

    let (status, _) = setup(&m, &Client::new(), &deal.order_id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not signed in");
    let (status, errors) = setup(&m, &deal.buyer, " ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(errors["errors"][0]["field"], "orderId");
    let (status, _) = setup(&m, &deal.buyer, "8c5f4a52-3a2e-4d8e-9b6a-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = setup(&m, &stranger, &deal.order_id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another user's order");
    assert!(
        setup_intents(&m).await.is_empty(),
        "refused requests ask Stripe for nothing"
    );

    assert_eq!(
        m.cancel(&deal.buyer, &deal.order_id).await,
        StatusCode::NO_CONTENT
    );
    // Payments hears of the cancellation asynchronously.
    let errors = eventually("payments to see the cancellation", DEADLINE, || async {
        let (status, errors) = setup(&m, &deal.buyer, &deal.order_id).await;
        (status == StatusCode::BAD_REQUEST).then_some(errors)
    })
    .await;
    assert_eq!(messages(&errors), ["Cannot pay for an cancelled order"]);
}

async fn ticket(m: &Marketplace, id: &str) -> Value {
    body(m.get(&Client::new(), &format!("/api/tickets/{id}")).await).await
}

#[tokio::test]
async fn the_whole_journey_charges_the_price_in_cents_once() {
    let m = Marketplace::start();
    let deal = m.ordered_ticket(10.99).await;

    let (status, payment) = m
        .pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["orderId"], deal.order_id.as_str());
    let stripe_id = payment["stripeId"].as_str().unwrap().to_owned();
    assert!(payment["id"].is_string());

    wait_for_status(&m, &deal.buyer, &deal.order_id, "complete").await;
    assert!(
        ticket(&m, &deal.ticket_id).await["orderId"].is_string(),
        "a sold ticket stays reserved"
    );

    let intents = payment_intents(&m, 1099).await;
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(
        (intents[0]["id"].clone(), intents[0]["currency"].clone()),
        (json!(stripe_id), json!("usd"))
    );
    assert_eq!(intents[0]["status"], "succeeded");
    // No card was set up for the order: no Customer is made or named.
    assert_eq!(intents[0]["customer"], Value::Null);
    assert!(customers(&m).await.is_empty());

    let (status, again) = m
        .pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(
        (status, messages(&again)),
        (
            StatusCode::BAD_REQUEST,
            vec!["Order is already paid".to_owned()]
        )
    );
    assert_eq!(
        m.cancel(&deal.buyer, &deal.order_id).await,
        StatusCode::BAD_REQUEST,
        "a paid order cannot be cancelled"
    );
    assert_eq!(
        payment_intents(&m, 1099).await.len(),
        1,
        "still charged once"
    );
}

#[tokio::test]
async fn payment_rules_are_checked_in_order() {
    let m = Marketplace::start();
    let deal = m.ordered_ticket(5.0).await;
    let stranger = m.client();
    m.sign_up(&stranger, "stranger@example.com").await;

    let (status, errors) = m.pay(&deal.buyer, "", Some("pm_card_visa")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(errors["errors"][0]["field"], "orderId");
    let (status, _) = m
        .pay(
            &deal.buyer,
            "8c5f4a52-3a2e-4d8e-9b6a-000000000000",
            Some("pm_card_visa"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = m.pay(&stranger, &deal.order_id, Some("pm_card_visa")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = m
        .pay(&Client::new(), &deal.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not signed in");

    assert_eq!(
        m.cancel(&deal.buyer, &deal.order_id).await,
        StatusCode::NO_CONTENT
    );
    // Payments hears of the cancellation asynchronously; poll with the no-token call,
    // which never charges (it only prepares an intent), until it refuses.
    let errors = eventually("payments to see the cancellation", DEADLINE, || async {
        let (status, errors) = m.pay(&deal.buyer, &deal.order_id, None).await;
        (status == StatusCode::BAD_REQUEST).then_some(errors)
    })
    .await;
    assert_eq!(messages(&errors), ["Cannot pay for an cancelled order"]);
    let (status, errors) = m
        .pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(
        (status, messages(&errors)),
        (
            StatusCode::BAD_REQUEST,
            vec!["Cannot pay for an cancelled order".to_owned()]
        )
    );
    assert_eq!(succeeded_charges(&m, 500).await, 0, "nothing was charged");
}

#[tokio::test]
async fn a_declined_card_is_402_and_the_order_can_still_be_paid() {
    let m = Marketplace::start();
    let deal = m.ordered_ticket(12.34).await;
    let (status, declined) = m
        .pay(
            &deal.buyer,
            &deal.order_id,
            Some("pm_card_chargeCustomerFail"),
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{declined}");
    assert!(
        !messages(&declined).is_empty(),
        "Stripe's message is passed on: {declined}"
    );
    assert_eq!(
        order_status(&m, &deal.buyer, &deal.order_id).await,
        "created"
    );

    // The same request sent twice at once charges once.
    let (first, second) = tokio::join!(
        m.pay(&deal.buyer, &deal.order_id, Some("pm_card_visa")),
        m.pay(&deal.buyer, &deal.order_id, Some("pm_card_visa")),
    );
    let created: Vec<&(StatusCode, Value)> = [&first, &second]
        .into_iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty(), "{first:?} {second:?}");
    for (status, result) in [&first, &second] {
        assert!(
            *status == StatusCode::CREATED || messages(result) == ["Order is already paid"],
            "{status} {result}"
        );
    }
    wait_for_status(&m, &deal.buyer, &deal.order_id, "complete").await;
    assert_eq!(succeeded_charges(&m, 1234).await, 1, "charged exactly once");
}

#[tokio::test]
async fn unpaid_orders_expire_and_paid_ones_never_do() {
    let m = Marketplace::start_with(&[("SPIN_VARIABLE_ORDER_LOCK_SECONDS", "2")]);
    // The expiry must come from the expiration service's event, not from orders'
    // overdue backstop (which the order GETs below also run): watch the channel.
    let expirations = ChannelWatch::start(&m.redis.address(), &["expiration:complete"]);
    let paid = m.ordered_ticket(3.0).await;
    let (status, _) = m
        .pay(&paid.buyer, &paid.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let unpaid = m.ordered_ticket(4.0).await;

    // expiration announces the deadline; orders cancels the order and tickets frees
    // its ticket. Nothing is asked of orders before the event is out.
    eventually(
        "expiration:complete for the unpaid order",
        DEADLINE,
        || async {
            let published = expirations.payloads("expiration:complete");
            published
                .iter()
                .any(|event| event.contains(&unpaid.order_id))
                .then_some(())
        },
    )
    .await;
    wait_for_status(&m, &unpaid.buyer, &unpaid.order_id, "cancelled").await;
    eventually("the ticket to be released", DEADLINE, || async {
        ticket(&m, &unpaid.ticket_id)
            .await
            .get("orderId")
            .is_none()
            .then_some(())
    })
    .await;
    // Its deadline passed after the paid order's, so the paid one's has fired too.
    assert_eq!(
        order_status(&m, &paid.buyer, &paid.order_id).await,
        "complete"
    );

    let (status, errors) = m
        .pay(&unpaid.buyer, &unpaid.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{errors}");
    assert!(
        payment_intents(&m, 400).await.is_empty(),
        "no charge after the deadline"
    );
}

#[tokio::test]
async fn an_order_still_expires_on_time_across_an_app_restart() {
    let mut m = Marketplace::start_with(&[("SPIN_VARIABLE_ORDER_LOCK_SECONDS", "5")]);
    let deal = m.ordered_ticket(6.0).await;
    // Once expiration has scheduled the deadline in Redis (the sorted-set entry and the
    // timer key whose expiry wakes it), the whole app goes down and comes back.
    let timer = format!("expiration:order:{}", deal.order_id);
    eventually("the deadline to be scheduled", DEADLINE, || async {
        (m.redis.zscore("expiration:due", &deal.order_id) && m.redis.exists(&timer)).then_some(())
    })
    .await;
    // The expiration service fires it after the restart: observed on the bus before orders
    // is asked (its requests would also cancel an overdue order, as a backstop).
    let expirations = ChannelWatch::start(&m.redis.address(), &["expiration:complete"]);
    m.restart();
    eventually(
        "expiration:complete after the restart",
        DEADLINE,
        || async {
            expirations
                .payloads("expiration:complete")
                .iter()
                .any(|event| event.contains(&deal.order_id))
                .then_some(())
        },
    )
    .await;
    wait_for_status(&m, &deal.buyer, &deal.order_id, "cancelled").await;
    eventually("the ticket to be released", DEADLINE, || async {
        ticket(&m, &deal.ticket_id)
            .await
            .get("orderId")
            .is_none()
            .then_some(())
    })
    .await;
}

fn signed(payload: &str, secret: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{payload}").as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={sig}")
}

#[tokio::test]
async fn webhook_checks_the_signature_and_records_a_payment_once() {
    let m = Marketplace::start();
    let deal = m.ordered_ticket(8.5).await;
    let (status, intent) = m.pay(&deal.buyer, &deal.order_id, None).await;
    assert_eq!(status, StatusCode::CREATED, "{intent}");
    assert!(intent["clientSecret"].is_string());
    let stripe_id = intent["stripeId"].as_str().unwrap().to_owned();

    // The browser confirms the card with Stripe.js.
    let confirmed = pay_in_browser(&m, &stripe_id).await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");

    let event = json!({
        "id": "evt_test_1", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": confirmed},
    })
    .to_string();
    let webhook = m.url("/api/payments/webhook");
    let forged = Client::new()
        .post(&webhook)
        .header("stripe-signature", signed(&event, "whsec_wrong"))
        .body(event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let unsigned = Client::new()
        .post(&webhook)
        .body(event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        order_status(&m, &deal.buyer, &deal.order_id).await,
        "created",
        "forged events record nothing"
    );

    for _ in 0..2 {
        let resp = Client::new()
            .post(&webhook)
            .header("stripe-signature", signed(&event, STRIPE_WEBHOOK_SECRET))
            .body(event.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    wait_for_status(&m, &deal.buyer, &deal.order_id, "complete").await;
    let (status, again) = m
        .pay(&deal.buyer, &deal.order_id, Some("pm_card_visa"))
        .await;
    assert_eq!(
        (status, messages(&again)),
        (
            StatusCode::BAD_REQUEST,
            vec!["Order is already paid".to_owned()]
        )
    );
    assert_eq!(payment_intents(&m, 850).await.len(), 1);
}

/// A Stripe that accepts connections and never answers: the host's default outbound
/// timeout (two thirds of the request timeout) ends the call inside the component, which
/// answers 503 in time, and nothing is recorded.
#[tokio::test]
async fn a_stripe_that_never_answers_is_a_503_before_the_request_deadline() {
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_base = format!("http://{}", hung.local_addr().expect("addr"));
    // Hold every connection open without a byte in reply.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hung.incoming().flatten() {
            held.push(stream);
        }
    });
    let m = Marketplace::start_with(&[
        ("SPIN_VARIABLE_STRIPE_API_BASE", hung_base.as_str()),
        ("TESSERA_REQUEST_TIMEOUT", "3s"),
    ]);
    let Deal {
        buyer, order_id, ..
    } = m.ordered_ticket(12.0).await;

    let started = std::time::Instant::now();
    let resp = m
        .post(
            &buyer,
            "/api/payments",
            json!({"orderId": &order_id, "token": "pm_card_visa"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        messages(&body(resp).await),
        ["Payment provider unavailable"]
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let order = body(m.get(&buyer, &format!("/api/orders/{order_id}")).await).await;
    assert_eq!(order["status"], "created", "nothing was paid");
}
