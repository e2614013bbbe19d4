//! Plugin configuration errors and path-aware JSON parsing, shared by checks and reactions.

/// An invalid check configuration; `field` names the offending field inside the plugin object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PluginConfigError {
    /// Dotted path of the offending field relative to the plugin object (`url`, `codes[1]`);
    /// `type` when the type itself is unknown.
    pub field: String,
    /// What is wrong, in lowercase, naming the rule.
    pub message: String,
}

impl PluginConfigError {
    /// Returns an error for `field` with `message`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Deserializes a config from JSON, naming the offending field in the error.
///
/// # Errors
/// Returns a [`PluginConfigError`] whose `field` is the path serde stopped at.
pub fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, PluginConfigError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        let field = field_of(&path, &message);
        PluginConfigError { field, message }
    })
}

/// Picks the most precise field name: the path serde reached, or the field an "unknown field"
/// or "missing field" message names, or `type` for an unknown variant.
fn field_of(path: &str, message: &str) -> String {
    let named = |marker: &str| {
        message.split_once(marker).and_then(|(_, rest)| rest.split('`').next()).map(str::to_owned)
    };
    if message.starts_with("unknown variant") || message.contains("missing field `type`") {
        return "type".into();
    }
    let base = if path == "." { String::new() } else { path.to_owned() };
    let leaf = named("unknown field `").or_else(|| named("missing field `"));
    match (base.is_empty(), leaf) {
        (true, Some(leaf)) => leaf,
        (false, Some(leaf)) => format!("{base}.{leaf}"),
        (_, None) => base,
    }
}
