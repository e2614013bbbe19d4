//! Webhook intake: what a sender posted, parsed by the monitor's type into what the node does
//! with it.
//!
//! Parsing is pure (bytes in, [`Intake`] out) so every sender's format is tested, and fuzzed,
//! without a server. Errors name the offending part of the payload by its path in the payload (`alerts[2].status`), `body` for the whole of it, or `action`.

use cloudroutes_engine::CheckOutcome;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::ConfigError;

/// Longest reason taken from a payload; longer ones are cut with `…`.
pub const MAX_REASON_CHARS: usize = 500;

/// One webhook request as the HTTP layer received it.
#[derive(Debug, Clone, Copy)]
pub struct IntakeRequest<'a> {
    /// The path segment after the key, if any (`…/{key}/failed`): the original API's action.
    pub action: Option<&'a str>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
    /// The request's headers; `None` where the caller has none (tests of payload formats).
    pub headers: Option<&'a reqwest::header::HeaderMap>,
}

impl<'a> IntakeRequest<'a> {
    /// Returns header `name`'s value, when present and text.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers?.get(name)?.to_str().ok()
    }
}

/// What a webhook request asks of the monitor.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// A result to fold into the monitor's state.
    Result(CheckOutcome),
    /// Answer with the monitor's status; change nothing.
    Status,
    /// A notification that carries no result (for example Datadog's `Warn`); the reason says
    /// why it was not recorded.
    Ignore(String),
    /// Hand this to the monitor's own check on its owner node (heartbeat pings, alerts).
    Deliver(Delivery),
}

/// A delivery for a check that keeps its own memory (the owner node's monitor actor holds it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Delivery {
    /// The watched job finished well (`heartbeat`).
    Ping {
        /// What the job sent along, cut to [`MAX_REASON_CHARS`].
        note: Option<String>,
    },
    /// The watched job started (`heartbeat`).
    Start,
    /// The watched job reported a failure (`heartbeat`).
    Fail {
        /// What the job sent along, cut to [`MAX_REASON_CHARS`].
        note: Option<String>,
    },
    /// Alert updates, each keyed (`alertmanager-webhook`, `grafana-webhook`).
    Alerts(Vec<AlertUpdate>),
}

/// One alert's status as a sender reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertUpdate {
    /// The key that identifies the alert in the monitor (fingerprint or chosen label values).
    pub key: String,
    /// True while the alert fires; false once resolved.
    pub firing: bool,
    /// A short description: alert name and summary.
    pub summary: String,
}

/// Why a webhook request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The payload is malformed; the field names the part, as [`json_body`] does.
    #[error("{0}")]
    Invalid(ConfigError),
    /// The payload's own credential (for example Slack's verification token) does not match.
    #[error("{0}")]
    Denied(String),
}

impl From<ConfigError> for IntakeError {
    fn from(error: ConfigError) -> Self {
        Self::Invalid(error)
    }
}

/// Returns the sender's payload as JSON: the body itself, or, for a form, its `payload`
/// field (as Papertrail and Logentries post it).
///
/// # Errors
/// Neither form holds JSON.
pub fn payload_json(request: &IntakeRequest<'_>) -> Result<serde_json::Value, ConfigError> {
    if !is_form(request) {
        return json_body(request);
    }
    #[derive(Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = form_body(request)?;
    serde_json::from_str(&form.payload)
        .map_err(|error| ConfigError::invalid("payload", format!("not valid json: {error}")))
}

/// Returns the body parsed as JSON into `T`, naming the offending field by its path in the
/// body (`alerts[2].status`), or `body` when the body is not JSON at all.
///
/// # Errors
/// The body is not JSON, or does not have `T`'s shape.
pub fn json_body<T: DeserializeOwned>(request: &IntakeRequest<'_>) -> Result<T, ConfigError> {
    let value: serde_json::Value = serde_json::from_slice(request.body)
        .map_err(|error| ConfigError::invalid("body", format!("not valid json: {error}")))?;
    cloudroutes_engine::plugin::from_json(value).map_err(|error| ConfigError {
        field: if error.field.is_empty() { "body".into() } else { error.field },
        message: error.message,
    })
}

/// Returns the body parsed as an HTML form (`application/x-www-form-urlencoded`) into `T`.
///
/// # Errors
/// The body is not a form, or lacks a field `T` needs.
pub fn form_body<T: DeserializeOwned>(request: &IntakeRequest<'_>) -> Result<T, ConfigError> {
    serde_urlencoded::from_bytes(request.body).map_err(|error| {
        let message = error.to_string();
        let field = message
            .split_once("field `")
            .and_then(|(_, rest)| rest.split('`').next())
            .map_or_else(|| "body".to_owned(), str::to_owned);
        ConfigError::invalid(field, format!("not a valid form: {}", lowercase_first(&message)))
    })
}

/// Returns whether the request says it carries a form.
pub fn is_form(request: &IntakeRequest<'_>) -> bool {
    request
        .content_type
        .is_some_and(|value| value.trim_start().starts_with("application/x-www-form-urlencoded"))
}

/// Cuts `text` to [`MAX_REASON_CHARS`] characters (with `…`), one line, trimmed.
pub fn clip(text: &str) -> String {
    let flat: String = text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= MAX_REASON_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(MAX_REASON_CHARS).collect();
    cut.push('…');
    cut
}

/// Returns `alert` (a failed result) as the URL's action says: `failed` (or none) keeps it,
/// `healthy` turns it into a healthy result with the same reason.
///
/// # Errors
/// Any other action.
pub fn result_for_action(action: Option<&str>, alert: CheckOutcome) -> Result<Intake, ConfigError> {
    match action {
        None | Some("failed" | "false") => Ok(Intake::Result(alert)),
        Some("healthy" | "true") => {
            Ok(Intake::Result(CheckOutcome::Healthy { reason: alert.reason().to_owned() }))
        }
        Some(other) => Err(unknown_action(other, "failed or healthy")),
    }
}

/// Returns the error that an action outside `allowed` gets.
pub fn unknown_action(action: &str, allowed: &str) -> ConfigError {
    ConfigError::invalid("action", format!("`{}` is not an action; use {allowed}", clip(action)))
}

fn lowercase_first(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &[u8]) -> IntakeRequest<'_> {
        IntakeRequest { action: None, content_type: None, body, headers: None }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        action: String,
    }

    #[test]
    fn json_errors_name_the_body_field() {
        let error = json_body::<Sample>(&request(b"{")).unwrap_err();
        assert_eq!(error.field, "body");
        assert!(error.message.starts_with("not valid json"), "{error}");
        let error = json_body::<Sample>(&request(br#"{"action": 1}"#)).unwrap_err();
        assert_eq!(error.field, "action");
        let error = json_body::<Sample>(&request(br#"{"action": "x", "extra": 1}"#)).unwrap_err();
        assert_eq!(error.field, "extra");
    }

    #[test]
    fn clip_cuts_long_text_and_flattens_lines() {
        assert_eq!(clip("  a\nb "), "a b");
        let long = "x".repeat(MAX_REASON_CHARS + 10);
        let cut = clip(&long);
        assert_eq!(cut.chars().count(), MAX_REASON_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn form_errors_name_the_missing_field() {
        #[derive(Debug, Deserialize)]
        struct Form {
            #[allow(dead_code)]
            payload: String,
        }
        let error = form_body::<Form>(&request(b"other=1")).unwrap_err();
        assert_eq!(error.field, "payload", "{error}");
    }
}
