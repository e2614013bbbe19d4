//! The CloudRoutes engine: everything that is true of monitoring and reacting regardless of
//! actors, HTTP or any particular check.
//!
//! - [`access`]: API tokens with roles and the audit trail's entries.
//! - [`model`]: monitors, reactions, check outcomes, monitor state, history events.
//! - [`gate`]: the reaction gating rule as pure functions.
//! - [`partition`]: monitors to partitions, partitions to nodes (pure, stable hashing).
//! - [`cluster`]: membership, fenced partition leases and reaction claims (the `Coordinator`).
//! - [`config`]: the node configuration (`cluster.toml`, environment, flags).
//! - [`egress`]: the egress policy: which addresses checks and reactions may connect to.
//! - [`store`]: the `Store` trait, its embedded backend and the conformance suite.
//! - [`plugin`]: the error type and JSON parsing shared by check and reaction configs.
//! - [`seal`]: sealing of secret values at rest and the node's secrets key.
//! - [`secret`]: a wrapper for credentials that never prints them.
//! - [`error`]: the crate's typed errors.
//! - `fuzzing` (tests, or the `fuzzing` feature): the bounded fuzz harness of every crate.

pub mod access;
pub mod cluster;
pub mod config;
pub mod egress;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod gate;
pub mod model;
pub mod partition;
pub mod plugin;
pub mod seal;
pub mod secret;
pub mod store;

pub use error::{ConfigError, StoreError};
pub use model::*;
pub use store::Store;
