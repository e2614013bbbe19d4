//! The node configuration: `cluster.toml`, overridden by `CLOUDROUTES_*` environment variables,
//! overridden by command-line flags. Unknown keys are errors that name the key.
//!
//! Every section has serde defaults, so an empty file (or no file) is a valid single node on
//! the embedded store. `cluster.toml` at the repository root documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Table, Value};

use crate::error::ConfigError;

mod checks;
mod cluster;
mod egress;
mod env;
#[cfg(test)]
mod fuzz;
mod limits;
mod secrets;
mod smtp;

pub use checks::{ChecksSection, ExecSection, ExecUser};
pub use cluster::ClusterSection;
pub use cluster::DEFAULT_MAX_FRAME_BYTES;
pub use egress::EgressSection;
pub use limits::LimitsSection;
pub use secrets::SecretsSection;
pub use smtp::{SmtpSection, SmtpSecurity};

/// The embedded store's file name inside `node.data_dir`.
pub const EMBEDDED_STORE_FILE: &str = "cloudroutes.redb";

/// Command-line flags that override the file and the environment (`--http`, `--data-dir`,
/// `--node-id`); `None` leaves the key alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagOverrides {
    /// `--http ADDR`: overrides `http.addr`.
    pub http_addr: Option<SocketAddr>,
    /// `--data-dir DIR`: overrides `node.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `--node-id ID`: overrides `node.id`.
    pub node_id: Option<String>,
}

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
    /// What check types that act on this node itself may do.
    #[serde(default)]
    pub checks: ChecksSection,
    /// The default mail relay of `email-notification` reactions.
    #[serde(default)]
    pub smtp: SmtpSection,
    /// Rate limits, the token cache and the audit trail's size.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The key that seals secrets in stored definitions.
    #[serde(default)]
    pub secrets: SecretsSection,
    /// Which addresses checks and reactions may connect to.
    #[serde(default)]
    pub egress: EgressSection,
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
    /// Page cache of the embedded store, in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: usize,
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
    /// Destructive reactions (reboots, power cycles, stops) that may start in any
    /// `destructive_window_secs`, counted across every node of the cluster; beyond it they
    /// wait for the window to free up (the blast-radius brake).
    #[serde(default = "default_destructive_budget")]
    pub destructive_budget: u32,
    /// The window of `destructive_budget`, in seconds.
    #[serde(default = "default_destructive_window_secs")]
    pub destructive_window_secs: u64,
    /// Share of this node's monitors, in percent, that makes its view suspect when that many
    /// are failed at once: its destructive reactions wait until another node also sees such a
    /// share failed (a node cut off from its targets must not reboot them all).
    #[serde(default = "default_brake_failed_percent")]
    pub brake_failed_percent: u32,
    /// The share of `brake_failed_percent` counts only on a node running at least this many
    /// monitors.
    #[serde(default = "default_brake_min_monitors")]
    pub brake_min_monitors: u64,
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
fn default_cache_mb() -> usize {
    16
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
    5_000
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
fn default_destructive_budget() -> u32 {
    10
}
fn default_destructive_window_secs() -> u64 {
    600
}
fn default_brake_failed_percent() -> u32 {
    50
}
fn default_brake_min_monitors() -> u64 {
    20
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
default_from_serde!(
    NodeConfig,
    NodeSection,
    StoreSection,
    EngineSection,
    HttpSection,
    ClusterSection,
    ChecksSection,
    ExecSection
);

impl NodeConfig {
    /// Loads and validates the configuration: defaults, then `file` (when given), then the
    /// `CLOUDROUTES_*` variables in `env`, then `flags`; each overrides the one before.
    ///
    /// `env` is the whole environment (`std::env::vars().collect()`); variables without the
    /// `CLOUDROUTES_` prefix are ignored. Every key has a variable named `CLOUDROUTES_` + its
    /// dotted path in capitals with `.` as `_`, plus the aliases of API.md
    /// (`CLOUDROUTES_DATA_DIR`, `CLOUDROUTES_STORE`, `CLOUDROUTES_SEEDS`, `CLOUDROUTES_COOKIE`).
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read; [`ConfigError::Parse`] naming the
    /// file or the variable and the key when something does not parse, a key is unknown, or a
    /// `CLOUDROUTES_*` variable is not a config variable; [`ConfigError::Invalid`] from
    /// [`NodeConfig::validate`].
    pub fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        flags: &FlagOverrides,
    ) -> Result<NodeConfig, ConfigError> {
        let (mut table, file_origin) = match file {
            Some(path) => {
                let origin = format!(" in {}", path.display());
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                let table = text.parse::<Table>().map_err(|error| ConfigError::Parse {
                    origin: origin.clone(),
                    message: syntax_error(&text, &error),
                })?;
                (table, origin)
            }
            None => (Table::new(), String::new()),
        };
        let overrides = env::overrides(env)?;
        for found in &overrides {
            env::apply(&mut table, found)?;
        }
        let mut config: NodeConfig = serde_path_to_error::deserialize(Value::Table(table))
            .map_err(|error| {
                // toml appends "in `path`" lines; the key is named in front instead.
                let text = error.inner().to_string();
                let lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
                let message = lines.filter(|line| !line.starts_with("in `")).collect::<Vec<_>>();
                let message = message.join(" ");
                let key = dotted_key(&error.path().to_string(), &message);
                let from_env = overrides
                    .iter()
                    .find(|found| key == found.key || key.starts_with(&format!("{}.", found.key)));
                let origin = match from_env {
                    Some(found) => format!(" from environment variable {}", found.variable),
                    None => file_origin.clone(),
                };
                ConfigError::Parse { origin, message: format!("`{key}`: {message}") }
            })?;
        if let Some(addr) = flags.http_addr {
            config.http.addr = addr;
        }
        if let Some(data_dir) = &flags.data_dir {
            config.node.data_dir = data_dir.clone();
        }
        if let Some(node_id) = &flags.node_id {
            config.node.id = Some(node_id.clone());
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and consistency; [`NodeConfig::load`] calls it. When `checks.exec.user` is
    /// set, it reads `/etc/passwd` to check that the user exists.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the dotted key of the first value that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |key: &str, message: String| ConfigError::Invalid { key: key.into(), message };
        if self.version != 1 {
            return Err(invalid("version", format!("must be 1, got {}", self.version)));
        }
        if let Some(id) = &self.node.id {
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if id.is_empty() || id.len() > 128 || !id.chars().all(allowed) {
                let message = format!("must be 1 to 128 of A-Z a-z 0-9 - _ . , got `{id}`");
                return Err(invalid("node.id", message));
            }
        }
        if self.node.data_dir.as_os_str().is_empty() {
            return Err(invalid("node.data_dir", "must not be empty".into()));
        }
        let engine = &self.engine;
        let cluster = &self.cluster;
        let ranges: [(&str, u64, u64, u64); 22] = [
            ("store.cache_mb", as_u64(self.store.cache_mb), 1, 65_536),
            ("engine.check_concurrency", as_u64(engine.check_concurrency), 1, 1_000_000),
            ("engine.router_shards", as_u64(engine.router_shards), 0, 1_024),
            ("engine.reaction_concurrency", as_u64(engine.reaction_concurrency), 1, 1_000_000),
            ("engine.reaction_timeout_ms", engine.reaction_timeout_ms, 1, 600_000),
            ("engine.state_flush_ms", engine.state_flush_ms, 10, 60_000),
            ("engine.history_max_events", as_u64(engine.history_max_events), 1, 1_000_000),
            ("engine.restart_backoff_initial_ms", engine.restart_backoff_initial_ms, 1, u64::MAX),
            ("engine.destructive_budget", u64::from(engine.destructive_budget), 1, 1_000_000),
            ("engine.destructive_window_secs", engine.destructive_window_secs, 1, 604_800),
            ("engine.brake_failed_percent", u64::from(engine.brake_failed_percent), 1, 100),
            ("engine.brake_min_monitors", engine.brake_min_monitors, 1, u64::MAX),
            ("http.body_limit_bytes", self.http.body_limit_bytes, 1024, 64 * 1024 * 1024),
            ("cluster.partitions", u64::from(cluster.partitions), 1, 65_536),
            ("cluster.lease_ms", cluster.lease_ms, 300, 3_600_000),
            ("cluster.renew_ms", cluster.renew_ms, 50, 3_600_000),
            ("cluster.fence_ms", cluster.fence_ms, 100, 3_600_000),
            ("cluster.heartbeat_ttl_ms", cluster.heartbeat_ttl_ms, 300, 3_600_000),
            ("cluster.heartbeat_ms", cluster.heartbeat_ms, 50, 3_600_000),
            ("cluster.reconcile_ms", cluster.reconcile_ms, 100, 86_400_000),
            ("cluster.quarantine_ms", cluster.quarantine_ms, 0, 3_600_000),
            ("cluster.redis_timeout_ms", cluster.redis_timeout_ms, 50, 60_000),
        ];
        for (key, value, min, max) in ranges {
            if value < min || value > max {
                return Err(invalid(key, format!("must be between {min} and {max}, got {value}")));
            }
        }
        if engine.restart_backoff_initial_ms > engine.restart_backoff_max_ms {
            let message = format!(
                "must be at least engine.restart_backoff_initial_ms ({}), got {}",
                engine.restart_backoff_initial_ms, engine.restart_backoff_max_ms
            );
            return Err(invalid("engine.restart_backoff_max_ms", message));
        }
        if let Some(url) = &self.http.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            let message = format!("must start with http:// or https://, got `{url}`");
            return Err(invalid("http.public_url", message));
        }
        let url = &self.store.url;
        if !(self.is_embedded() || url.starts_with("redis://") || url.starts_with("rediss://")) {
            let message = format!("must be `embedded` or a redis:// or rediss:// URL, got `{url}`");
            return Err(invalid("store.url", message));
        }
        if self.is_embedded() {
            let key = if !cluster.seeds.is_empty() {
                Some("cluster.seeds")
            } else if cluster.addr.is_some() {
                Some("cluster.addr")
            } else {
                None
            };
            if let Some(key) = key {
                let message = "is set, but a cluster needs a redis store: the embedded store \
                               serves a single node; set store.url to a redis:// URL"
                    .to_owned();
                return Err(invalid(key, message));
            }
        }
        self.validate_cluster_timing()?;
        self.smtp.validate()?;
        self.limits.validate()?;
        self.secrets.validate()?;
        self.egress.prefixes()?;
        self.validate_checks()
    }

    /// Returns how many reaction router actors to run: `engine.router_shards`, or one per
    /// available core when it is 0.
    pub fn router_shards(&self) -> usize {
        match self.engine.router_shards {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            shards => shards,
        }
    }

    /// Returns whether the store is the embedded one (`store.url = "embedded"`).
    pub fn is_embedded(&self) -> bool {
        self.store.url == "embedded"
    }

    /// Returns the embedded store's file: `node.data_dir/cloudroutes.redb`.
    pub fn embedded_store_path(&self) -> PathBuf {
        self.node.data_dir.join(EMBEDDED_STORE_FILE)
    }
}

fn as_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Returns the dotted key a deserialization error is about: the path serde reached, extended
/// with the field an "unknown field" or "missing field" message names.
fn dotted_key(path: &str, message: &str) -> String {
    let base = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|marker| message.split_once(marker).and_then(|(_, rest)| rest.split('`').next()));
    match (base, named) {
        ("", Some(leaf)) => leaf.to_owned(),
        (base, Some(leaf)) if base.rsplit('.').next() != Some(leaf) => format!("{base}.{leaf}"),
        (base, _) => base.to_owned(),
    }
}

/// A TOML syntax error as `line L, column C: message`. The offending line itself is left out:
/// it may hold a secret (a cookie, a key, a password).
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(span) = error.span() else {
        return message.to_owned();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
