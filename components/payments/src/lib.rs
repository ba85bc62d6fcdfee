//! The payments service: pay for orders with Stripe PaymentIntents, record each
//! payment once and announce it (`payment:created`), and follow orders through their
//! events (the "Payments" section and the Events table of `spec/marketplace.md`).
//!
//! This file is the Spin glue only. One component exports two handlers:
//! - HTTP (`/api/payments/...`): reads the body with a size limit and routes;
//! - Redis (`order:created`, `order:cancelled`, `order:completed`): [`messages`].
//!
//! Endpoints: `POST /api/payments` (pay, or start paying, for an order), `POST
//! /api/payments/setup` (a SetupIntent for Stripe.js to turn the card into a
//! PaymentMethod to pay with), `POST /api/payments/confirm` (record a payment the
//! browser confirmed), `POST /api/payments/webhook` (Stripe's events) and `GET
//! /api/payments/config` (Stripe.js settings).
//!
//! The endpoints live in `routes/`, the rules in `domain/`, the SQL in `store.rs`, and
//! Stripe (HTTP client, webhook signatures) in `stripe/`. Requests that touch the
//! database relay the outbox before and after their work, as messages do, so events
//! left by a Redis outage go out with the next activity.
#![deny(missing_docs)]

pub mod domain;
pub mod messages;
pub mod routes;
pub mod store;
pub mod stripe;

#[cfg(test)]
mod testing;

use common::ApiError;
use common::config::{Source, Spin, jwt_secret};
use common::http::not_found;
use common::outbox::{RedisPublisher, relayed, relayed_async};
use common::sqlite::Connection;
use common::time::now;
use spin_sdk::http::{Params, Request, Response, Router};

use crate::routes::Deps;
use crate::routes::client_config::ClientConfig;
use crate::store::Payments;
use crate::stripe::{SpinTransport, StripeClient};

// Native builds (tests) skip the exports: their WIT-style symbol names break the native
// cdylib link ("; expected" in the linker version script).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle_payments(incoming: spin_sdk::http::IncomingRequest) -> Response {
    common::http::serve(incoming, router()).await
}

/// One Redis message: relay, replicate, relay. Only store failures are errors; the host
/// logs them (the chain is folded into the message, which is all it prints).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    common::error::fold_chain(|| {
        let publisher = RedisPublisher::from_variables()?;
        let payments = Payments::open()?;
        common::outbox::with_relay(payments.db(), &publisher, || {
            messages::handle(&payments, &message)
        })
    })
}

/// The payments routes. Anything else, including a known path with another method, is
/// the JSON 404 (spin-sdk's own fallback would be a plain-text 404 or 405).
pub fn router() -> Router {
    let mut router = Router::new();
    router.post_async("/api/payments", create);
    router.post_async("/api/payments/setup", setup);
    router.post_async("/api/payments/confirm", confirm);
    router.post("/api/payments/webhook", webhook);
    router.get("/api/payments/config", client_config);
    router.any("/*", not_found);
    router
}

async fn create(req: Request, _: Params) -> Result<Response, ApiError> {
    let (deps, publisher) = deps()?;
    relayed_async(
        deps.payments.db(),
        &publisher,
        routes::create::handle(&req, &deps),
    )
    .await
}

async fn setup(req: Request, _: Params) -> Result<Response, ApiError> {
    let (deps, publisher) = deps()?;
    relayed_async(
        deps.payments.db(),
        &publisher,
        routes::setup::handle(&req, &deps),
    )
    .await
}

async fn confirm(req: Request, _: Params) -> Result<Response, ApiError> {
    let (deps, publisher) = deps()?;
    relayed_async(
        deps.payments.db(),
        &publisher,
        routes::confirm::handle(&req, &deps),
    )
    .await
}

fn webhook(req: Request, _: Params) -> Result<Response, ApiError> {
    let secret: String = Spin.required("stripe_webhook_secret")?;
    let publisher = RedisPublisher::from_variables()?;
    let payments = Payments::open()?;
    relayed(payments.db(), &publisher, || {
        routes::webhook::handle(&req, &payments, &secret, now())
    })
}

fn client_config(_: Request, _: Params) -> Result<Response, ApiError> {
    Ok(routes::client_config::handle(&ClientConfig::from_source(
        &Spin,
    )?))
}

/// Store, Stripe (variables `stripe_api_base`, `stripe_secret_key`), session secret
/// (`jwt_secret`) and the Redis publisher (`redis_address`).
fn deps() -> anyhow::Result<(
    Deps<Connection, StripeClient<SpinTransport>>,
    RedisPublisher,
)> {
    let stripe_config = stripe::Config::from_source(&Spin)?;
    let deps = Deps {
        payments: Payments::open()?,
        stripe: StripeClient::new(stripe_config, SpinTransport),
        jwt_secret: jwt_secret(&Spin)?,
        now: now(),
        pause: std::thread::sleep as fn(std::time::Duration),
    };
    Ok((deps, RedisPublisher::from_variables()?))
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
                (Method::Get, "/api/payments"),
                (Method::Put, "/api/payments"),
                (Method::Delete, "/api/payments"),
                (Method::Get, "/api/payments/webhook"),
                (Method::Get, "/api/payments/confirm"),
                (Method::Get, "/api/payments/setup"),
                (Method::Put, "/api/payments/setup"),
                (Method::Delete, "/api/payments/setup"),
                (Method::Post, "/api/payments/setup/x"),
                (Method::Post, "/api/payments/setupx"),
                (Method::Post, "/api/payments/config"),
                (Method::Post, "/api/payments/abc"),
                (Method::Get, "/api/payments/config/x"),
                (Method::Get, "/api/paymentsx"),
                (Method::Get, "/"),
                (Method::Other("BREW".into()), "/api/payments"),
            ],
        );
    }
}
