//! Test harness shared by the host's tests and the app's black-box tests: it runs the
//! real `tessera` binary on a free loopback port, real `redis-server`s, and talks HTTP.

pub mod event_log;
pub mod faults;
pub mod harness;
pub mod invariants;
pub mod marketplace;
pub mod otlp;
pub mod session;
pub mod stripe;
pub mod topology;
pub mod workload;

pub use harness::*;
