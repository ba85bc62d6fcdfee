//! The payments service's rules in plain Rust: the order replica and when an order can
//! be paid ([`order`]), payments, card tokens and idempotency keys ([`payment`]).

pub mod order;
mod order_id;
pub mod payment;

pub use order::{Change, Order, Refusal, Terms};
pub use order_id::OrderId;
pub use payment::{Payment, PaymentMethod, intent_key};
