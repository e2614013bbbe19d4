//! `[cluster]`: partitions, lease and heartbeat timings, and the node-to-node transport.

use std::path::PathBuf;

use serde::Deserialize;

use super::NodeConfig;
use crate::error::ConfigError;
use crate::secret::Secret;

/// `[cluster]`: partitions, leases, membership and node-to-node transport. Used when the
/// store is Redis (every node on one Redis shares the monitors).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// `host:port` this node's cluster transport listens on (and peers dial).
    #[serde(default)]
    pub addr: Option<String>,
    /// Other nodes' cluster addresses. Accepted but not dialed: peers are found through their
    /// heartbeat records in Redis.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// Shared secret that authenticates nodes to each other.
    #[serde(default)]
    pub cookie: Option<Secret>,
    /// A file holding the cookie, instead of `cookie`; refused when group or others can read
    /// or write it.
    #[serde(default)]
    pub cookie_file: Option<PathBuf>,
    /// Number of partitions monitors are spread over; the same on every node, forever.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// How long a partition lease lasts in Redis without renewal.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// How often leases are renewed (and ownership recomputed).
    #[serde(default = "default_renew_ms")]
    pub renew_ms: u64,
    /// How long after its last good renewal a node stops writing for a partition (self-fencing
    /// on the monotonic clock, before the lease can expire).
    #[serde(default = "default_fence_ms")]
    pub fence_ms: u64,
    /// How long a node's heartbeat record lives without a refresh: the liveness bound.
    #[serde(default = "default_heartbeat_ttl_ms")]
    pub heartbeat_ttl_ms: u64,
    /// How often the heartbeat is refreshed.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// How often a node compares the monitors it runs with the store and repairs differences.
    #[serde(default = "default_reconcile_ms")]
    pub reconcile_ms: u64,
    /// How long reactions are held after the Redis server restarted (its run id changed).
    #[serde(default = "default_quarantine_ms")]
    pub quarantine_ms: u64,
    /// How long one Redis request may take before it counts as failed.
    #[serde(default = "default_redis_timeout_ms")]
    pub redis_timeout_ms: u64,
    /// PEM certificate chain for TLS between nodes (with `tls_key`); unset means plain TCP.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS between nodes.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate peers' certificates must chain to (defaults to `tls_cert`).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Largest node-to-node frame a peer may announce, in bytes; a peer that announces a
    /// larger one (even before authenticating) is disconnected and logged.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: u64,
}

/// Default of `cluster.max_frame_bytes`: 4 MiB. The largest legitimate message is a webhook
/// delivery forwarded to a monitor's owner, bounded by the 256 KiB webhook body limit (a few
/// times that once JSON-escaped); ractor_cluster's own limit is 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: u64 = 4 * 1024 * 1024;
/// Smallest accepted `cluster.max_frame_bytes`: below it, legitimate messages could be refused.
pub const MIN_MAX_FRAME_BYTES: u64 = 64 * 1024;
/// Largest accepted `cluster.max_frame_bytes`: 256 MiB.
pub const MAX_MAX_FRAME_BYTES: u64 = 256 * 1024 * 1024;

fn default_partitions() -> u32 {
    crate::partition::DEFAULT_PARTITIONS
}
fn default_lease_ms() -> u64 {
    10_000
}
fn default_renew_ms() -> u64 {
    2_000
}
fn default_fence_ms() -> u64 {
    6_000
}
fn default_heartbeat_ttl_ms() -> u64 {
    10_000
}
fn default_heartbeat_ms() -> u64 {
    2_000
}
fn default_reconcile_ms() -> u64 {
    30_000
}
fn default_quarantine_ms() -> u64 {
    5_000
}
fn default_redis_timeout_ms() -> u64 {
    2_000
}
fn default_max_frame_bytes() -> u64 {
    DEFAULT_MAX_FRAME_BYTES
}

impl NodeConfig {
    /// Checks that leases, renewals, self-fencing and heartbeats are ordered so that a node
    /// stops writing before its lease can expire.
    pub(super) fn validate_cluster_timing(&self) -> Result<(), ConfigError> {
        let cluster = &self.cluster;
        let invalid =
            |key: &str, message: String| Err(ConfigError::Invalid { key: key.into(), message });
        if cluster.renew_ms >= cluster.fence_ms {
            let message = format!(
                "must be less than cluster.fence_ms ({}), got {}",
                cluster.fence_ms, cluster.renew_ms
            );
            return invalid("cluster.renew_ms", message);
        }
        if cluster.fence_ms >= cluster.lease_ms {
            let message = format!(
                "must be less than cluster.lease_ms ({}) so a node stops writing before its \
                 lease can expire, got {}",
                cluster.lease_ms, cluster.fence_ms
            );
            return invalid("cluster.fence_ms", message);
        }
        if cluster.heartbeat_ms >= cluster.heartbeat_ttl_ms {
            let message = format!(
                "must be less than cluster.heartbeat_ttl_ms ({}), got {}",
                cluster.heartbeat_ttl_ms, cluster.heartbeat_ms
            );
            return invalid("cluster.heartbeat_ms", message);
        }
        if cluster.cookie.is_some() && cluster.cookie_file.is_some() {
            return invalid(
                "cluster.cookie_file",
                "and cluster.cookie are exclusive: set one".into(),
            );
        }
        if cluster.addr.is_some() && cluster.cookie.is_none() && cluster.cookie_file.is_none() {
            let message = "(or cluster.cookie_file) must be set when cluster.addr is: nodes \
                           authenticate each other with it (the same secret on every node)"
                .into();
            return invalid("cluster.cookie", message);
        }
        if !(MIN_MAX_FRAME_BYTES..=MAX_MAX_FRAME_BYTES).contains(&cluster.max_frame_bytes) {
            let message = format!(
                "must be between {MIN_MAX_FRAME_BYTES} (64 KiB) and {MAX_MAX_FRAME_BYTES} \
                 (256 MiB), got {}",
                cluster.max_frame_bytes
            );
            return invalid("cluster.max_frame_bytes", message);
        }
        if cluster.tls_cert.is_some() != cluster.tls_key.is_some() {
            let message = "must be set together with cluster.tls_cert and cluster.tls_key".into();
            return invalid(
                if cluster.tls_cert.is_some() { "cluster.tls_key" } else { "cluster.tls_cert" },
                message,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
