//! The orders service's rules, in plain Rust: the order lifecycle ([`status`]), the
//! lock window ([`expires_at`]), ids, and the ticket replica's apply-if-newer rule.

mod expires_at;
mod order;
mod order_id;
pub mod status;
mod ticket;

pub use expires_at::{ExpiresAt, LOCK_VARIABLE, LockWindow};
pub use order::Order;
pub use order_id::OrderId;
pub use status::{Lifecycle, OrderStatus, Refusal, Transition, Trigger};
pub use ticket::Ticket;
