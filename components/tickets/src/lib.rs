//! The tickets service: list, show, create and edit tickets, and hold them for orders
//! (the "Tickets" section and the `order:*` rows of `spec/marketplace.md`).
//!
//! This file is the Spin glue only. One component exports two handlers:
//! - HTTP (`/api/tickets/...`): reads the body with a size limit and routes;
//! - Redis (`order:created`, `order:cancelled`): hands each message to [`messages`].
//!
//! Both build their dependencies from Spin variables and the `tickets` database, and
//! relay the outbox first, so events left behind by a Redis outage go out with the next
//! request or message. The logic lives in `routes/`, `messages.rs`, `domain/` and
//! `store.rs`.
#![deny(missing_docs)]

pub mod domain;
pub mod messages;
pub mod routes;
pub mod store;

use common::ApiError;
use common::config::{Spin, jwt_secret};
use common::http::not_found;
use common::outbox::RedisPublisher;
use common::sqlite::Connection;
use common::time::now;
use spin_sdk::http::{Params, Request, Response, Router};

use crate::routes::Deps;
use crate::store::Tickets;

// Native builds (tests) skip the exports: their WIT-style symbol names break the native
// cdylib link ("; expected" in the linker version script).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle_tickets(incoming: spin_sdk::http::IncomingRequest) -> Response {
    common::http::serve(incoming, router()).await
}

/// One message from a subscribed channel. The trigger does not say which channel: the
/// envelope's `type` does.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    let deps = deps()?;
    messages::handle(&message, &deps.tickets, deps.now)?;
    deps.relay();
    Ok(())
}

/// The tickets routes. Anything else, including a known path with another method, is
/// the JSON 404 (spin-sdk's own fallback would be a plain-text 404 or 405).
pub fn router() -> Router {
    let mut router = Router::new();
    router.get("/api/tickets", list);
    router.post("/api/tickets", create);
    router.get("/api/tickets/:id", show);
    router.put("/api/tickets/:id", update);
    router.any("/*", not_found);
    router
}

fn list(req: Request, _: Params) -> Result<Response, ApiError> {
    routes::list::handle(&req, &deps()?)
}

fn create(req: Request, _: Params) -> Result<Response, ApiError> {
    routes::create::handle(&req, &deps()?)
}

fn show(_: Request, params: Params) -> Result<Response, ApiError> {
    routes::show::handle(params.get("id").unwrap_or_default(), &deps()?)
}

fn update(req: Request, params: Params) -> Result<Response, ApiError> {
    routes::update::handle(&req, params.get("id").unwrap_or_default(), &deps()?)
}

/// The database, Redis (variable `redis_address`) and session secret (`jwt_secret`),
/// after relaying whatever the outbox still holds.
fn deps() -> anyhow::Result<Deps<Connection, RedisPublisher>> {
    let deps = Deps {
        tickets: Tickets::open()?,
        publisher: RedisPublisher::from_variables()?,
        jwt_secret: jwt_secret(&Spin)?,
        now: now(),
    };
    deps.relay();
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::http::Method;

    #[test]
    fn unknown_routes_and_methods_are_json_404s() {
        // Only requests that stop before a handler (which would call into Spin).
        common::testing::assert_json_404s(
            &router(),
            &[
                (Method::Delete, "/api/tickets"),
                (Method::Put, "/api/tickets"),
                (
                    Method::Post,
                    "/api/tickets/5b3c9f1e-8d2a-4c6b-9e0f-1a2b3c4d5e6f",
                ),
                (
                    Method::Delete,
                    "/api/tickets/5b3c9f1e-8d2a-4c6b-9e0f-1a2b3c4d5e6f",
                ),
                (Method::Patch, "/api/tickets/x"),
                (Method::Head, "/api/tickets"),
                (Method::Get, "/api/tickets/x/y"),
                (Method::Get, "/api/ticketsx"),
                (Method::Get, "/"),
                (Method::Other("BREW".into()), "/api/tickets"),
            ],
        );
    }
}
