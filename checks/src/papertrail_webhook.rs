//! `papertrail-webhook`: results from a Papertrail saved-search alert. Papertrail posts a form
//! whose `payload` field is JSON (`saved_search`, `events[]`). As in the original, the action
//! may be the URL's last segment (`…/failed`, `…/healthy`); without one an alert means failed,
//! since Papertrail calls only when the search matched.

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::intake::{clip, payload_json, result_for_action};
use crate::{Check, CheckContext, CheckType, ConfigError, Intake, IntakeError, IntakeRequest};

/// Config of a `papertrail-webhook` monitor: it has no fields of its own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl CheckType for Config {
    const NAME: &'static str = "papertrail-webhook";
    const DESCRIPTION: &'static str =
        "results from Papertrail saved-search alerts (failed unless the URL ends in /healthy)";
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
    saved_search: SavedSearch,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
struct SavedSearch {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    source_name: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn parse(request: &IntakeRequest<'_>) -> Result<Intake, ConfigError> {
    let payload: Payload = crate::error::from_json(payload_json(request)?)
        .map_err(|e| ConfigError::invalid(format!("payload.{}", e.field), e.message))?;
    let count = payload.events.len();
    let noun = if count == 1 { "event" } else { "events" };
    let mut reason =
        format!("papertrail search `{}` matched {count} {noun}", payload.saved_search.name);
    if let Some(first) = payload.events.first() {
        let source = first.source_name.as_deref().unwrap_or("?");
        reason.push_str(&format!(": {source}: {}", first.message.as_deref().unwrap_or("")));
    }
    result_for_action(request.action, CheckOutcome::Failed { reason: clip(&reason) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Papertrail's webhook form: `payload=<json>`, as its documentation describes it.
    fn form(payload: &serde_json::Value) -> String {
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    }

    fn payload() -> serde_json::Value {
        json!({
            "events": [{
                "id": 7711561783320576_u64, "received_at": "2026-11-24T01:00:00-08:00",
                "display_received_at": "Nov 24 01:00:00", "source_ip": "208.75.57.121",
                "source_name": "web-1", "source_id": 2, "hostname": "web-1", "program": "nginx",
                "severity": "Error", "facility": "Local0", "message": "upstream timed out"
            }],
            "saved_search": {
                "id": 42, "name": "Errors", "query": "error",
                "html_edit_url": "https://papertrailapp.com/searches/42/edit",
                "html_search_url": "https://papertrailapp.com/searches/42"
            },
            "max_id": "7711582041804800", "min_id": "7711561783320576"
        })
    }

    fn intake(action: Option<&str>, body: &str) -> Result<Intake, ConfigError> {
        let content_type = Some("application/x-www-form-urlencoded");
        parse(&IntakeRequest { action, content_type, body: body.as_bytes(), headers: None })
    }

    #[test]
    fn an_alert_fails_the_monitor_unless_the_url_says_healthy() {
        let body = form(&payload());
        let reason = "papertrail search `Errors` matched 1 event: web-1: upstream timed out";
        let failed = intake(None, &body).unwrap();
        assert_eq!(failed, Intake::Result(CheckOutcome::Failed { reason: reason.into() }));
        assert_eq!(intake(Some("failed"), &body).unwrap(), failed);
        let healthy = intake(Some("healthy"), &body).unwrap();
        assert_eq!(healthy, Intake::Result(CheckOutcome::Healthy { reason: reason.into() }));
    }

    #[test]
    fn malformed_payloads_are_named() {
        assert_eq!(intake(None, "other=1").unwrap_err().field, "payload");
        assert_eq!(intake(None, "payload=%7Bnot").unwrap_err().field, "payload");
        let error = intake(None, &form(&json!({"events": []}))).unwrap_err();
        assert_eq!(error.field, "payload.saved_search");
        assert_eq!(intake(Some("reboot"), &form(&payload())).unwrap_err().field, "action");
    }
}
