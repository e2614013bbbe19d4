//! Plugin configuration helpers shared by checks and reactions: the error type, path-aware
//! JSON parsing, and the JSON Schema the type catalogs serve.

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

/// The longest message [`from_json`] returns, in characters: serde echoes the offending value,
/// and a caller can send a huge one.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Cuts `message` to [`MAX_MESSAGE_CHARS`], marking the cut with `…`.
fn clip_message(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message,
        Some((end, _)) => format!("{}…", &message[..end]),
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
        PluginConfigError { field, message: clip_message(message) }
    })
}

/// Picks the most precise field name: the path serde reached, or the field an "unknown field"
/// or "missing field" message names.
fn field_of(path: &str, message: &str) -> String {
    let named = |marker: &str| {
        message.split_once(marker).and_then(|(_, rest)| rest.split('`').next()).map(str::to_owned)
    };
    let base = if path == "." { String::new() } else { path.to_owned() };
    let leaf = named("unknown field `").or_else(|| named("missing field `"));
    // A member with an empty name (`{"": 1}`) is still named: `""`, as JSON writes it.
    let (base, leaf) = match leaf {
        Some(leaf) if leaf.is_empty() => {
            (base.strip_suffix('.').unwrap_or(&base).to_owned(), Some("\"\"".to_owned()))
        }
        leaf => (base, leaf),
    };
    match (base.is_empty(), leaf) {
        (true, Some(leaf)) => leaf,
        // For an unknown field the path already ends at the field itself.
        (false, Some(leaf)) if base == leaf || base.ends_with(&format!(".{leaf}")) => base,
        (false, Some(leaf)) => format!("{base}.{leaf}"),
        (_, None) => base,
    }
}

/// Returns the JSON Schema of a config type, titled with the type name and always listing
/// `properties` (empty for a type without fields), as UIs build their forms from it.
pub fn config_schema<T: schemars::JsonSchema>(name: &str) -> serde_json::Value {
    let mut schema = schemars::schema_for!(T).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".into(), name.into());
        object.entry("properties").or_insert_with(|| serde_json::json!({}));
    }
    schema
}

/// Splits a plugin object into its `type` and the remaining fields.
///
/// # Errors
/// `type` is missing or not a string.
pub fn split_type(
    spec: &crate::PluginSpec,
) -> Result<(String, serde_json::Value), PluginConfigError> {
    let mut fields = spec.0.clone();
    match fields.remove("type") {
        Some(serde_json::Value::String(kind)) => Ok((kind, serde_json::Value::Object(fields))),
        Some(_) => Err(PluginConfigError::invalid("type", "must be a string")),
        None => Err(PluginConfigError::invalid("type", "missing field `type`")),
    }
}

/// Refuses a secret field that holds the `"***"` placeholder: there is no stored value to keep
/// (a definition read from the API and written back has had its secrets restored before this).
///
/// # Errors
/// The first such field.
pub fn refuse_placeholders(
    spec: &crate::PluginSpec,
    fields: &[&str],
) -> Result<(), PluginConfigError> {
    match fields.iter().find(|field| spec.0.get(**field).is_some_and(|v| v == REDACTED)) {
        Some(field) => Err(PluginConfigError::invalid(
            *field,
            "`***` is the placeholder for a stored secret, and there is none to keep: give the value",
        )),
        None => Ok(()),
    }
}

/// The placeholder shown instead of a secret value.
pub const REDACTED: &str = "***";

/// Returns `spec` with each of `fields` (or, for an object, each of its values) replaced by
/// `"***"`.
pub fn redact(spec: &crate::PluginSpec, fields: &[&str]) -> crate::PluginSpec {
    let mut out = spec.clone();
    for field in fields {
        match out.0.get_mut(*field) {
            Some(serde_json::Value::Object(map)) => {
                for value in map.values_mut() {
                    *value = REDACTED.into();
                }
            }
            Some(value) if !value.is_null() => *value = REDACTED.into(),
            _ => {}
        }
    }
    out
}

/// Replaces `"***"` placeholders of `fields` in `new` with the values stored in `old` (same
/// type only), so that a definition read from the API can be written back unchanged.
pub fn restore(new: &mut crate::PluginSpec, old: &crate::PluginSpec, fields: &[&str]) {
    if new.kind() != old.kind() {
        return;
    }
    for field in fields {
        let old_value = old.0.get(*field);
        match (new.0.get_mut(*field), old_value) {
            (Some(serde_json::Value::Object(map)), Some(serde_json::Value::Object(old_map))) => {
                for (key, value) in map.iter_mut().filter(|(_, value)| *value == REDACTED) {
                    if let Some(previous) = old_map.get(key) {
                        *value = previous.clone();
                    }
                }
            }
            (Some(value), Some(previous)) if value == REDACTED => *value = previous.clone(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_MESSAGE_CHARS, from_json};

    #[test]
    fn an_echoed_huge_value_is_clipped_in_the_message() {
        let huge = "ü".repeat(5_000);
        let error =
            from_json::<Outer>(serde_json::json!({"name": 1, "inner": huge})).expect_err("bad");
        assert!(error.message.chars().count() <= MAX_MESSAGE_CHARS + 1, "{}", error.message.len());
        assert!(error.message.ends_with('…'), "{}", error.message);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        port: u16,
    }

    fn field(value: serde_json::Value) -> String {
        from_json::<Outer>(value).unwrap_err().field
    }

    #[test]
    fn names_the_offending_field_once() {
        assert_eq!(
            field(serde_json::json!({"name": "a", "inner": {"port": 1}, "bogus": 1})),
            "bogus"
        );
        assert_eq!(
            field(serde_json::json!({"name": "a", "inner": {"port": 1, "x": 1}})),
            "inner.x"
        );
        assert_eq!(field(serde_json::json!({"inner": {"port": 1}})), "name");
        assert_eq!(field(serde_json::json!({"name": "a", "inner": {}})), "inner.port");
        assert_eq!(field(serde_json::json!({"name": "a", "inner": {"port": "x"}})), "inner.port");
    }

    /// Found by the check-config fuzz target: `{"type": "alertmanager-webhook", "": null}`
    /// gave an error with an empty field.
    #[test]
    fn a_member_with_an_empty_name_is_named() {
        assert_eq!(field(serde_json::json!({"name": "a", "inner": {"port": 1}, "": 1})), "\"\"");
        let nested = field(serde_json::json!({"name": "a", "inner": {"port": 1, "": 1}}));
        assert_eq!(nested, "inner.\"\"");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct WithEnum {
        call_on: Mode,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Failed,
    }

    #[test]
    fn names_the_field_of_an_unknown_enum_variant() {
        let error = from_json::<WithEnum>(serde_json::json!({"call_on": "sometimes"})).unwrap_err();
        assert_eq!(error.field, "call_on");
        assert!(error.message.contains("sometimes"), "{}", error.message);
    }
}
