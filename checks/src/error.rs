//! Errors of the checks crate.

/// An invalid check configuration; `field` names the offending field inside the `check` object.
pub use cloudroutes_engine::plugin::PluginConfigError as ConfigError;

/// Deserializes a check config from JSON, naming the offending field in the error.
///
/// # Errors
/// Returns a [`ConfigError`] whose `field` is the field serde stopped at (`port`, `codes[1]`),
/// or the unknown field itself (`bogus`).
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
