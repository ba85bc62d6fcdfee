//! Stripe, as far as payments uses it: create and retrieve PaymentIntents, create
//! Customers and SetupIntents (for the browser to turn a card into a PaymentMethod
//! attached to the order's Customer), refund charges, and check the signature of its
//! webhooks.
//!
//! Handlers depend on the [`Stripe`] trait, so they are tested natively with a fake.
//! [`StripeClient`] implements it over HTTP: form-encoded requests, responses parsed
//! into the small structs below (not async-stripe's types: those do not parse
//! localstripe's replies, and its request builders cannot say `payment_method_types`,
//! which localstripe needs; see `client.rs`). Its [`Transport`] is Spin's outbound HTTP
//! in the component ([`SpinTransport`]) and a recording double in tests.

mod client;
pub mod signature;
mod transport;

use std::collections::HashMap;
use std::future::Future;

use serde::Deserialize;

pub use client::{Config, DEFAULT_API_BASE, StripeClient};
pub use transport::{HttpRequest, HttpResponse, SpinTransport, Transport};

/// The one currency Tessera charges in.
pub const CURRENCY: &str = "usd";

/// Metadata key of a PaymentIntent that names its order (read back by the webhook).
pub const ORDER_ID_METADATA: &str = "orderId";

/// Metadata key of a Customer that names the buyer (for tracing only).
pub const USER_ID_METADATA: &str = "userId";

/// A PaymentIntent to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPaymentIntent {
    /// Amount in cents.
    pub amount_cents: u64,
    /// The order it pays for (stored as metadata).
    pub order_id: String,
    /// With a payment method the intent is confirmed at once (charged); without, the
    /// browser confirms it with the client secret.
    pub payment_method: Option<String>,
    /// The order's Customer (`cus_…`), when it has one: a PaymentMethod that a
    /// SetupIntent attached to it can only be used together with it.
    pub customer: Option<String>,
    /// Stripe's `Idempotency-Key`: a retry with the same key gets the first answer.
    pub idempotency_key: String,
}

/// A SetupIntent to create: on-session, cards only, for the browser to confirm with
/// Stripe.js (`confirmCardSetup`), which turns the card into a PaymentMethod (`pm_…`)
/// attached to `customer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSetupIntent {
    /// The order's Customer (`cus_…`). Stripe refuses to charge a PaymentMethod that a
    /// SetupIntent without a Customer confirmed (`payment_method_used_without_customer`).
    pub customer: String,
    /// The order the card is for (stored as metadata, for tracing only).
    pub order_id: String,
}

/// A Customer to create: one per order, owning the PaymentMethods its SetupIntents make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    /// The buyer (stored as metadata, for tracing only).
    pub user_id: String,
    /// The order (stored as metadata, for tracing only).
    pub order_id: String,
}

/// A refund to create: the whole charge of one PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    /// The PaymentIntent whose charge is given back (`pi_…`).
    pub payment_intent: String,
    /// The order it was for (stored as metadata, for tracing only).
    pub order_id: String,
    /// Stripe's `Idempotency-Key`: one per charge, so retries refund once.
    pub idempotency_key: String,
}

/// What payments reads of a Refund.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Refund {
    /// `re_…`.
    pub id: String,
    /// `pending`, `succeeded`, `failed`, … (Stripe finishes a card refund on its own;
    /// `pending` still means it was accepted).
    #[serde(default)]
    pub status: Option<String>,
}

/// What payments reads of a Customer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Customer {
    /// `cus_…`.
    pub id: String,
}

/// What payments reads of a SetupIntent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SetupIntent {
    /// `seti_…`.
    pub id: String,
    /// Lets the browser confirm the intent with Stripe.js.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// What payments reads of a PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentIntent {
    /// `pi_…`.
    pub id: String,
    /// Where the intent is in its lifecycle.
    pub status: IntentStatus,
    /// Lets the browser confirm the intent with Stripe.js.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Amount in cents.
    #[serde(default)]
    pub amount: u64,
    /// Lower-case ISO currency.
    #[serde(default)]
    pub currency: String,
    /// Our metadata (`orderId`).
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Why the last attempt failed (a decline), if it did.
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
}

impl PaymentIntent {
    /// The `orderId` metadata.
    pub fn order_id(&self) -> Option<&str> {
        self.metadata.get(ORDER_ID_METADATA).map(String::as_str)
    }

    /// The message of the last failed attempt.
    pub fn failure_message(&self) -> Option<&str> {
        self.last_payment_error
            .as_ref()
            .and_then(|error| error.message.as_deref())
    }
}

/// `last_payment_error` of a PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentError {
    /// Human-readable, e.g. "Your card was declined.".
    #[serde(default)]
    pub message: Option<String>,
}

/// A PaymentIntent's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Paid.
    Succeeded,
    /// Waiting for a payment method (new, or the last one failed).
    RequiresPaymentMethod,
    /// Has a payment method, not confirmed yet.
    RequiresConfirmation,
    /// The buyer must authenticate (3-D Secure) in the browser.
    RequiresAction,
    /// Confirmed; the result comes later (webhook).
    Processing,
    /// Authorised, to be captured (manual capture; not used here).
    RequiresCapture,
    /// Cancelled.
    Canceled,
    /// A status this code does not know.
    #[serde(other)]
    Unknown,
}

impl IntentStatus {
    /// Stripe's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresConfirmation => "requires_confirmation",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::RequiresCapture => "requires_capture",
            Self::Canceled => "canceled",
            Self::Unknown => "unknown",
        }
    }
}

/// Why a Stripe call failed.
#[derive(Debug)]
pub enum StripeError {
    /// 402: the card was declined; Stripe's message.
    Declined(String),
    /// Another 4xx about the request (400, 404: e.g. an unknown payment method).
    Rejected {
        /// Stripe's HTTP status.
        status: u16,
        /// Stripe's message.
        message: String,
        /// The parameter it is about, when Stripe says.
        param: Option<String>,
    },
    /// 409: a request with the same idempotency key is still being processed.
    InProgress,
    /// Unreachable, 429 or 5xx: try again later.
    Unavailable(String),
    /// Anything else (a bad API key, an unreadable answer): a bug or misconfiguration.
    Unexpected(anyhow::Error),
}

impl std::fmt::Display for StripeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Declined(message) => write!(f, "declined: {message}"),
            Self::Rejected {
                status,
                message,
                param,
            } => match param {
                Some(param) => write!(f, "rejected ({status}, {param}): {message}"),
                None => write!(f, "rejected ({status}): {message}"),
            },
            Self::InProgress => f.write_str("a request with this idempotency key is in progress"),
            Self::Unavailable(detail) => write!(f, "unavailable: {detail}"),
            Self::Unexpected(err) => write!(f, "{err:#}"),
        }
    }
}

/// The Stripe API calls payments makes.
pub trait Stripe {
    /// `POST /v1/payment_intents` with `intent.idempotency_key`.
    fn create_payment_intent(
        &self,
        intent: &NewPaymentIntent,
    ) -> impl Future<Output = Result<PaymentIntent, StripeError>>;

    /// `GET /v1/payment_intents/{id}`.
    fn retrieve_payment_intent(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<PaymentIntent, StripeError>>;

    /// `POST /v1/setup_intents`: a fresh intent each time (no idempotency key).
    fn create_setup_intent(
        &self,
        setup: &NewSetupIntent,
    ) -> impl Future<Output = Result<SetupIntent, StripeError>>;

    /// `POST /v1/customers`: a fresh Customer each time (no idempotency key).
    fn create_customer(
        &self,
        customer: &NewCustomer,
    ) -> impl Future<Output = Result<Customer, StripeError>>;

    /// `POST /v1/refunds` with `refund.idempotency_key`.
    fn create_refund(
        &self,
        refund: &NewRefund,
    ) -> impl Future<Output = Result<Refund, StripeError>>;
}

impl<S: Stripe + ?Sized> Stripe for &S {
    fn create_payment_intent(
        &self,
        intent: &NewPaymentIntent,
    ) -> impl Future<Output = Result<PaymentIntent, StripeError>> {
        (**self).create_payment_intent(intent)
    }

    fn retrieve_payment_intent(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<PaymentIntent, StripeError>> {
        (**self).retrieve_payment_intent(id)
    }

    fn create_setup_intent(
        &self,
        setup: &NewSetupIntent,
    ) -> impl Future<Output = Result<SetupIntent, StripeError>> {
        (**self).create_setup_intent(setup)
    }

    fn create_customer(
        &self,
        customer: &NewCustomer,
    ) -> impl Future<Output = Result<Customer, StripeError>> {
        (**self).create_customer(customer)
    }

    fn create_refund(
        &self,
        refund: &NewRefund,
    ) -> impl Future<Output = Result<Refund, StripeError>> {
        (**self).create_refund(refund)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_statuses_do_not_fail_parsing() {
        let intent: PaymentIntent =
            serde_json::from_str(r#"{"id":"pi_1","status":"requires_something_new"}"#).unwrap();
        assert_eq!(intent.status, IntentStatus::Unknown);
        assert_eq!(intent.order_id(), None);
        assert_eq!(intent.failure_message(), None);
    }

    #[test]
    fn statuses_read_back_as_their_names() {
        for status in [
            IntentStatus::Succeeded,
            IntentStatus::RequiresPaymentMethod,
            IntentStatus::RequiresConfirmation,
            IntentStatus::RequiresAction,
            IntentStatus::Processing,
            IntentStatus::RequiresCapture,
            IntentStatus::Canceled,
        ] {
            let json = format!("\"{}\"", status.as_str());
            assert_eq!(serde_json::from_str::<IntentStatus>(&json).unwrap(), status);
        }
    }

    #[test]
    fn errors_display_what_went_wrong() {
        let rejected = StripeError::Rejected {
            status: 404,
            message: "No such PaymentMethod".into(),
            param: Some("payment_method".into()),
        };
        assert_eq!(
            rejected.to_string(),
            "rejected (404, payment_method): No such PaymentMethod"
        );
        assert_eq!(
            StripeError::Declined("Your card was declined.".into()).to_string(),
            "declined: Your card was declined."
        );
    }
}
