//! CloudRoutes actors: the running engine of one node.
//!
//! - [`node`]: the facade the HTTP API calls ([`Node`]); it writes the store first, then tells
//!   the actors.
//! - [`root`]: the root supervisor, which starts and restarts the routers and the monitor
//!   supervisor.
//! - [`supervisor`]: starts, reconfigures, stops and restarts (with backoff) monitor actors.
//! - [`monitor`]: one actor per monitor, with its own schedule.
//! - [`gate`]: holds monitors spawned ahead of a takeover back until their lease is granted.
//! - [`lifeline`]: the thread that keeps a cluster member's heartbeat and leases alive.
//! - [`router`]: folds results into state, persists transitions, fires gated reactions.
//! - [`brake`]: the blast-radius brake on destructive reactions.
//! - [`firing`]: runs one reaction firing with limits, deadline and retries; records it.
//! - [`board`]: monitors and their live state, shared by routers and the API.
//! - [`validate`]: the domain rules for monitor and reaction definitions.
//! - [`metrics`]: the Prometheus metrics.

pub mod board;
pub mod brake;
pub mod cluster;
pub mod error;
pub mod firing;
pub mod gate;
pub mod lifeline;
pub mod metrics;
pub mod monitor;
pub mod node;
pub mod notes;
pub mod root;
pub mod router;
pub mod supervisor;
pub mod validate;

#[cfg(test)]
mod tests;

pub use error::NodeError;
pub use lifeline::Lifeline;
pub use node::{
    ClusterSetup, ClusterView, MonitorFilter, MonitorView, Node, NodeInbox, NodeStatus,
    ReactionView,
};
pub use validate::{MonitorDraft, ReactionDraft};
