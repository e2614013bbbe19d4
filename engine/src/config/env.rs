//! `CLOUDROUTES_*` environment variables: which key each one sets and how its text is parsed.

use toml::{Table, Value};

use crate::error::ConfigError;

/// How an environment value is turned into a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A decimal integer.
    Integer,
    /// Text, taken as is (addresses and paths are parsed when the config is deserialized).
    Text,
    /// Comma-separated text; blanks around items are trimmed, empty items skipped.
    List,
    /// `true` or `false`.
    Bool,
}

/// Every config key, by dotted path, with the kind of value it takes. A test checks it against
/// the structs, so a new field cannot be forgotten here.
pub(crate) const KEYS: &[(&str, Kind)] = &[
    ("version", Kind::Integer),
    ("node.id", Kind::Text),
    ("node.zone", Kind::Text),
    ("node.data_dir", Kind::Text),
    ("store.url", Kind::Text),
    ("store.cache_mb", Kind::Integer),
    ("engine.check_concurrency", Kind::Integer),
    ("engine.router_shards", Kind::Integer),
    ("engine.reaction_concurrency", Kind::Integer),
    ("engine.reaction_timeout_ms", Kind::Integer),
    ("engine.state_flush_ms", Kind::Integer),
    ("engine.history_max_events", Kind::Integer),
    ("engine.restart_backoff_initial_ms", Kind::Integer),
    ("engine.restart_backoff_max_ms", Kind::Integer),
    ("engine.destructive_budget", Kind::Integer),
    ("engine.destructive_window_secs", Kind::Integer),
    ("engine.brake_failed_percent", Kind::Integer),
    ("engine.brake_min_monitors", Kind::Integer),
    ("http.addr", Kind::Text),
    ("http.body_limit_bytes", Kind::Integer),
    ("http.public_url", Kind::Text),
    ("cluster.addr", Kind::Text),
    ("cluster.seeds", Kind::List),
    ("cluster.cookie", Kind::Text),
    ("cluster.cookie_file", Kind::Text),
    ("cluster.partitions", Kind::Integer),
    ("cluster.lease_ms", Kind::Integer),
    ("cluster.renew_ms", Kind::Integer),
    ("cluster.fence_ms", Kind::Integer),
    ("cluster.heartbeat_ttl_ms", Kind::Integer),
    ("cluster.heartbeat_ms", Kind::Integer),
    ("cluster.reconcile_ms", Kind::Integer),
    ("cluster.quarantine_ms", Kind::Integer),
    ("cluster.redis_timeout_ms", Kind::Integer),
    ("cluster.tls_cert", Kind::Text),
    ("cluster.tls_key", Kind::Text),
    ("cluster.tls_ca", Kind::Text),
    ("cluster.max_frame_bytes", Kind::Integer),
    ("checks.exec.enabled", Kind::Bool),
    ("checks.exec.allow", Kind::List),
    ("checks.exec.max_timeout_ms", Kind::Integer),
    ("checks.exec.user", Kind::Text),
    ("smtp.host", Kind::Text),
    ("smtp.port", Kind::Integer),
    ("smtp.security", Kind::Text),
    ("smtp.username", Kind::Text),
    ("smtp.password", Kind::Text),
    ("smtp.from", Kind::Text),
    ("smtp.accept_invalid_certs", Kind::Bool),
    ("limits.api_rate_per_sec", Kind::Integer),
    ("limits.api_burst", Kind::Integer),
    ("limits.intake_rate_per_sec", Kind::Integer),
    ("limits.intake_burst", Kind::Integer),
    ("limits.intake_addr_rate_per_sec", Kind::Integer),
    ("limits.intake_addr_burst", Kind::Integer),
    ("limits.max_tracked_clients", Kind::Integer),
    ("limits.token_cache_ms", Kind::Integer),
    ("limits.audit_max_entries", Kind::Integer),
    ("limits.header_timeout_ms", Kind::Integer),
    ("limits.request_timeout_ms", Kind::Integer),
    ("limits.denied_audit_window_ms", Kind::Integer),
    ("secrets.key", Kind::Text),
    ("secrets.key_file", Kind::Text),
    ("egress.allow", Kind::List),
    ("egress.deny", Kind::List),
    ("egress.allow_node_ports", Kind::Bool),
];

/// Short names fixed by API.md ("Starting a node"), on top of the derived ones.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("CLOUDROUTES_DATA_DIR", "node.data_dir"),
    ("CLOUDROUTES_STORE", "store.url"),
    ("CLOUDROUTES_SEEDS", "cluster.seeds"),
    ("CLOUDROUTES_COOKIE", "cluster.cookie"),
];

/// `CLOUDROUTES_*` variables that are not config keys (read by the CLI or the HTTP layer).
pub(crate) const NOT_CONFIG: &[&str] = &[
    "CLOUDROUTES_CONFIG",
    "CLOUDROUTES_ADMIN_TOKEN",
    "CLOUDROUTES_URL",
    "CLOUDROUTES_TOKEN",
    "CLOUDROUTES_LOG",
];

const PREFIX: &str = "CLOUDROUTES_";

/// Returns the derived variable name of a dotted key: `engine.check_concurrency` →
/// `CLOUDROUTES_ENGINE_CHECK_CONCURRENCY`.
pub(crate) fn variable_name(key: &str) -> String {
    format!("{PREFIX}{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// Returns the dotted key and kind a variable sets, if it is a config variable.
fn key_of(variable: &str) -> Option<(&'static str, Kind)> {
    let by_alias = ALIASES.iter().find(|(alias, _)| *alias == variable).map(|(_, key)| *key);
    KEYS.iter().find(|(key, _)| by_alias == Some(*key) || variable_name(key) == variable).copied()
}

/// One environment override, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Override {
    /// The variable it came from.
    pub variable: String,
    /// The dotted key it sets.
    pub key: &'static str,
    /// The parsed value.
    pub value: Value,
}

fn env_error(variable: &str, message: String) -> ConfigError {
    ConfigError::Parse { origin: format!(" from environment variable {variable}"), message }
}

/// Parses `text` as a value of `kind`.
fn parse_value(variable: &str, key: &str, kind: Kind, text: &str) -> Result<Value, ConfigError> {
    match kind {
        Kind::Integer => {
            text.trim().parse::<i64>().map(Value::Integer).map_err(|_| {
                env_error(variable, format!("`{key}` expects an integer, got `{text}`"))
            })
        }
        Kind::Bool => match text.trim() {
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            _ => Err(env_error(variable, format!("`{key}` expects true or false, got `{text}`"))),
        },
        Kind::Text => Ok(Value::String(text.to_owned())),
        Kind::List => Ok(Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        )),
    }
}

/// Collects the overrides from `env`, in key order.
///
/// Variables without the `CLOUDROUTES_` prefix are ignored, and so are the prefixed names in
/// [`NOT_CONFIG`]. An empty value leaves a scalar key alone (so `FOO=` in a compose file does
/// not override the file) and sets a list key to the empty list.
///
/// # Errors
/// Names the variable when it is not a config key, when its value does not parse, or when an
/// alias and the derived name both set one key to different values.
pub(crate) fn overrides(env: &[(String, String)]) -> Result<Vec<Override>, ConfigError> {
    let mut found: Vec<Override> = Vec::new();
    for (variable, text) in env {
        if !variable.starts_with(PREFIX) || NOT_CONFIG.contains(&variable.as_str()) {
            continue;
        }
        let Some((key, kind)) = key_of(variable) else {
            let message = "not a config variable; each key of cluster.toml has one, named \
                           CLOUDROUTES_ + its dotted path in capitals with `.` as `_`";
            return Err(env_error(variable, message.to_owned()));
        };
        if text.trim().is_empty() && kind != Kind::List {
            continue;
        }
        let value = parse_value(variable, key, kind, text)?;
        if let Some(earlier) = found.iter().find(|earlier| earlier.key == key) {
            if earlier.value != value {
                let message = format!(
                    "`{variable}` and `{}` both set `{key}` to different values; set one",
                    earlier.variable
                );
                return Err(env_error(variable, message));
            }
            continue;
        }
        found.push(Override { variable: variable.clone(), key, value });
    }
    found.sort_by_key(|found| KEYS.iter().position(|(key, _)| *key == found.key));
    Ok(found)
}

/// Inserts `found` into `table`, creating sections as needed.
///
/// # Errors
/// Names the variable when the file made one of the key's sections something other than a table.
pub(crate) fn apply(table: &mut Table, found: &Override) -> Result<(), ConfigError> {
    let mut section = table;
    let mut parts = found.key.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            section.insert(part.to_owned(), found.value.clone());
            return Ok(());
        }
        let entry = section.entry(part.to_owned()).or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(inner) = entry else {
            let message =
                format!("cannot set `{}`: `{part}` in the file is not a table", found.key);
            return Err(env_error(&found.variable, message));
        };
        section = inner;
    }
    Ok(())
}
