//! POST /api/payments `{orderId, token?}`: pay for an order.
//!
//! - With `token` (a PaymentMethod id): the PaymentIntent is created and confirmed at
//!   once. Succeeded → the payment is recorded and `payment:created` queued, 201
//!   `{id, orderId, stripeId}`. The card needs 3-D Secure (or the charge is still
//!   processing) → 202 `{clientSecret, stripeId, status}`: the browser finishes with
//!   Stripe.js, then calls `/api/payments/confirm` (or the webhook records it).
//! - Without: the PaymentIntent is only created → 201 `{clientSecret, stripeId}` for
//!   the browser to confirm; the payment is recorded by the webhook or the follow-up.
//!
//! When the order has a Stripe Customer (its card was set up with `POST
//! /api/payments/setup`, which attached the PaymentMethod to it), the charging
//! PaymentIntent names it: Stripe refuses a Customer's PaymentMethod without it. Without
//! one (a server-side test id like `pm_card_visa`) the intent has no Customer.
//!
//! A decline is a 402 with Stripe's message; Stripe unreachable is a 503; neither
//! records anything, and the order can be paid later (with another card).
//!
//! Two waits bridge the other instances' work. An order placed a moment ago may not
//! have reached the replica yet (its `order:created` is on its way): an unknown order
//! is looked up again for up to [`REPLICA_WAIT`] before the 404. And a request that
//! finds another one charging the same order waits up to [`ATTEMPT_WAIT`] for its
//! outcome (paid: `Order is already paid`; declined: go ahead), so a double submit
//! charges once even where Stripe's idempotency keys are not honoured (localstripe).

use std::time::Duration;

use common::session::Claims;
use common::sqlite::Database;
use common::{ApiError, FieldError, json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spin_sdk::http::{Request, Response};

use super::{
    Deps, PAYMENT_IN_PROGRESS, Pause, PaymentBody, REFUNDING, order_id_field, stripe_failure,
    token_field,
};
use crate::domain::{Order, Payment, PaymentMethod, Refusal, Terms, intent_key};
use crate::store::{Claim, Recorded};
use crate::stripe::{IntentStatus, NewPaymentIntent, PaymentIntent, Stripe};

/// Message of the 402 when Stripe declines without saying why.
pub const DECLINED: &str = "Your card was declined.";

/// How long an unknown order is looked for before the 404. `order:created` normally
/// arrives within milliseconds of the order's creation, but right after a Redis restart
/// the outbox holds events for `common::outbox::REDIS_SETTLE_SECONDS` (3 s) while
/// subscribers come back (they retry at most 1 s apart), and a busy machine adds its
/// queueing on top: a buyer paying then should wait a moment, not be told the order does
/// not exist. The chaos run's 2 s wait turned such moments into 404s.
pub const REPLICA_WAIT: Duration = Duration::from_secs(5);

/// How long a payment waits for another request charging the same order (a Stripe
/// call normally takes a second or two).
pub const ATTEMPT_WAIT: Duration = Duration::from_secs(10);

/// Pause between two looks at the replica or the attempt.
const POLL: Duration = Duration::from_millis(25);

/// The body; values stay raw so that a missing or mistyped one gets its field's message.
#[derive(Deserialize)]
struct Input {
    #[serde(default, rename = "orderId")]
    order_id: Option<Value>,
    #[serde(default)]
    token: Option<Value>,
}

/// An intent the browser still has to act on: `{clientSecret, stripeId, status?}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PendingBody<'a> {
    client_secret: &'a str,
    stripe_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

/// Pays for (or starts paying for) one of the caller's orders.
///
/// Checks in order: 401 not signed in → 400 `orderId` (and `token`) → 404 → 401 not
/// the owner → 400 cancelled → 400 expired → 400 already paid.
pub async fn handle<D: Database, S: Stripe, P: Pause>(
    req: &Request,
    deps: &Deps<D, S, P>,
) -> Result<Response, ApiError> {
    let user = deps.user(req)?;
    let input: Input = json::parse_body(req.body())?;
    let (raw_id, method) = match (
        order_id_field(input.order_id.as_ref()),
        token_field(input.token.as_ref()),
    ) {
        (Ok(raw_id), Ok(method)) => (raw_id, method),
        (order_id, token) => {
            let errors: Vec<FieldError> = [order_id.err(), token.err()]
                .into_iter()
                .flatten()
                .collect();
            return Err(ApiError::Validation(errors));
        }
    };
    let (order, terms) = payable_order(deps, raw_id, &user)?;
    match method {
        Some(method) => charge(deps, &order, &terms, &method).await,
        None => start(deps, &order, &terms).await,
    }
}

/// `user`'s order `raw_id`, if it can be paid for now: 404 (once the replica has been
/// given [`REPLICA_WAIT`]) → 401 not the owner → 400 cancelled → 400 expired → 400
/// already paid. Also the checks of `POST /api/payments/setup`.
pub(super) fn payable_order<D: Database, S: Stripe, P: Pause>(
    deps: &Deps<D, S, P>,
    raw_id: &str,
    user: &Claims,
) -> Result<(Order, Terms), ApiError> {
    let (order, terms) = deps
        .wait_for(REPLICA_WAIT, POLL, || deps.find_order(raw_id, user))?
        .ok_or(ApiError::NotFound)?;
    let paid = deps.payments.payment_of(&order.id)?.is_some();
    if let Some(refusal) = order.refusal(&terms, paid, deps.now) {
        return Err(refused(refusal));
    }
    Ok((order, terms))
}

/// Creates the order's PaymentIntent for the browser to confirm.
async fn start<D: Database, S: Stripe, P: Pause>(
    deps: &Deps<D, S, P>,
    order: &Order,
    terms: &Terms,
) -> Result<Response, ApiError> {
    let request = NewPaymentIntent {
        amount_cents: terms.price_cents,
        order_id: order.id.to_string(),
        payment_method: None,
        customer: None,
        idempotency_key: intent_key(&order.id, None),
    };
    let intent = deps
        .stripe
        .create_payment_intent(&request)
        .await
        .map_err(|err| stripe_failure(err, false))?;
    deps.payments
        .remember_intent(&order.id, &intent.id, deps.now)?;
    pending(201, &intent, None)
}

/// Creates and confirms a PaymentIntent with the buyer's payment method.
async fn charge<D: Database, S: Stripe, P: Pause>(
    deps: &Deps<D, S, P>,
    order: &Order,
    terms: &Terms,
    method: &PaymentMethod,
) -> Result<Response, ApiError> {
    // Read before claiming: a failure here leaves no attempt behind.
    let customer = deps.payments.customer_of(&order.id)?;
    let attempt = Attempt {
        deps,
        order,
        key: intent_key(&order.id, Some(method)),
    };
    attempt.claim()?;
    let request = NewPaymentIntent {
        amount_cents: terms.price_cents,
        order_id: order.id.to_string(),
        payment_method: Some(method.as_ref().to_owned()),
        customer,
        idempotency_key: attempt.key.clone(),
    };
    match deps.stripe.create_payment_intent(&request).await {
        Ok(intent) => attempt.settle(&intent),
        Err(err) => {
            attempt.release();
            Err(stripe_failure(err, true))
        }
    }
}

/// One try at charging an order with one payment method (one idempotency key).
struct Attempt<'a, D, S, P> {
    deps: &'a Deps<D, S, P>,
    order: &'a Order,
    key: String,
}

impl<D: Database, S: Stripe, P: Pause> Attempt<'_, D, S, P> {
    /// Takes the order for this attempt, waiting for another request charging it.
    fn claim(&self) -> Result<(), ApiError> {
        let payments = &self.deps.payments;
        let claimed = self.deps.wait_for(ATTEMPT_WAIT, POLL, || {
            match payments.claim_attempt(&self.order.id, &self.key, self.deps.now)? {
                Claim::Claimed => Ok(Some(())),
                Claim::Charging => Ok(None),
                Claim::Busy => Err(ApiError::Conflict(PAYMENT_IN_PROGRESS.to_owned())),
                Claim::Paid(_) => Err(refused(Refusal::AlreadyPaid)),
                Claim::Cancelled => Err(refused(Refusal::Cancelled)),
            }
        })?;
        claimed.ok_or_else(|| ApiError::Conflict(PAYMENT_IN_PROGRESS.to_owned()))
    }

    /// Acts on the intent Stripe created: record the payment, hand the intent to the
    /// browser, or report the decline.
    fn settle(&self, intent: &PaymentIntent) -> Result<Response, ApiError> {
        let (payments, order, now) = (&self.deps.payments, self.order, self.deps.now);
        // If this fails, the intent may have charged the card: keep other cards away
        // while a retry of this request (or the webhook) records it.
        let hold = |err: anyhow::Error| {
            self.hold();
            ApiError::Unexpected(err)
        };
        // Before recording, so a webhook or follow-up finds the order even if recording fails.
        payments
            .remember_intent(&order.id, &intent.id, now)
            .map_err(hold)?;
        match intent.status {
            IntentStatus::Succeeded => {
                let payment = Payment::new(order.id.clone(), &intent.id);
                match payments.record(&payment, now).map_err(hold)? {
                    // Existing: a replayed answer for a payment the webhook recorded meanwhile.
                    Recorded::New(payment) | Recorded::Existing(payment) => Ok(created(&payment)),
                    // The cancellation overtook the charge: no 201 for money that goes back.
                    Recorded::Refunding(_) => Err(ApiError::Conflict(REFUNDING.to_owned())),
                    Recorded::Duplicate { .. } => Err(refused(Refusal::AlreadyPaid)),
                }
            }
            // The browser takes over; the held attempt keeps other cards away meanwhile.
            IntentStatus::RequiresAction
            | IntentStatus::RequiresConfirmation
            | IntentStatus::Processing => {
                payments.hold_attempt(&order.id, &self.key, now)?;
                pending(202, intent, Some(intent.status.as_str()))
            }
            IntentStatus::RequiresPaymentMethod | IntentStatus::Canceled => {
                self.release();
                let message = intent.failure_message().unwrap_or(DECLINED);
                Err(ApiError::PaymentRequired(message.to_owned()))
            }
            IntentStatus::RequiresCapture | IntentStatus::Unknown => {
                self.release();
                Err(ApiError::Unexpected(anyhow::anyhow!(
                    "PaymentIntent {} of order {} is in an unexpected state {}",
                    intent.id,
                    order.id,
                    intent.status.as_str()
                )))
            }
        }
    }

    /// Ends the attempt (nothing was charged); best effort, the lease expires anyway.
    fn release(&self) {
        let payments = &self.deps.payments;
        if let Err(err) = payments.release_attempt(&self.order.id, &self.key) {
            eprintln!("payments: {err:#}; the attempt's lease will expire");
        }
    }

    /// Keeps the order for this key only; best effort, the lease expires anyway.
    fn hold(&self) {
        let payments = &self.deps.payments;
        if let Err(err) = payments.hold_attempt(&self.order.id, &self.key, self.deps.now) {
            eprintln!("payments: {err:#}; the attempt's lease will expire");
        }
    }
}

fn refused(refusal: Refusal) -> ApiError {
    ApiError::BadRequest(refusal.message().to_owned())
}

fn created(payment: &Payment) -> Response {
    json::json_response(201, &PaymentBody::from(payment))
}

fn pending(
    status: u16,
    intent: &PaymentIntent,
    state: Option<&'static str>,
) -> Result<Response, ApiError> {
    let client_secret = intent.client_secret.as_deref().ok_or_else(|| {
        anyhow::anyhow!("PaymentIntent {} came without a client secret", intent.id)
    })?;
    Ok(json::json_response(
        status,
        &PendingBody {
            client_secret,
            stripe_id: &intent.id,
            status: state,
        },
    ))
}

#[cfg(test)]
mod tests;
