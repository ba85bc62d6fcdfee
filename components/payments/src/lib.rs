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
//! The endpoints live in `routes/`, the rules in `domain/` (the money rule:
//! `domain/refund.rs`), the SQL in `store.rs`, the refunds worker in `refunds.rs`, and
//! Stripe (HTTP client, webhook signatures) in `stripe/`.
//!
//! Every entry point runs through [`Service`]: open the `payments` database, do the
//! work, make the refunds that are due, relay the outbox if that is owed (the work or
//! a refund queued events, or some were left by a crash or a Redis outage); for an HTTP
//! request, the relay runs after the response has been sent
//! ([`common::http::after_response`]).
#![deny(missing_docs)]

pub mod domain;
pub mod messages;
pub mod refunds;
pub mod routes;
pub mod store;
pub mod stripe;

#[cfg(test)]
mod testing;

use std::future::Future;

use common::ApiError;
use common::config::{Source, Spin, jwt_secret};
use common::http::not_found;
use common::outbox::{DEFAULT_REDIS_ADDRESS, RedisPublisher, Relay};
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
async fn handle_payments(
    incoming: spin_sdk::http::IncomingRequest,
    response_out: spin_sdk::http::ResponseOutparam,
) {
    common::http::serve(incoming, response_out, router()).await
}

/// One Redis message, in its trace context: an order event for the replica, or a
/// keyspace notification that a refund retry is due. Only store failures are errors;
/// the host logs them (the chain is folded into the message, which is all it prints).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    common::message::serve_async(&message, async {
        let service = Service::open()?;
        let payments = &service.deps.payments;
        service
            .run(async { messages::handle(payments, &message, now()) })
            .await
    })
    .await
}

/// The payments routes. Anything else, including a known path with another method, is
/// the JSON 404 (spin-sdk's own fallback would be a plain-text 404 or 405).
pub fn router() -> Router {
    let mut router = Router::new();
    router.post_async("/api/payments", create);
    router.post_async("/api/payments/setup", setup);
    router.post_async("/api/payments/confirm", confirm);
    router.post_async("/api/payments/webhook", webhook);
    router.get("/api/payments/config", client_config);
    router.any("/*", not_found);
    router
}

async fn create(req: Request, _: Params) -> Result<Response, ApiError> {
    Service::open()?
        .respond(async |deps| routes::create::handle(&req, deps).await)
        .await
}

async fn setup(req: Request, _: Params) -> Result<Response, ApiError> {
    Service::open()?
        .respond(async |deps| routes::setup::handle(&req, deps).await)
        .await
}

async fn confirm(req: Request, _: Params) -> Result<Response, ApiError> {
    Service::open()?
        .respond(async |deps| routes::confirm::handle(&req, deps).await)
        .await
}

async fn webhook(req: Request, _: Params) -> Result<Response, ApiError> {
    let secret: String = Spin.required("stripe_webhook_secret")?;
    Service::open()?
        .respond(async |deps| routes::webhook::handle(&req, &deps.payments, &secret, now()))
        .await
}

fn client_config(_: Request, _: Params) -> Result<Response, ApiError> {
    Ok(routes::client_config::handle(&ClientConfig::from_source(
        &Spin,
    )?))
}

/// The dependencies of payments' handlers in the component.
type PaymentDeps = Deps<Connection, StripeClient<SpinTransport>>;

/// What every entry point works with: the store, Stripe (variables `stripe_api_base`,
/// `stripe_secret_key`), the session secret (`jwt_secret`) and Redis (`redis_address`)
/// for the outbox and the refund wake-ups.
struct Service {
    deps: PaymentDeps,
    relay: Relay,
    redis_address: String,
}

impl Service {
    fn open() -> anyhow::Result<Self> {
        let redis_address: String =
            common::config::variable_or("redis_address", DEFAULT_REDIS_ADDRESS.to_owned())?;
        let (payments, relay) = Payments::open()?;
        let deps = Deps {
            payments,
            stripe: StripeClient::new(stripe::Config::from_source(&Spin)?, SpinTransport),
            jwt_secret: jwt_secret(&Spin)?,
            now: now(),
            pause: std::thread::sleep as fn(std::time::Duration),
        };
        Ok(Self {
            deps,
            relay,
            redis_address,
        })
    }

    /// Runs `work`, makes the refunds that are due (the work may have queued one), and
    /// relays the outbox if that is owed, whatever the work answered. Relay and refund
    /// failures are logged: the work's outcome stands, and both are retried later.
    // Native builds have no message entry point (see the exports above).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    async fn run<T>(&self, work: impl Future<Output = T>) -> T {
        let outcome = work.await;
        self.make_due_refunds().await;
        self.relay();
        outcome
    }

    /// [`Service::run`] for an HTTP request: the relay waits until the response has
    /// been sent (its events are committed; the client need not wait for Redis).
    async fn respond<T>(self, work: impl AsyncFnOnce(&PaymentDeps) -> T) -> T {
        let outcome = work(&self.deps).await;
        self.make_due_refunds().await;
        if self.relay.is_due() {
            common::http::after_response(async move { self.relay() });
        }
        outcome
    }

    /// Relays the outbox to Redis if that is owed.
    fn relay(&self) {
        let publisher = RedisPublisher::new(self.redis_address.clone());
        self.relay.finish_with(self.deps.payments.db(), &publisher);
    }

    async fn make_due_refunds(&self) {
        let (payments, stripe) = (&self.deps.payments, &self.deps.stripe);
        match refunds::make_due(payments, stripe, now()).await {
            Ok(None) => {}
            Ok(Some(due)) => {
                if let Err(err) = self.wake_at(due) {
                    eprintln!("payments: {err:#}; the refund waits for the next activity");
                }
            }
            Err(err) => eprintln!("payments: making refunds stopped: {err:#}"),
        }
    }

    /// Sets [`refunds::WAKE_KEY`] to expire at `due` (Unix seconds): its keyspace
    /// notification runs the refunds again then.
    fn wake_at(&self, due: u64) -> anyhow::Result<()> {
        use spin_sdk::redis::{Connection, RedisParameter};
        let millis = due.saturating_sub(now()).max(1).saturating_mul(1_000);
        let text = |value: &str| RedisParameter::Binary(value.as_bytes().to_vec());
        let arguments = [
            text(refunds::WAKE_KEY),
            text("1"),
            text("PX"),
            RedisParameter::Int64(i64::try_from(millis).unwrap_or(i64::MAX)),
        ];
        Connection::open(&self.redis_address)
            .and_then(|redis| redis.execute("SET", &arguments))
            .map(|_| ())
            .map_err(|err| anyhow::anyhow!("Failed to schedule a refund retry: {err:?}"))
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
