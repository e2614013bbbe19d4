//! Errors of the reactions crate.

/// An invalid reaction configuration; `field` names the offending field inside `action`.
pub use cloudroutes_engine::plugin::PluginConfigError as ConfigError;

/// Deserializes a reaction config from JSON, naming the offending field in the error.
///
/// # Errors
/// Returns a [`ConfigError`] whose `field` is the field serde stopped at (`timeout_ms`,
/// `headers.X-Token`), or the unknown field itself (`bogus`).
pub fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ConfigError> {
    cloudroutes_engine::plugin::from_json(value).map_err(name_unknown_field_once)
}

/// Collapses `bogus.bogus` to `bogus`: the engine's parser appends the unknown field's name to a
/// path that already ends with it. Harmless once the engine stops doing so.
fn name_unknown_field_once(mut error: ConfigError) -> ConfigError {
    let unknown = error
        .message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    if let Some(unknown) = unknown {
        let doubled = format!("{unknown}.{unknown}");
        if error.field == doubled || error.field.ends_with(&format!(".{doubled}")) {
            error.field.truncate(error.field.len() - unknown.len() - 1);
        }
    }
    error
}

/// A reaction run that did not work.
#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// The request never got an answer (connect refused, reset, DNS, TLS).
    #[error("{kind}: request failed: {message}")]
    Transport {
        /// Reaction type.
        kind: &'static str,
        /// What the client said.
        message: String,
    },
    /// No answer within the reaction's timeout.
    #[error("{kind}: no answer within {timeout_ms} ms")]
    Timeout {
        /// Reaction type.
        kind: &'static str,
        /// The timeout that ran out.
        timeout_ms: u64,
    },
    /// The target answered with an unexpected status.
    #[error("{kind}: target answered HTTP {status} {body}")]
    Rejected {
        /// Reaction type.
        kind: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
}

impl ReactionError {
    /// Returns whether trying again may help: transport failures, timeouts, HTTP 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Rejected { status, .. } => *status == 429 || *status >= 500,
        }
    }
}
