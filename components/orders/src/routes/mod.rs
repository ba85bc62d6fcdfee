//! One module per endpoint. Handlers take their dependencies as arguments, so the
//! whole request → domain → store → response path is tested natively.
//!
//! Every orders endpoint needs a session: 401 `Not authorized` comes first. An order
//! path then answers 404 for a malformed or unknown id and 401 for someone else's
//! order, in that order.

pub mod cancel;
pub mod create;
pub mod list;
pub mod show;

use common::ApiError;
use common::http::cookie_header;
use common::session::{Claims, current_user_at};
use serde::Serialize;
use spin_sdk::http::Request;

use crate::domain::{Order, OrderId};
use crate::store::OrderStore;

/// What every orders handler needs besides the request.
pub struct Deps<S> {
    /// Where orders and the ticket replica live.
    pub store: S,
    /// Verifies the session cookie.
    pub jwt_secret: String,
    /// Current Unix time in seconds.
    pub now: u64,
}

impl<S> Deps<S> {
    /// The signed-in user, or 401.
    fn user(&self, req: &Request) -> Result<Claims, ApiError> {
        current_user_at(cookie_header(req), &self.jwt_secret, self.now)
            .ok_or(ApiError::NotAuthorized)
    }
}

/// Order `raw_id`, if it belongs to `user`: 404 when malformed or unknown, 401 when it
/// is someone else's.
fn owned_order(store: &impl OrderStore, raw_id: &str, user: &Claims) -> Result<Order, ApiError> {
    let id = OrderId::parse(raw_id).ok_or(ApiError::NotFound)?;
    let order = store.order(&id)?.ok_or(ApiError::NotFound)?;
    if order.user_id != user.id {
        return Err(ApiError::NotAuthorized);
    }
    Ok(order)
}

/// An order in responses: `{id, userId, status, expiresAt, version, ticket, payment}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderBody<'a> {
    id: &'a str,
    user_id: &'a str,
    status: &'static str,
    expires_at: String,
    version: u64,
    ticket: TicketBody<'a>,
    /// `null` until payments announces a payment.
    payment: Option<PaymentBody<'a>>,
}

/// The order's payment: `{status: "paid" | "refunded", stripeId}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody<'a> {
    status: &'static str,
    stripe_id: &'a str,
}

/// The embedded ticket: `{id, title, price, priceCents, version}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TicketBody<'a> {
    id: &'a str,
    title: &'a str,
    price: f64,
    price_cents: u64,
    version: u64,
}

impl<'a> From<&'a Order> for OrderBody<'a> {
    fn from(order: &'a Order) -> Self {
        Self {
            id: order.id.as_ref(),
            user_id: &order.user_id,
            status: order.status.as_str(),
            expires_at: order.expires_at.to_rfc3339(),
            version: order.version,
            ticket: TicketBody {
                id: &order.ticket.id,
                title: &order.ticket.title,
                price: order.ticket.price(),
                price_cents: order.ticket.price_cents,
                version: order.ticket.version,
            },
            payment: order.payment.as_ref().map(|payment| PaymentBody {
                status: payment.status.as_str(),
                stripe_id: &payment.stripe_id,
            }),
        }
    }
}
