//! What localstripe (the fake Stripe the marketplace pays through) holds, read with the
//! app's secret key: the tests' view of the money.

use serde_json::Value;

use crate::marketplace::Marketplace;

/// The secret key the tests configure (`stripe_secret_key`).
pub const SECRET_KEY: &str = "sk_test_black_box";

/// `GET {path}` at localstripe (directly, never through a [`crate::TcpSwitch`]).
pub async fn get(m: &Marketplace, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", m.stripe.base_url()))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .expect("localstripe answers")
        .json()
        .await
        .expect("localstripe answers JSON")
}

/// Every object of one kind (`payment_intents`, `customers`, …) localstripe holds.
pub async fn list(m: &Marketplace, kind: &str) -> Vec<Value> {
    let list = get(m, &format!("/v1/{kind}?limit=100")).await;
    list["data"].as_array().cloned().unwrap_or_default()
}

/// Every PaymentIntent of `amount` cents.
pub async fn payment_intents(m: &Marketplace, amount: u64) -> Vec<Value> {
    list(m, "payment_intents")
        .await
        .into_iter()
        .filter(|pi| pi["amount"] == amount)
        .collect()
}

/// The PaymentIntents of `amount` cents that succeeded (charged the card).
pub async fn charged(m: &Marketplace, amount: u64) -> Vec<Value> {
    payment_intents(m, amount)
        .await
        .into_iter()
        .filter(|pi| pi["status"] == "succeeded")
        .collect()
}

/// How many PaymentIntents of `amount` cents succeeded.
pub async fn succeeded_charges(m: &Marketplace, amount: u64) -> usize {
    charged(m, amount).await.len()
}

/// The refunds of PaymentIntent `pi`.
pub async fn refunds_of(m: &Marketplace, pi: &str) -> Vec<Value> {
    let list = get(m, &format!("/v1/refunds?payment_intent={pi}&limit=100")).await;
    list["data"].as_array().cloned().unwrap_or_default()
}

/// What the browser does with Stripe.js for a PaymentIntent it holds: pay it with a Visa
/// card. Straight against localstripe, which wants the payment method attached first,
/// then a bare confirm. Returns the confirmed PaymentIntent.
pub async fn pay_in_browser(m: &Marketplace, pi: &str) -> Value {
    let stripe = reqwest::Client::new();
    let intent_url = format!("{}/v1/payment_intents/{pi}", m.stripe.base_url());
    let attached = stripe
        .post(&intent_url)
        .bearer_auth(SECRET_KEY)
        .form(&[("payment_method", "pm_card_visa")])
        .send()
        .await
        .expect("localstripe answers");
    assert!(attached.status().is_success(), "attaching the card to {pi}");
    stripe
        .post(format!("{intent_url}/confirm"))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .expect("localstripe answers")
        .json()
        .await
        .expect("a PaymentIntent")
}
