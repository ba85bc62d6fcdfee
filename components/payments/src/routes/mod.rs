//! One module per endpoint. Handlers take their dependencies as arguments (the store,
//! a [`Stripe`], the session secret and the time), so the whole request → domain →
//! Stripe → store → response path is tested natively with a fake Stripe.
//!
//! `create`, `setup` and `confirm` need a session (401 first), then answer 400 for a
//! missing `orderId`, 404 for an unknown or malformed one and 401 for someone else's
//! order; `create` and `setup` then refuse (400) cancelled, expired and paid orders.

pub mod client_config;
pub mod confirm;
pub mod create;
pub mod setup;
pub mod webhook;

use std::time::Duration;

use common::http::cookie_header;
use common::session::{Claims, current_user_at};
use common::sqlite::Database;
use common::{ApiError, FieldError, json};
use serde::Serialize;
use serde_json::Value;
use spin_sdk::http::Request;

use crate::domain::{Order, OrderId, Payment, PaymentMethod, Terms};
use crate::store::Payments;
use crate::stripe::{Stripe, StripeError};

/// Message when `orderId` is missing, empty or not a string.
pub const ORDER_ID_REQUIRED: &str = "OrderId must be provided";

/// Message of the 409 while another card is being charged for the order.
pub const PAYMENT_IN_PROGRESS: &str = "A payment for this order is already in progress";

/// Message of the 409 when the order turned out to be cancelled while its payment went
/// through: the charge is refunded (see `domain::refund`).
pub const REFUNDING: &str = "The order was cancelled while you paid: your payment will be refunded";

/// Message of the 503 when Stripe cannot be reached or fails.
pub const PROVIDER_UNAVAILABLE: &str = "Payment provider unavailable";

/// Waits between two looks at something another instance is about to change (the
/// replica, another request's payment attempt). `std::thread::sleep` in the component
/// (one instance per request, so blocking it holds nothing else up); tests play the
/// other instance in it.
pub trait Pause {
    /// Returns after about `duration`.
    fn pause(&self, duration: Duration);
}

impl<F: Fn(Duration)> Pause for F {
    fn pause(&self, duration: Duration) {
        self(duration)
    }
}

/// What the paying endpoints need besides the request.
pub struct Deps<D, S, P = fn(Duration)> {
    /// The payments database.
    pub payments: Payments<D>,
    /// The Stripe API.
    pub stripe: S,
    /// Verifies the session cookie.
    pub jwt_secret: String,
    /// Current Unix time in seconds.
    pub now: u64,
    /// How to wait for other instances.
    pub pause: P,
}

impl<D: Database, S: Stripe, P: Pause> Deps<D, S, P> {
    /// The signed-in user, or 401.
    fn user(&self, req: &Request) -> Result<Claims, ApiError> {
        current_user_at(cookie_header(req), &self.jwt_secret, self.now)
            .ok_or(ApiError::NotAuthorized)
    }

    /// The caller and the raw order id of an `{orderId}` body: 401 not signed in, then
    /// 400 for a body that is not JSON or lacks `orderId`.
    fn caller_and_order_id(&self, req: &Request) -> Result<(Claims, String), ApiError> {
        let user = self.user(req)?;
        let input: OrderIdBody = json::parse_body(req.body())?;
        let raw_id = order_id_field(input.order_id.as_ref())
            .map_err(|err| ApiError::Validation(vec![err]))?;
        Ok((user, raw_id.to_owned()))
    }

    /// Order `raw_id` with its terms, if it is `user`'s: 404 when malformed, unknown, or
    /// known only from a status event (no buyer to check yet); 401 when someone else's.
    fn buyers_order(&self, raw_id: &str, user: &Claims) -> Result<(Order, Terms), ApiError> {
        self.find_order(raw_id, user)?.ok_or(ApiError::NotFound)
    }

    /// [`Deps::buyers_order`], but `None` for a well-formed id that the replica does not
    /// know (completely) yet.
    fn find_order(&self, raw_id: &str, user: &Claims) -> Result<Option<(Order, Terms)>, ApiError> {
        let id = OrderId::parse(raw_id).ok_or(ApiError::NotFound)?;
        let Some(order) = self.payments.order(&id)? else {
            return Ok(None);
        };
        let Some(terms) = order.terms.clone() else {
            return Ok(None);
        };
        if terms.user_id != user.id {
            return Err(ApiError::NotAuthorized);
        }
        Ok(Some((order, terms)))
    }

    /// Calls `look` until it finds something, pausing `poll` between looks, for about
    /// `limit` at most; `None` if it never did.
    fn wait_for<T>(
        &self,
        limit: Duration,
        poll: Duration,
        mut look: impl FnMut() -> Result<Option<T>, ApiError>,
    ) -> Result<Option<T>, ApiError> {
        let mut waited = Duration::ZERO;
        loop {
            if let Some(found) = look()? {
                return Ok(Some(found));
            }
            if waited >= limit {
                return Ok(None);
            }
            self.pause.pause(poll);
            waited += poll;
        }
    }
}

/// `orderId` of a request body: a non-empty string, else the field's 400.
fn order_id_field(value: Option<&Value>) -> Result<&str, FieldError> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| FieldError::new("orderId", ORDER_ID_REQUIRED))
}

/// A body that names only an order; the value stays raw so that a missing or mistyped
/// one gets the field's message.
#[derive(serde::Deserialize)]
struct OrderIdBody {
    #[serde(default, rename = "orderId")]
    order_id: Option<Value>,
}

/// `token` of a request body: absent or `null` for none, else a payment method id.
fn token_field(value: Option<&Value>) -> Result<Option<PaymentMethod>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_str()
            .and_then(PaymentMethod::parse)
            .map(Some)
            .ok_or_else(|| FieldError::new("token", crate::domain::payment::INVALID_TOKEN)),
    }
}

/// A recorded payment: `{id, orderId, stripeId}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody<'a> {
    id: &'a str,
    order_id: &'a str,
    stripe_id: &'a str,
}

impl<'a> From<&'a Payment> for PaymentBody<'a> {
    fn from(payment: &'a Payment) -> Self {
        Self {
            id: &payment.id,
            order_id: payment.order_id.as_ref(),
            stripe_id: &payment.stripe_id,
        }
    }
}

/// The answer to a failed Stripe call. `token_sent`: the buyer chose the payment
/// method, so Stripe refusing the request is about it (an unknown or unusable
/// `pm_…`), a 400 on `token`. A refused `amount` is the price's (Stripe charges at
/// least 50 cents), a 400 too. Otherwise the request was ours, and a refusal is a bug.
fn stripe_failure(err: StripeError, token_sent: bool) -> ApiError {
    match err {
        StripeError::Declined(message) => ApiError::PaymentRequired(message),
        StripeError::Rejected { message, param, .. } if param.as_deref() == Some("amount") => {
            ApiError::BadRequest(message)
        }
        StripeError::Rejected { message, param, .. }
            if token_sent && param.as_deref().is_none_or(|p| p == "payment_method") =>
        {
            ApiError::field("token", message)
        }
        StripeError::InProgress => ApiError::Conflict(PAYMENT_IN_PROGRESS.to_owned()),
        StripeError::Unavailable(detail) => {
            eprintln!("payments: Stripe is unavailable: {detail}");
            ApiError::Unavailable(PROVIDER_UNAVAILABLE.to_owned())
        }
        err @ StripeError::Rejected { .. } => {
            ApiError::Unexpected(anyhow::anyhow!("Stripe refused our request: {err}"))
        }
        StripeError::Unexpected(err) => ApiError::Unexpected(err.context("Stripe call failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_ids_must_be_non_empty_strings() {
        assert_eq!(order_id_field(Some(&json!(" abc "))), Ok("abc"));
        for value in [json!(""), json!("  "), json!(null), json!(5), json!(["a"])] {
            assert_eq!(
                order_id_field(Some(&value)),
                Err(FieldError::new("orderId", ORDER_ID_REQUIRED)),
                "{value}"
            );
        }
        assert!(order_id_field(None).is_err());
    }

    #[test]
    fn tokens_are_optional_payment_method_ids() {
        assert_eq!(token_field(None), Ok(None));
        assert_eq!(token_field(Some(&json!(null))), Ok(None));
        assert_eq!(
            token_field(Some(&json!("pm_card_visa"))),
            Ok(PaymentMethod::parse("pm_card_visa"))
        );
        for value in [json!(""), json!(5), json!({"id": "pm_1"}), json!("pm card")] {
            assert_eq!(
                token_field(Some(&value)).unwrap_err().field.as_deref(),
                Some("token"),
                "{value}"
            );
        }
    }

    #[test]
    fn stripe_failures_map_to_the_contracts_statuses() {
        let rejected = |param: Option<&str>| StripeError::Rejected {
            status: 400,
            message: "No such PaymentMethod".into(),
            param: param.map(str::to_owned),
        };
        let cases = [
            (
                StripeError::Declined("Your card was declined.".into()),
                true,
                402,
            ),
            (rejected(Some("payment_method")), true, 400),
            (rejected(None), true, 400),
            (rejected(Some("amount")), true, 400),
            (rejected(Some("amount")), false, 400),
            (rejected(Some("currency")), true, 500),
            (rejected(None), false, 500),
            (StripeError::InProgress, true, 409),
            (StripeError::Unavailable("refused".into()), false, 503),
            (
                StripeError::Unexpected(anyhow::anyhow!("bad key")),
                true,
                500,
            ),
        ];
        for (err, token_sent, status) in cases {
            let shown = err.to_string();
            assert_eq!(stripe_failure(err, token_sent).status(), status, "{shown}");
        }
        assert_eq!(
            stripe_failure(StripeError::Unavailable("refused".into()), true)
                .body()
                .errors[0]
                .message,
            "Payment provider unavailable"
        );
    }
}
