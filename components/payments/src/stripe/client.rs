//! [`StripeClient`]: the PaymentIntents, SetupIntents, Customers and Refunds APIs over
//! a [`Transport`].
//!
//! Refunds are built with async-stripe's request type (`stripe_core::refund::CreateRefund`):
//! its form body is exactly what both Stripe and localstripe accept. Its response type
//! is not used: answers are parsed leniently into the small structs of `mod.rs`, since
//! async-stripe's generated types require every field of the API version they were
//! generated from, and localstripe's replies (and older API versions') lack some.
//!
//! The older calls are built by hand as form bodies (`form_urlencoded`) rather than with
//! async-stripe's builders: async-stripe 1.0.0-rc.10 follows a newer
//! API where `payment_method_types` is gone (it offers `allowed_payment_method_types`),
//! localstripe refuses any parameter it does not know, and a server-side confirm
//! without `payment_method_types` would need a `return_url` on real Stripe (automatic
//! payment methods), which localstripe refuses too. And the crates are slow to build:
//! measured on the 2-core build machine (wasm32-wasip2, release, feature
//! `payment_intent` only), async-stripe-shared took 189 s and async-stripe-core 71 s,
//! for five parameters.

use anyhow::{Context, anyhow, bail};
use common::config::Source;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use spin_sdk::http::Method;

use stripe_client_core::StripeRequest;

use super::{
    CURRENCY, Customer, HttpRequest, HttpResponse, NewCustomer, NewPaymentIntent, NewRefund,
    NewSetupIntent, ORDER_ID_METADATA, PaymentIntent, Refund, SetupIntent, Stripe, StripeError,
    Transport, USER_ID_METADATA,
};

/// Stripe's API when the variable `stripe_api_base` is unset.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// Where Stripe is and how to authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `scheme://host[:port]`, without a trailing `/` (variable `stripe_api_base`).
    pub api_base: String,
    /// `sk_…` (variable `stripe_secret_key`, required).
    pub secret_key: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Config")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads `stripe_api_base` (default [`DEFAULT_API_BASE`]) and `stripe_secret_key`.
    pub fn from_source(source: &(impl Source + ?Sized)) -> anyhow::Result<Self> {
        let api_base: String = source.get_or("stripe_api_base", DEFAULT_API_BASE.to_owned())?;
        let api_base = api_base.trim_end_matches('/').to_owned();
        let host = api_base
            .strip_prefix("https://")
            .or_else(|| api_base.strip_prefix("http://"));
        if host.is_none_or(|host| host.is_empty() || host.contains('/')) {
            bail!("Variable `stripe_api_base` must be `http(s)://host[:port]`, got {api_base:?}");
        }
        Ok(Self {
            api_base,
            secret_key: source.required("stripe_secret_key")?,
        })
    }
}

/// The PaymentIntents, SetupIntents and Customers APIs of the Stripe at
/// `config.api_base`.
pub struct StripeClient<T> {
    config: Config,
    transport: T,
}

impl<T: Transport> StripeClient<T> {
    /// A client sending through `transport`.
    pub fn new(config: Config, transport: T) -> Self {
        Self { config, transport }
    }

    fn request(&self, method: Method, path: &str, body: String) -> HttpRequest {
        let mut headers = vec![(
            "authorization".to_owned(),
            format!("Bearer {}", self.config.secret_key),
        )];
        if method == Method::Post {
            headers.push((
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ));
        }
        HttpRequest {
            method,
            url: format!("{}{path}", self.config.api_base),
            headers,
            body: body.into_bytes(),
        }
    }

    /// Sends `request` and reads the object (`O`) Stripe answers with.
    async fn call<O: DeserializeOwned>(&self, request: HttpRequest) -> Result<O, StripeError> {
        let what = format!("{} {}", request.method, request.url);
        match self.transport.send(request).await {
            Ok(response) => interpret(response).map_err(|err| match err {
                StripeError::Unexpected(err) => StripeError::Unexpected(err.context(what)),
                other => other,
            }),
            Err(err) => Err(StripeError::Unavailable(format!("{what}: {err:#}"))),
        }
    }
}

impl<T: Transport> Stripe for StripeClient<T> {
    async fn create_payment_intent(
        &self,
        intent: &NewPaymentIntent,
    ) -> Result<PaymentIntent, StripeError> {
        let mut request = self.request(Method::Post, "/v1/payment_intents", create_form(intent));
        request
            .headers
            .push(("idempotency-key".to_owned(), intent.idempotency_key.clone()));
        self.call(request).await
    }

    async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        // Ids come from Stripe and our database; refuse anything that would change the path.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StripeError::Unexpected(anyhow!(
                "Refusing to retrieve PaymentIntent {id:?}: not a Stripe id"
            )));
        }
        let path = format!("/v1/payment_intents/{id}");
        self.call(self.request(Method::Get, &path, String::new()))
            .await
    }

    async fn create_setup_intent(
        &self,
        setup: &NewSetupIntent,
    ) -> Result<SetupIntent, StripeError> {
        self.call(self.request(Method::Post, "/v1/setup_intents", setup_form(setup)))
            .await
    }

    async fn create_customer(&self, customer: &NewCustomer) -> Result<Customer, StripeError> {
        self.call(self.request(Method::Post, "/v1/customers", customer_form(customer)))
            .await
    }

    async fn create_refund(&self, refund: &NewRefund) -> Result<Refund, StripeError> {
        let built = stripe_core::refund::CreateRefund::new()
            .payment_intent(refund.payment_intent.as_str())
            .metadata([(ORDER_ID_METADATA.to_owned(), refund.order_id.clone())])
            .build();
        // async-stripe's paths are relative to the API version prefix.
        let path = format!("/v1{}", built.path);
        let mut request = self.request(Method::Post, &path, built.body.unwrap_or_default());
        request
            .headers
            .push(("idempotency-key".to_owned(), refund.idempotency_key.clone()));
        self.call(request).await
    }
}

/// The form of `POST /v1/payment_intents`: only parameters localstripe also accepts.
fn create_form(intent: &NewPaymentIntent) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("amount", &intent.amount_cents.to_string())
        .append_pair("currency", CURRENCY)
        // Cards only: no redirect-based methods, so a server-side confirm needs no
        // `return_url` (which localstripe would refuse).
        .append_pair("payment_method_types[]", "card")
        .append_pair(&format!("metadata[{ORDER_ID_METADATA}]"), &intent.order_id);
    if let Some(customer) = &intent.customer {
        form.append_pair("customer", customer);
    }
    if let Some(method) = &intent.payment_method {
        form.append_pair("payment_method", method)
            .append_pair("confirm", "true");
    }
    form.finish()
}

/// The form of `POST /v1/setup_intents`: only parameters localstripe also accepts
/// (`customer`, `usage`, `payment_method_types`, `metadata`).
fn setup_form(setup: &NewSetupIntent) -> String {
    form_urlencoded::Serializer::new(String::new())
        // The PaymentMethod is attached to it on success, so it can pay a PaymentIntent
        // that names the same Customer.
        .append_pair("customer", &setup.customer)
        // The buyer is there (the card is used right away, by this order's payment).
        .append_pair("usage", "on_session")
        // Cards only, as for the PaymentIntent that will use the PaymentMethod.
        .append_pair("payment_method_types[]", "card")
        .append_pair(&format!("metadata[{ORDER_ID_METADATA}]"), &setup.order_id)
        .finish()
}

/// The form of `POST /v1/customers`: metadata only (localstripe also accepts it).
fn customer_form(customer: &NewCustomer) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(&format!("metadata[{USER_ID_METADATA}]"), &customer.user_id)
        .append_pair(
            &format!("metadata[{ORDER_ID_METADATA}]"),
            &customer.order_id,
        )
        .finish()
}

/// Stripe's error body.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

/// The object (a PaymentIntent, a SetupIntent, a Customer), or the error Stripe's
/// status and body describe.
fn interpret<O: DeserializeOwned>(response: HttpResponse) -> Result<O, StripeError> {
    let status = response.status;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&response.body)
            // The caller's context names the request, hence the object.
            .with_context(|| format!("Stripe answered {status} with an unreadable object"))
            .map_err(StripeError::Unexpected);
    }
    // Error bodies are best effort: a proxy's HTML 502 has none.
    let detail = serde_json::from_slice::<ErrorBody>(&response.body)
        .unwrap_or_default()
        .error;
    let message = detail
        .message
        .unwrap_or_else(|| format!("Stripe answered {status}"));
    Err(match status {
        402 => StripeError::Declined(message),
        409 => StripeError::InProgress,
        429 | 500..=599 => StripeError::Unavailable(format!("{status}: {message}")),
        401 | 403 => StripeError::Unexpected(anyhow!(
            "Stripe refused the API key ({status}): {message}; check `stripe_secret_key`"
        )),
        400..=499 => StripeError::Rejected {
            status,
            message,
            param: detail.param,
        },
        _ => StripeError::Unexpected(anyhow!("Stripe answered {status}: {message}")),
    })
}

#[cfg(test)]
mod tests;
