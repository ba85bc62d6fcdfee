//! The orders service's rules, in plain Rust: the order lifecycle ([`status`]), the
//! lock window ([`expires_at`]), ids, the ticket replica's apply-if-newer rule, and
//! the payment shown on an order ([`payment`]).

mod expires_at;
mod order;
pub mod payment;
pub mod status;
mod ticket;

pub use common::id::OrderId;
pub use expires_at::{ExpiresAt, LOCK_VARIABLE, LockWindow};
pub use order::Order;
pub use payment::{Payment, PaymentEvent, PaymentStatus};
pub use status::{Lifecycle, OrderStatus, Refusal, Transition, Trigger};
pub use ticket::Ticket;
