//! POST /api/payments/webhook: Stripe's events, signed with `stripe_webhook_secret`.
//!
//! `payment_intent.succeeded` records the payment of the intent's order (unless the
//! follow-up call or the server-side charge recorded it already), whatever the order's
//! status: the money is taken, and given back if the order is cancelled or already
//! paid by another charge (`Payments::record`). The order is the one the intent was created for here,
//! or else the intent's `orderId` metadata if that order is known (a crash between the
//! charge and remembering the intent). Other events are acknowledged and ignored.
//!
//! A missing, malformed, wrong or stale signature is a 400 and nothing is read.
//! Stripe retries a delivery until it gets a 2xx, so a store failure is a 500 (retried
//! later), while an event that can never be recorded is acknowledged with a log line.

use common::sqlite::Database;
use common::{ApiError, json};
use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::{Request, Response};

use crate::domain::{OrderId, Payment};
use crate::store::{Payments, Recorded};
use crate::stripe::signature;
use crate::stripe::{IntentStatus, PaymentIntent};

/// The event type that records a payment.
pub const SUCCEEDED: &str = "payment_intent.succeeded";

/// A Stripe event: `{id, type, data: {object}}`.
#[derive(Deserialize)]
struct StripeEvent {
    #[serde(default)]
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

/// Handles one delivery with the raw body and the `Stripe-Signature` header.
pub fn handle<D: Database>(
    req: &Request,
    payments: &Payments<D>,
    secret: &str,
    now: u64,
) -> Result<Response, ApiError> {
    let header = req
        .header("stripe-signature")
        .and_then(|value| value.as_str());
    signature::verify(header, req.body(), secret, now)
        .map_err(|err| ApiError::BadRequest(err.message().to_owned()))?;
    let event: StripeEvent = json::parse_body(req.body())?;
    if event.event_type != SUCCEEDED {
        return Ok(received());
    }
    let intent: PaymentIntent = serde_json::from_value(event.data.object)
        .map_err(|err| ApiError::BadRequest(format!("Invalid {SUCCEEDED} event: {err}")))?;
    if intent.status != IntentStatus::Succeeded {
        eprintln!(
            "payments: {SUCCEEDED} event {} for PaymentIntent {} in status {}; ignored",
            event.id,
            intent.id,
            intent.status.as_str()
        );
        return Ok(received());
    }
    let Some(order_id) = order_of(payments, &intent)? else {
        eprintln!(
            "payments: PaymentIntent {} (event {}) names no order known here; ignored",
            intent.id, event.id
        );
        return Ok(received());
    };
    let payment = Payment::new(order_id, &intent.id);
    let outcome = match payments.record(&payment, now)? {
        Recorded::New(_) => "recorded",
        Recorded::Refunding(_) => "recorded; its order is cancelled, so it is refunded",
        Recorded::Duplicate { .. } => "refunded: the order was already paid",
        Recorded::Existing(_) => return Ok(received()),
    };
    eprintln!(
        "payments: payment {} ({}) of order {} from the webhook: {outcome}",
        payment.id, payment.stripe_id, payment.order_id
    );
    Ok(received())
}

/// The order `intent` pays for, as remembered here or by its metadata.
fn order_of<D: Database>(
    payments: &Payments<D>,
    intent: &PaymentIntent,
) -> anyhow::Result<Option<OrderId>> {
    if let Some(order_id) = payments.intent_order(&intent.id)? {
        return Ok(Some(order_id));
    }
    let Some(order_id) = intent.order_id().and_then(OrderId::parse) else {
        return Ok(None);
    };
    let known = payments
        .order(&order_id)?
        .is_some_and(|order| order.terms.is_some());
    Ok(known.then_some(order_id))
}

fn received() -> Response {
    json::json_response(200, &json!({"received": true}))
}

#[cfg(test)]
mod tests;
