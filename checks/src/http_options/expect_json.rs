//! `expect_json`: an assertion on a JSON response body, shared by the HTTP check types.

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{BodyPrefix, MAX_BODY_BYTES, truncate};
use crate::ConfigError;

/// Longest `expect_json.path`.
const MAX_POINTER_BYTES: usize = 1024;
/// How many characters of a JSON value a reason quotes.
const QUOTED_JSON_CHARS: usize = 80;

/// An assertion on a JSON response body: the value at `path` must equal `value`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectJson {
    /// JSON Pointer (RFC 6901) to the value, e.g. `/data/status` or `/items/0/id`; `""` is the
    /// whole body. Write `~1` for a `/` and `~0` for a `~` inside a key.
    #[schemars(length(max = 1024))]
    pub path: String,
    /// The JSON value expected there: any JSON (string, number, boolean, null, array,
    /// object). Numbers compare by value, so `1` equals `1.0`.
    pub value: serde_json::Value,
}

impl ExpectJson {
    /// Checks `path` as an RFC 6901 JSON Pointer.
    ///
    /// # Errors
    /// Returns an error naming `expect_json.path`.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| ConfigError::invalid("expect_json.path", message);
        if self.path.len() > MAX_POINTER_BYTES {
            return Err(invalid(&format!("must be at most {MAX_POINTER_BYTES} bytes")));
        }
        if !self.path.is_empty() && !self.path.starts_with('/') {
            return Err(invalid(
                "must be a json pointer starting with `/` (e.g. `/data/status`), or empty for \
                 the whole body",
            ));
        }
        let mut rest = self.path.as_str();
        while let Some(at) = rest.find('~') {
            rest = &rest[at + 1..];
            if !rest.starts_with(['0', '1']) {
                return Err(invalid("`~` must be followed by 0 or 1 (`~0` is `~`, `~1` is `/`)"));
            }
        }
        Ok(())
    }

    /// Judges a body: `Ok` with the healthy part of the reason when the value at `path` equals
    /// `value`, otherwise the failed outcome naming path, expected and actual.
    pub(crate) fn judge(&self, body: &BodyPrefix) -> Result<String, CheckOutcome> {
        let failed = |reason: String| CheckOutcome::Failed { reason };
        if body.reached_limit {
            return Err(failed(format!(
                "response body is larger than {MAX_BODY_BYTES} bytes, not parsed as json"
            )));
        }
        let document: serde_json::Value = serde_json::from_slice(&body.bytes)
            .map_err(|error| failed(format!("response body is not json: {error}")))?;
        let path = self.quoted_path();
        let expected = quote_json(&self.value);
        match document.pointer(&self.path) {
            None => Err(failed(format!("json {path} is missing, expected {expected}"))),
            Some(actual) if json_equal(actual, &self.value) => {
                Ok(format!("json {path} is {expected}"))
            }
            Some(actual) => {
                Err(failed(format!("json {path} is {}, expected {expected}", quote_json(actual))))
            }
        }
    }

    /// Returns how reasons name the path: `at /data/status`, or `body` for the whole document.
    fn quoted_path(&self) -> String {
        if self.path.is_empty() {
            return "body".to_owned();
        }
        format!("at {}", truncate(&self.path, QUOTED_JSON_CHARS))
    }
}

/// Returns whether two JSON values are equal, comparing numbers by value (`1` equals `1.0`).
fn json_equal(left: &serde_json::Value, right: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => {
            l == r || ((l.is_f64() || r.is_f64()) && l.as_f64() == r.as_f64())
        }
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(l, r)| json_equal(l, r))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter().all(|(key, l)| r.get(key).is_some_and(|r| json_equal(l, r)))
        }
        _ => left == right,
    }
}

/// Returns a JSON value as compact JSON, cut to [`QUOTED_JSON_CHARS`] characters.
fn quote_json(value: &serde_json::Value) -> String {
    truncate(&value.to_string(), QUOTED_JSON_CHARS)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_pointers_follow_rfc_6901() {
        let validate = |path: &str| ExpectJson { path: path.into(), value: json!(1) }.validate();
        for good in ["", "/", "/data/status", "/items/0", "/a~0b~1c", "/~01"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["data", "#/data", "/a~", "/a~2", "/~/"] {
            let error = validate(bad).unwrap_err();
            assert_eq!(error.field, "expect_json.path", "{bad}");
            assert_eq!(error.message, error.message.to_lowercase(), "{bad}");
        }
        assert!(validate(&format!("/{}", "a".repeat(MAX_POINTER_BYTES))).is_err());
    }

    #[test]
    fn json_values_compare_numbers_by_value() {
        assert!(json_equal(&json!(1), &json!(1.0)));
        assert!(json_equal(&json!({"a": [1, {"b": 2.5}]}), &json!({"a": [1.0, {"b": 2.5}]})));
        assert!(!json_equal(&json!(1), &json!(2)));
        assert!(!json_equal(&json!(1), &json!("1")));
        assert!(!json_equal(&json!(u64::MAX), &json!(u64::MAX - 1)));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_equal(&json!([1]), &json!([1, 1])));
        assert!(json_equal(&json!(null), &json!(null)));
    }

    #[test]
    fn the_whole_body_can_be_asserted_with_an_empty_pointer() {
        let expect = ExpectJson { path: String::new(), value: json!(["a"]) };
        let body =
            |text: &str| BodyPrefix { bytes: text.as_bytes().to_vec(), reached_limit: false };
        assert_eq!(expect.judge(&body(r#"["a"]"#)), Ok(r#"json body is ["a"]"#.to_owned()));
        let mismatch = expect.judge(&body("[]")).unwrap_err();
        let reason = r#"json body is [], expected ["a"]"#.to_owned();
        assert_eq!(mismatch, CheckOutcome::Failed { reason });
        let cut = BodyPrefix { bytes: br#"["a"]"#.to_vec(), reached_limit: true };
        let reason =
            format!("response body is larger than {MAX_BODY_BYTES} bytes, not parsed as json");
        assert_eq!(expect.judge(&cut), Err(CheckOutcome::Failed { reason }));
    }
}
