//! The node configuration: `cluster.toml`, overridden by `CLOUDROUTES_*` environment variables,
//! overridden by command-line flags. Unknown keys are errors that name the key.
//!
//! Every section has serde defaults, so an empty file (or no file) is a valid single node on
//! the embedded store. `cluster.toml` at the repository root documents every key.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::Secret;

/// The whole node configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Config format version; only `1` exists.
    #[serde(default = "default_version")]
    pub version: u32,
    /// This node.
    #[serde(default)]
    pub node: NodeSection,
    /// Where definitions, state and history live.
    #[serde(default)]
    pub store: StoreSection,
    /// The monitoring engine's limits and timings.
    #[serde(default)]
    pub engine: EngineSection,
    /// The HTTP API.
    #[serde(default)]
    pub http: HttpSection,
    /// Node-to-node transport (cluster mode only).
    #[serde(default)]
    pub cluster: ClusterSection,
}

/// `[node]`: identity and local files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Node id; when unset, one is generated on first start and kept in `data_dir/node.id`.
    #[serde(default)]
    pub id: Option<String>,
    /// Failure zone (rack, data centre) this node runs in.
    #[serde(default = "default_zone")]
    pub zone: String,
    /// Directory for the embedded store, the admin token and the node id.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

/// `[store]`: which backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `embedded` (a crash-safe database file in `node.data_dir`) or a `redis://` URL.
    #[serde(default = "default_store_url")]
    pub url: String,
}

/// `[engine]`: concurrency limits, timeouts and write batching.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Checks running at once on this node, across all monitors.
    #[serde(default = "default_check_concurrency")]
    pub check_concurrency: usize,
    /// Reaction router actors (monitors are sharded across them); 0 means one per core.
    #[serde(default)]
    pub router_shards: usize,
    /// Reactions running at once on this node.
    #[serde(default = "default_reaction_concurrency")]
    pub reaction_concurrency: usize,
    /// Upper bound on one reaction run, whatever its own timeout says.
    #[serde(default = "default_reaction_timeout_ms")]
    pub reaction_timeout_ms: u64,
    /// How often routine counters (streak, last check time) are written in one batch.
    #[serde(default = "default_state_flush_ms")]
    pub state_flush_ms: u64,
    /// History events kept per monitor; older ones are dropped.
    #[serde(default = "default_history_max_events")]
    pub history_max_events: usize,
    /// First delay before restarting a crashed monitor actor; doubles on each crash in a row.
    #[serde(default = "default_restart_backoff_initial_ms")]
    pub restart_backoff_initial_ms: u64,
    /// Longest delay before restarting a crashed monitor actor.
    #[serde(default = "default_restart_backoff_max_ms")]
    pub restart_backoff_max_ms: u64,
}

/// `[http]`: the API listener and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address the API, dashboard and webhook intake listen on.
    #[serde(default = "default_http_addr")]
    pub addr: SocketAddr,
    /// Largest request body accepted on API routes.
    #[serde(default = "default_body_limit_bytes")]
    pub body_limit_bytes: u64,
    /// Base URL users reach this node at (for webhook URLs in responses); defaults to
    /// `http://{addr}`.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// `[cluster]`: node-to-node transport. Requires a Redis store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// `host:port` this node's cluster transport listens on.
    #[serde(default)]
    pub addr: Option<String>,
    /// Other nodes' cluster addresses to dial at start.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// Shared secret that authenticates nodes to each other.
    #[serde(default)]
    pub cookie: Option<Secret>,
}

fn default_version() -> u32 {
    1
}
fn default_zone() -> String {
    "default".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_store_url() -> String {
    "embedded".into()
}
fn default_check_concurrency() -> usize {
    1024
}
fn default_reaction_concurrency() -> usize {
    64
}
fn default_reaction_timeout_ms() -> u64 {
    30_000
}
fn default_state_flush_ms() -> u64 {
    1_000
}
fn default_history_max_events() -> usize {
    1_000
}
fn default_restart_backoff_initial_ms() -> u64 {
    500
}
fn default_restart_backoff_max_ms() -> u64 {
    60_000
}
fn default_http_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_body_limit_bytes() -> u64 {
    1024 * 1024
}

macro_rules! default_from_serde {
    ($($ty:ident),*) => {$(
        impl Default for $ty {
            fn default() -> Self {
                toml::from_str("").expect("every field of this section has a default")
            }
        }
    )*};
}
default_from_serde!(NodeConfig, NodeSection, StoreSection, EngineSection, HttpSection);
