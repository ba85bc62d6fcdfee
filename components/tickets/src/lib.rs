//! The tickets service: list, show, create and edit tickets, and hold them for orders
//! (the "Tickets" section and the `order:*` rows of `spec/marketplace.md`).
//!
//! This file is the Spin glue only. One component exports two handlers:
//! - HTTP (`/api/tickets/...`): reads the body with a size limit and routes;
//! - Redis (`order:created`, `order:cancelled`): hands each message to [`messages`].
//!
//! Every entry point runs through [`Service`]: open the `tickets` database, do the
//! work, relay the outbox if that is owed (the work queued events, or some were left
//! by a crash or a Redis outage); for an HTTP request, after the response has been sent
//! ([`common::http::after_response`]). The logic lives in `routes/`, `messages.rs`,
//! `domain/` and `store.rs`.
#![deny(missing_docs)]

pub mod domain;
pub mod messages;
pub mod routes;
pub mod store;

use common::ApiError;
use common::config::{Spin, jwt_secret};
use common::http::not_found;
use common::outbox::Relay;
use common::sqlite::Connection;
use common::time::now;
use spin_sdk::http::{Params, Request, Response, Router};

use crate::routes::Deps;
use crate::store::Tickets;

// Native builds (tests) skip the exports: their WIT-style symbol names break the native
// cdylib link ("; expected" in the linker version script).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle_tickets(
    incoming: spin_sdk::http::IncomingRequest,
    response_out: spin_sdk::http::ResponseOutparam,
) {
    common::http::serve(incoming, response_out, router()).await
}

/// One message from a subscribed channel (the envelope's `type` says which), in its
/// trace context. Only store failures are errors; the host logs them (the chain is
/// folded into the message, which is all it prints).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    common::message::serve(&message, || {
        Service::open()?.run(|deps| messages::handle(&message, &deps.tickets, deps.now))
    })
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
    Service::open()?.respond(|deps| routes::list::handle(&req, deps))
}

fn create(req: Request, _: Params) -> Result<Response, ApiError> {
    Service::open()?.respond(|deps| routes::create::handle(&req, deps))
}

fn show(_: Request, params: Params) -> Result<Response, ApiError> {
    let id = params.get("id").unwrap_or_default();
    Service::open()?.respond(|deps| routes::show::handle(id, deps))
}

fn update(req: Request, params: Params) -> Result<Response, ApiError> {
    let id = params.get("id").unwrap_or_default();
    Service::open()?.respond(|deps| routes::update::handle(&req, id, deps))
}

/// One request or message: what its handler works with, and what it owes the outbox.
struct Service {
    deps: Deps<Connection>,
    relay: Relay,
}

impl Service {
    /// Opens the `tickets` database (schema version and outbox backlog in one query) and
    /// reads the session secret (`jwt_secret`).
    fn open() -> anyhow::Result<Self> {
        let (tickets, relay) = Tickets::open()?;
        let deps = Deps {
            tickets,
            jwt_secret: jwt_secret(&Spin)?,
            now: now(),
        };
        Ok(Self { deps, relay })
    }

    /// Runs `work`, then relays the outbox to Redis (`redis_address`) if that is owed.
    // Native builds have no message entry point (see the exports above).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn run<T>(self, work: impl FnOnce(&Deps<Connection>) -> T) -> T {
        let outcome = work(&self.deps);
        self.relay.finish(self.deps.tickets.db());
        outcome
    }

    /// [`Service::run`] for an HTTP request: the relay waits until the response has
    /// been sent (its events are committed; the client need not wait for Redis).
    fn respond<T>(self, work: impl FnOnce(&Deps<Connection>) -> T) -> T {
        let outcome = work(&self.deps);
        if self.relay.is_due() {
            common::http::after_response(async move { self.relay.finish(self.deps.tickets.db()) });
        }
        outcome
    }
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
