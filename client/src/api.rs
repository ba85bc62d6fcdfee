//! The only module that knows the API's URLs: typed DTOs, one generic fetch helper, and
//! errors parsed from the marketplace's `{"errors":[…]}` bodies.

use gloo_net::http::{Method, RequestBuilder};
use send_wrapper::SendWrapper;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The signed-in user (`currentUser`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CurrentUser {
    /// User id.
    pub id: String,
    /// Normalised email.
    pub email: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentUserBody {
    current_user: Option<CurrentUser>,
}

/// A ticket for sale.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// Ticket id.
    pub id: String,
    /// Trimmed title.
    pub title: String,
    /// Price in dollars (display only; `price_cents` is exact).
    pub price: f64,
    /// Price in integer cents.
    pub price_cents: i64,
    /// The seller.
    pub user_id: String,
    /// The order holding the ticket, while one does.
    #[serde(default)]
    pub order_id: Option<String>,
}

/// The ticket as embedded in an order.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderTicket {
    /// Ticket id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Price in integer cents.
    pub price_cents: i64,
}

/// An order (`created`, `complete` or `cancelled`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Order id.
    pub id: String,
    /// `created`, `complete` or `cancelled`.
    pub status: String,
    /// When the reservation lapses (RFC 3339).
    pub expires_at: String,
    /// The reserved ticket.
    pub ticket: OrderTicket,
    /// Its payment, once one went through.
    #[serde(default)]
    pub payment: Option<OrderPayment>,
}

/// An order's payment: kept, or given back because the order did not complete.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPayment {
    /// `paid` or `refunded`.
    pub status: String,
}

impl Order {
    /// What happened to the money of a cancelled order, for the buyer; `None` when
    /// nothing was charged.
    pub fn refund_notice(&self) -> Option<&'static str> {
        match self.payment.as_ref()?.status.as_str() {
            "refunded" => Some("Your payment was refunded"),
            _ if self.status == "cancelled" => Some("Your payment is being refunded"),
            _ => None,
        }
    }
}

/// A ticket `GET /api/search` found (available, best match first).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// Ticket id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Price in integer cents.
    pub price_cents: i64,
}

/// One entry of the signed-in user's activity feed (`GET /api/activity`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityEntry {
    /// Entry id (also the page cursor).
    pub id: String,
    /// `reserved`, `cancelled`, `expired`, `paid`, `sold` or `refunded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `buyer` or `seller`.
    pub role: String,
    /// What happened, in a sentence.
    pub message: String,
    /// The order it is about.
    pub order_id: String,
    /// The ticket of that order.
    pub ticket_id: String,
    /// When it happened (RFC 3339).
    pub at: String,
}

/// What the browser needs to load Stripe.js.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentsConfig {
    /// Stripe publishable key.
    pub publishable_key: String,
    /// Where to load Stripe.js from (localstripe's stand-in in development).
    pub stripe_js_url: String,
}

/// One entry of an error body.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ErrorMessage {
    /// Human-readable message.
    pub message: String,
    /// The body field, for validation errors.
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorMessage>,
}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status; every message from its body.
    #[error("{}", .messages.iter().map(|m| m.message.as_str()).collect::<Vec<_>>().join("; "))]
    Server {
        /// HTTP status.
        status: u16,
        /// The `errors` entries (at least one).
        messages: Vec<ErrorMessage>,
    },
    /// The request never got an answer, or the answer was not the expected JSON.
    #[error("{0}")]
    Network(String),
    /// Stripe.js could not be loaded, or refused the card (its message).
    #[error("{0}")]
    Card(String),
}

impl ApiError {
    /// Every message, for the error alert.
    pub fn messages(&self) -> Vec<String> {
        match self {
            ApiError::Server { messages, .. } => {
                messages.iter().map(|m| m.message.clone()).collect()
            }
            ApiError::Network(message) | ApiError::Card(message) => vec![message.clone()],
        }
    }
}

/// Sends one JSON request and decodes the JSON answer (`()`-like types may use
/// `serde_json::Value`). The request is aborted if the calling reactive scope is cleaned up
/// first (for example, the visitor navigated away).
async fn fetch_json<T: DeserializeOwned>(
    method: Method,
    url: &str,
    body: Option<serde_json::Value>,
) -> Result<T, ApiError> {
    let controller = SendWrapper::new(web_sys::AbortController::new().ok());
    let signal = controller.as_ref().map(|c| c.signal());
    leptos::prelude::on_cleanup(move || {
        if let Some(controller) = controller.take() {
            controller.abort();
        }
    });
    let builder = RequestBuilder::new(url)
        .method(method)
        .header("accept", "application/json")
        .abort_signal(signal.as_ref());
    let request = match body {
        Some(body) => builder.json(&body),
        None => builder.build(),
    }
    .map_err(|err| ApiError::Network(err.to_string()))?;
    let response = request
        .send()
        .await
        .map_err(|_| ApiError::Network("Could not reach the server. Please try again.".into()))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        let messages = serde_json::from_str::<ErrorBody>(&text)
            .map(|body| body.errors)
            .ok()
            .filter(|errors| !errors.is_empty())
            .unwrap_or_else(|| {
                vec![ErrorMessage {
                    message: format!("Request failed ({status})"),
                    field: None,
                }]
            });
        return Err(ApiError::Server { status, messages });
    }
    let text = if text.trim().is_empty() {
        "null"
    } else {
        text.as_str()
    };
    serde_json::from_str(text)
        .map_err(|err| ApiError::Network(format!("Unexpected response: {err}")))
}

fn to_json(value: impl Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

/// `GET /api/users/currentuser`.
pub async fn current_user() -> Result<Option<CurrentUser>, ApiError> {
    let body: CurrentUserBody = fetch_json(Method::GET, "/api/users/currentuser", None).await?;
    Ok(body.current_user)
}

#[derive(Serialize)]
struct Credentials<'a> {
    email: &'a str,
    password: &'a str,
}

/// `POST /api/users/signup`.
pub async fn sign_up(email: &str, password: &str) -> Result<CurrentUser, ApiError> {
    fetch_json(
        Method::POST,
        "/api/users/signup",
        to_json(Credentials { email, password }),
    )
    .await
}

/// `POST /api/users/signin`.
pub async fn sign_in(email: &str, password: &str) -> Result<CurrentUser, ApiError> {
    fetch_json(
        Method::POST,
        "/api/users/signin",
        to_json(Credentials { email, password }),
    )
    .await
}

/// `POST /api/users/signout`.
pub async fn sign_out() -> Result<(), ApiError> {
    fetch_json::<serde_json::Value>(
        Method::POST,
        "/api/users/signout",
        to_json(serde_json::json!({})),
    )
    .await
    .map(drop)
}

/// `GET /api/tickets`: the available (unreserved) tickets, newest first.
pub async fn tickets() -> Result<Vec<Ticket>, ApiError> {
    fetch_json(Method::GET, "/api/tickets", None).await
}

/// `GET /api/search?q=`: the first page of available tickets matching every word of `query`.
pub async fn search(query: &str) -> Result<Vec<SearchHit>, ApiError> {
    let url = format!(
        "/api/search?q={}",
        String::from(js_sys::encode_uri_component(query))
    );
    fetch_json(Method::GET, &url, None).await
}

/// `GET /api/activity`: the first page of the signed-in user's activity, newest first.
pub async fn activity() -> Result<Vec<ActivityEntry>, ApiError> {
    fetch_json(Method::GET, "/api/activity", None).await
}

/// `GET /api/tickets/:id`.
pub async fn ticket(id: &str) -> Result<Ticket, ApiError> {
    fetch_json(Method::GET, &format!("/api/tickets/{}", encode(id)), None).await
}

/// `POST /api/tickets` with the price in dollars (at most two decimals).
pub async fn create_ticket(title: &str, price: f64) -> Result<Ticket, ApiError> {
    let body = serde_json::json!({ "title": title, "price": price });
    fetch_json(Method::POST, "/api/tickets", Some(body)).await
}

/// `POST /api/orders`: reserve a ticket.
pub async fn create_order(ticket_id: &str) -> Result<Order, ApiError> {
    let body = serde_json::json!({ "ticketId": ticket_id });
    fetch_json(Method::POST, "/api/orders", Some(body)).await
}

/// `GET /api/orders`: the caller's orders, oldest first.
pub async fn orders() -> Result<Vec<Order>, ApiError> {
    fetch_json(Method::GET, "/api/orders", None).await
}

/// `GET /api/orders/:id`.
pub async fn order(id: &str) -> Result<Order, ApiError> {
    fetch_json(Method::GET, &format!("/api/orders/{}", encode(id)), None).await
}

/// `GET /api/payments/config`.
pub async fn payments_config() -> Result<PaymentsConfig, ApiError> {
    fetch_json(Method::GET, "/api/payments/config", None).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientSecretBody {
    client_secret: String,
}

/// `POST /api/payments/setup`: a SetupIntent's client secret, for Stripe.js to turn the
/// entered card into a PaymentMethod.
pub async fn setup_payment(order_id: &str) -> Result<String, ApiError> {
    let body = serde_json::json!({ "orderId": order_id });
    let setup: ClientSecretBody =
        fetch_json(Method::POST, "/api/payments/setup", Some(body)).await?;
    Ok(setup.client_secret)
}

/// What `POST /api/payments` did with the card.
#[derive(Clone, Debug, PartialEq)]
pub enum Charge {
    /// Paid and recorded.
    Paid,
    /// The card needs the cardholder (3-D Secure): Stripe.js finishes the PaymentIntent
    /// with this client secret, then [`confirm_payment`] records it.
    NeedsAction {
        /// The PaymentIntent's client secret.
        client_secret: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChargeBody {
    #[serde(default)]
    client_secret: Option<String>,
}

/// `POST /api/payments` with a Stripe PaymentMethod id (server-side confirmation).
pub async fn pay(order_id: &str, payment_method: &str) -> Result<Charge, ApiError> {
    let body = serde_json::json!({ "orderId": order_id, "token": payment_method });
    let charge: ChargeBody = fetch_json(Method::POST, "/api/payments", Some(body)).await?;
    Ok(match charge.client_secret {
        Some(client_secret) => Charge::NeedsAction { client_secret },
        None => Charge::Paid,
    })
}

/// `POST /api/payments/confirm`: records a payment Stripe.js finished.
pub async fn confirm_payment(order_id: &str) -> Result<(), ApiError> {
    let body = serde_json::json!({ "orderId": order_id });
    fetch_json::<serde_json::Value>(Method::POST, "/api/payments/confirm", Some(body))
        .await
        .map(drop)
}

/// Ids come from the URL bar: escape them so they stay one path segment.
fn encode(segment: &str) -> String {
    String::from(js_sys::encode_uri_component(segment))
}
