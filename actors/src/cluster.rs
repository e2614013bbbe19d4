//! Cluster mode: membership and partition ownership through the coordinator (Redis), and the
//! ractor_cluster transport that carries node-to-node messages.
//!
//! - [`wire`]: the messages nodes exchange (versioned, serialized).
//! - [`transport`]: the ractor_cluster node server, peer sessions and the remotable agent that
//!   receives requests and notices for this node.

pub mod transport;
pub mod wire;
