//! Tessera: runs Spin applications (manifest v2, spin-sdk 5.x components) on wasmtime.
//!
//! The pipeline: `manifest` (the file) or `registry` (an OCI artifact) → `locked` (Spin's
//! locked app) → `app` (validated, resolved) → `runtime`
//! (engine, compiled components) → `triggers` (HTTP, Redis) that instantiate a fresh
//! component per request or message, with the host `capabilities` linked in. `watch`
//! rebuilds and reloads components of a running app as their files change.

pub mod allowed_hosts;
pub mod app;
pub mod bindings;
pub mod capabilities;
pub mod cli;
pub mod commands;
pub mod dev_services;
pub mod guest_output;
pub mod locked;
pub mod manifest;
pub mod metrics;
pub mod registry;
pub mod router;
pub mod runtime;
pub mod runtime_config;
pub mod state;
pub mod telemetry;
pub mod traces;
pub mod triggers;
pub mod variables;
pub mod watch;
