//! `logentries-webhook`: results from a Logentries (Rapid7 InsightOps) alert webhook. The alert
//! arrives as JSON, either as the body or in a form's `payload` field, with `alert.name` and
//! the matching `event`. As in the original, the action may be the URL's last segment
//! (`…/failed`, `…/healthy`); without one an alert means failed.

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::intake::{clip, payload_json, result_for_action};
use crate::{Check, CheckContext, CheckType, ConfigError, Intake, IntakeError, IntakeRequest};

/// Config of a `logentries-webhook` monitor: it has no fields of its own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl CheckType for Config {
    const NAME: &'static str = "logentries-webhook";
    const DESCRIPTION: &'static str =
        "results from Logentries alerts (failed unless the URL ends in /healthy)";
    const PASSIVE: bool = true;

    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    fn build(&self, _context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(None)
    }

    fn intake(&self, request: &IntakeRequest<'_>) -> Option<Result<Intake, IntakeError>> {
        Some(parse(request).map_err(IntakeError::from))
    }
}

#[derive(Debug, Deserialize)]
struct Payload {
    alert: Alert,
    #[serde(default)]
    event: Option<Event>,
}

#[derive(Debug, Deserialize)]
struct Alert {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Event {
    /// The log line.
    #[serde(default)]
    m: Option<String>,
}

fn parse(request: &IntakeRequest<'_>) -> Result<Intake, ConfigError> {
    let payload: Payload = crate::error::from_json(payload_json(request)?)
        .map_err(|e| ConfigError::invalid(format!("payload.{}", e.field), e.message))?;
    let mut reason = format!("logentries alert `{}`", payload.alert.name);
    if let Some(line) = payload.event.and_then(|event| event.m) {
        reason.push_str(&format!(": {line}"));
    }
    result_for_action(request.action, CheckOutcome::Failed { reason: clip(&reason) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload() -> serde_json::Value {
        json!({
            "alert": {"name": "500 errors", "type": "pattern", "id": "a1"},
            "host": {"name": "web-1", "hostname": "web-1.internal"},
            "log": {"name": "nginx access"},
            "event": {"t": 1_763_946_000_000_u64, "m": "GET /cart 500"},
            "matches": [{"t": 1_763_946_000_000_u64, "m": "GET /cart 500"}]
        })
    }

    #[test]
    fn a_json_or_form_alert_fails_the_monitor() {
        let body = payload().to_string();
        let json_request = IntakeRequest {
            action: None,
            content_type: None,
            body: body.as_bytes(),
            headers: None,
        };
        let reason = "logentries alert `500 errors`: GET /cart 500".to_owned();
        assert_eq!(parse(&json_request).unwrap(), Intake::Result(CheckOutcome::Failed { reason }));
        let form = serde_urlencoded::to_string([("payload", body)]).unwrap();
        let form_request = IntakeRequest {
            action: Some("healthy"),
            content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
            body: form.as_bytes(),
            headers: None,
        };
        assert!(matches!(
            parse(&form_request).unwrap(),
            Intake::Result(CheckOutcome::Healthy { .. })
        ));
    }

    #[test]
    fn a_payload_without_an_alert_is_named() {
        let body = json!({"event": {"m": "x"}}).to_string();
        let request = IntakeRequest {
            action: None,
            content_type: None,
            body: body.as_bytes(),
            headers: None,
        };
        assert_eq!(parse(&request).unwrap_err().field, "payload.alert");
    }
}
