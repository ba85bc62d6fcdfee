//! Building blocks shared by every Tessera service component.
//!
//! Each module owns one concern of the HTTP contract in `spec/marketplace.md`:
//! [`error`] (the error body and status codes), [`json`] (request/response bodies),
//! [`session`] (the `session` cookie and its JWT), [`config`] (Spin variables) and
//! [`http`] (thin Spin glue: bounded body reading and the JSON 404).
//!
//! Everything except the Spin glue is plain Rust and is unit-tested natively.
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod http;
pub mod json;
pub mod session;

pub use error::{ApiError, FieldError};
