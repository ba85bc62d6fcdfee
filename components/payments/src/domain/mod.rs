//! The payments service's rules in plain Rust: the order replica and when an order can
//! be paid ([`order`]), payments, card tokens and idempotency keys ([`payment`]), and
//! the charges given back because their order did not complete ([`refund`]).

pub mod order;
pub mod payment;
pub mod refund;

pub use common::id::OrderId;
pub use order::{Change, Order, Refusal, Terms};
pub use payment::{Payment, PaymentMethod, intent_key};
pub use refund::{Refund, RefundReason};
