//! The orders service: reserve a ticket, list, show and cancel orders, and follow
//! tickets, expirations and payments through their events (the "Orders" section and
//! the Events table of `spec/marketplace.md`).
//!
//! This file is the Spin glue only: the HTTP and Redis entry points, routing, and each
//! handler's dependencies from Spin variables, sqlite and Redis. The rules live in
//! `domain/` (what happens when an order expires: `domain/status.rs`), the endpoints in
//! `routes/`, the consumed events in `messages.rs`, the SQL in `store.rs`.
//!
//! Every entry point runs through [`Service`]: open the `orders` database, do the work
//! (whose writes queue their events in the same transaction), relay the outbox if that
//! is owed (the work queued events, or some were left by a crash or a Redis outage);
//! for an HTTP request, after the response has been sent ([`common::http::after_response`]).
//! Messages and new orders also run the expiry backstop ([`messages::cancel_overdue`]);
//! reads do not write.
#![deny(missing_docs)]

pub mod domain;
pub mod messages;
pub mod routes;
pub mod store;
pub mod update;

#[cfg(test)]
mod testing;

use common::ApiError;
use common::config::{Spin, jwt_secret};
use common::http::not_found;
use common::outbox::Relay;
use common::session::now;
use spin_sdk::http::{Params, Request, Response, Router};

use crate::domain::LockWindow;
use crate::routes::Deps;
use crate::store::SqliteOrders;

// Native builds (tests) skip the exports: their WIT-style symbol names break the native
// cdylib link ("; expected" in the linker version script).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle_orders(
    incoming: spin_sdk::http::IncomingRequest,
    response_out: spin_sdk::http::ResponseOutparam,
) {
    common::http::serve(incoming, response_out, router()).await
}

/// One Redis message, in its trace context, after the expiry backstop. Only store
/// failures are errors; the host logs them (the chain is folded into the message, which
/// is all it prints).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    common::message::serve(&message, || {
        Service::open()?.run(|deps| {
            cancel_overdue_or_log(&deps.store);
            messages::handle(&deps.store, &message, now())
        })
    })
}

/// The orders routes. Anything else, including a known path with another method, is
/// the JSON 404 (spin-sdk's own fallback would be a plain-text 404 or 405).
pub fn router() -> Router {
    let mut router = Router::new();
    router.post("/api/orders", create);
    router.get("/api/orders", list);
    router.get("/api/orders/:id", show);
    router.delete("/api/orders/:id", cancel);
    router.any("/*", not_found);
    router
}

fn create(req: Request, _: Params) -> Result<Response, ApiError> {
    // Read before anything else, so a bad value is a 500 naming the variable.
    let lock = LockWindow::from_source(&Spin)?;
    Service::open()?.respond(|deps| {
        // An overdue order still holding the ticket would refuse this one.
        cancel_overdue_or_log(&deps.store);
        routes::create::handle(&req, deps, lock)
    })
}

fn list(req: Request, _: Params) -> Result<Response, ApiError> {
    Service::open()?.respond(|deps| routes::list::handle(&req, deps))
}

fn show(req: Request, params: Params) -> Result<Response, ApiError> {
    let id = params.get("id").unwrap_or_default();
    Service::open()?.respond(|deps| routes::show::handle(&req, id, deps))
}

fn cancel(req: Request, params: Params) -> Result<Response, ApiError> {
    let id = params.get("id").unwrap_or_default();
    Service::open()?.respond(|deps| routes::cancel::handle(&req, id, deps))
}

/// One request or message: what its handler works with, and what it owes the outbox.
struct Service {
    deps: Deps<SqliteOrders>,
    relay: Relay,
}

impl Service {
    /// Opens the `orders` database (schema version and outbox backlog in one query) and
    /// reads the session secret (`jwt_secret`).
    fn open() -> anyhow::Result<Self> {
        let (store, relay) = SqliteOrders::open()?;
        let deps = Deps {
            store,
            jwt_secret: jwt_secret(&Spin)?,
            now: now(),
        };
        Ok(Self { deps, relay })
    }

    /// Runs `work`, then relays the outbox to Redis (`redis_address`) if that is owed.
    // Native builds have no message entry point (see the exports above).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn run<T>(self, work: impl FnOnce(&Deps<SqliteOrders>) -> T) -> T {
        let outcome = work(&self.deps);
        self.relay.finish(self.deps.store.db());
        outcome
    }

    /// [`Service::run`] for an HTTP request: the relay waits until the response has
    /// been sent (its events are committed; the client need not wait for Redis).
    fn respond<T>(self, work: impl FnOnce(&Deps<SqliteOrders>) -> T) -> T {
        let outcome = work(&self.deps);
        if self.relay.is_due() {
            common::http::after_response(async move { self.relay.finish(self.deps.store.db()) });
        }
        outcome
    }
}

/// The expiry backstop ([`messages::cancel_overdue`]); its failure must not fail the
/// request or message that happened to run it.
fn cancel_overdue_or_log(store: &impl store::OrderStore) {
    if let Err(err) = messages::cancel_overdue(store, now()) {
        eprintln!("could not cancel overdue orders: {err:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::http::Method;

    #[test]
    fn unknown_routes_and_methods_are_json_404s() {
        // Only paths that stop before a handler (which would call into Spin).
        common::testing::assert_json_404s(
            &router(),
            &[
                (Method::Put, "/api/orders"),
                (Method::Delete, "/api/orders"),
                (Method::Post, "/api/orders/abc"),
                (Method::Put, "/api/orders/abc"),
                (Method::Patch, "/api/orders/abc"),
                (Method::Get, "/api/orders/abc/ticket"),
                (Method::Get, "/api/order"),
                (Method::Get, "/"),
                (Method::Other("BREW".into()), "/api/orders"),
            ],
        );
    }
}
