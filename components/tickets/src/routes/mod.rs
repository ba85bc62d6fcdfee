//! One module per endpoint. Handlers take their dependencies as arguments, so the
//! whole request → domain → store → response path is tested natively (against an
//! in-memory sqlite). Events are checked in the outbox, where handlers queue them;
//! relaying them is the glue's job (`lib.rs`).

pub mod create;
pub mod list;
pub mod show;
pub mod update;

#[cfg(test)]
mod testing;

use common::http::cookie_header;
use common::session::{Claims, current_user_at};
use common::sqlite::Database;
use common::{ApiError, FieldError, json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use spin_sdk::http::Response;

use crate::domain::{Dollars, PriceCents, Ticket, Title};
use crate::store::Tickets;

/// What every handler needs besides the request.
pub struct Deps<D> {
    /// The tickets database.
    pub tickets: Tickets<D>,
    /// Verifies session cookies.
    pub jwt_secret: String,
    /// Current Unix time in seconds.
    pub now: u64,
}

impl<D: Database> Deps<D> {
    /// The signed-in user, or 401.
    fn signed_in(&self, req: &spin_sdk::http::Request) -> Result<Claims, ApiError> {
        current_user_at(cookie_header(req), &self.jwt_secret, self.now)
            .ok_or(ApiError::NotAuthorized)
    }
}

/// The POST and PUT body. Values stay raw so that a missing field or one of the wrong
/// type is reported as that field's validation error, and `price` keeps its exact text.
#[derive(Deserialize)]
struct TicketInput {
    #[serde(default)]
    title: Option<Value>,
    #[serde(default)]
    price: Option<Box<RawValue>>,
}

/// The validated title and price of a request body; every failed rule is reported.
fn parse_input(body: &[u8]) -> Result<(Title, PriceCents), ApiError> {
    let input: TicketInput = json::parse_body(body)?;
    let title = Title::parse(input.title.as_ref().and_then(Value::as_str));
    let price = PriceCents::parse(input.price.as_deref().map(RawValue::get));
    match (title, price) {
        (Ok(title), Ok(price)) => Ok((title, price)),
        (title, price) => Err(ApiError::Validation(
            [title.err(), price.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<FieldError>>(),
        )),
    }
}

/// Ids are UUIDs; anything else cannot name a ticket (404 without a lookup).
fn is_ticket_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}

/// A ticket as the API shows it: `{id, title, price, priceCents, userId, version,
/// orderId?}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketBody<'a> {
    id: &'a str,
    title: &'a str,
    price: Dollars,
    price_cents: u64,
    user_id: &'a str,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
}

impl<'a> From<&'a Ticket> for TicketBody<'a> {
    fn from(ticket: &'a Ticket) -> Self {
        Self {
            id: &ticket.id,
            title: ticket.title.as_ref(),
            price: ticket.price.dollars(),
            price_cents: ticket.price.cents(),
            user_id: &ticket.user_id,
            version: ticket.version,
            order_id: ticket.order_id.as_deref(),
        }
    }
}

/// One ticket as a JSON response.
fn ticket_response(status: u16, ticket: &Ticket) -> Response {
    json::json_response(status, &TicketBody::from(ticket))
}
