//! Building blocks shared by every Tessera service component.
//!
//! Each module owns one concern of the HTTP contract in `spec/marketplace.md`:
//! [`error`] (the error body and status codes), [`json`] (request/response bodies),
//! [`session`] (the `session` cookie and its JWT), [`config`] (Spin variables) and
//! [`http`] (thin Spin glue: bounded body reading and the JSON 404). Between services:
//! [`events`] (the event types generated from `wit/` and their CloudEvents envelope),
//! [`message`] (the Redis entry point), [`outbox`] (events committed with the change
//! that causes them, relayed to Redis), [`trace`] (the W3C traceparent that events
//! carry, so a trace follows a purchase across services), [`sqlite`] (Spin's sqlite
//! behind a trait, transactions), [`id`] (order ids) and [`time`].
//!
//! Everything except the Spin glue is plain Rust and is unit-tested natively. The
//! `testing` feature adds in-memory doubles (`sqlite::testing::MemoryDb`,
//! `outbox::testing::MemoryPublisher`) and shared assertions and request builders
//! ([`testing`]) for the services' native tests.
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod id;
pub mod json;
pub mod message;
pub mod outbox;
pub mod session;
pub mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod trace;

pub use error::{ApiError, FieldError};
