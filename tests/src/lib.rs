//! Test harness shared by the host's tests and the app's black-box tests: it runs the
//! real `tessera` binary on a free loopback port, real `redis-server`s, and talks HTTP.

pub mod harness;
pub mod marketplace;
pub mod session;
pub mod stripe;
pub mod topology;

pub use harness::*;
