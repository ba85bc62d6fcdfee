//! One file per route.

pub mod activity;
pub mod home;
pub mod new_ticket;
pub mod not_found;
pub mod order;
pub mod orders;
pub mod signin;
pub mod signout;
pub mod signup;
pub mod ticket;
