//! Validated values of the auth service, parsed once at the edge.

mod email;
mod password;

pub use email::Email;
pub use password::Password;
