//! The orders service: reserve a ticket, list, show and cancel orders, and follow
//! tickets, expirations and payments through their events (the "Orders" section and
//! the Events table of `spec/marketplace.md`).
//!
//! This file is the Spin glue only: the HTTP and Redis entry points, routing, and each
//! handler's dependencies from Spin variables, sqlite and Redis. The rules live in
//! `domain/` (what happens when an order expires: `domain/status.rs`), the endpoints in
//! `routes/`, the consumed events in `messages.rs`, the SQL in `store.rs`.
//!
//! Every request and message first relays what the outbox still holds (events left by
//! a crash or a Redis outage), then does its work, whose writes queue their events in
//! the same transaction, then relays again.
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
use common::outbox::{RedisPublisher, relayed};
use common::session::now;
use spin_sdk::http::{Params, Request, Response, Router};

use crate::domain::LockWindow;
use crate::routes::Deps;
use crate::store::SqliteOrders;

// Native builds (tests) skip the exports: their WIT-style symbol names break the native
// cdylib link ("; expected" in the linker version script).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle_orders(incoming: spin_sdk::http::IncomingRequest) -> Response {
    common::http::serve(incoming, router()).await
}

/// One Redis message: relay, handle, relay. Only store failures are errors; the host
/// logs them (the chain is folded into the message, which is all it prints).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    common::error::fold_chain(|| {
        let publisher = RedisPublisher::from_variables()?;
        let store = SqliteOrders::open()?;
        common::outbox::with_relay(store.db(), &publisher, || {
            cancel_overdue_or_log(&store);
            messages::handle(&store, &message, now())
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
    serve(|deps| routes::create::handle(&req, deps, lock))
}

fn list(req: Request, _: Params) -> Result<Response, ApiError> {
    serve(|deps| routes::list::handle(&req, deps))
}

fn show(req: Request, params: Params) -> Result<Response, ApiError> {
    let id = params.get("id").unwrap_or_default();
    serve(|deps| routes::show::handle(&req, id, deps))
}

fn cancel(req: Request, params: Params) -> Result<Response, ApiError> {
    let id = params.get("id").unwrap_or_default();
    serve(|deps| routes::cancel::handle(&req, id, deps))
}

/// Runs `handler` with its dependencies, relaying the outbox before and after.
fn serve(
    handler: impl FnOnce(&Deps<SqliteOrders>) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let publisher = RedisPublisher::from_variables()?;
    let deps = Deps {
        store: SqliteOrders::open()?,
        jwt_secret: jwt_secret(&Spin)?,
        now: now(),
    };
    relayed(deps.store.db(), &publisher, || {
        cancel_overdue_or_log(&deps.store);
        handler(&deps)
    })
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
