//! `datadog-webhook`: results from Datadog monitor notifications (the Datadog webhook
//! integration). The payload is the user's template; its default carries `title`
//! (`$EVENT_TITLE`, e.g. `[Triggered] CPU high on web-1`), and templates may add
//! `alert_transition` (`$ALERT_TRANSITION`). As in the original: `Triggered` and `No Data` mean
//! failed, `Recovered` means healthy. Other notifications (`Warn`, `Renotify`) are ignored.

use schemars::JsonSchema;
use serde::Deserialize;

use cloudroutes_engine::CheckOutcome;

use crate::intake::{clip, json_body};
use crate::{Check, CheckContext, CheckType, ConfigError, Intake, IntakeError, IntakeRequest};

/// Config of a `datadog-webhook` monitor: it has no fields of its own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl CheckType for Config {
    const NAME: &'static str = "datadog-webhook";
    const DESCRIPTION: &'static str =
        "results from Datadog notifications: Triggered or No Data is failed, Recovered healthy";
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

/// The fields we read; the rest of the user's template is accepted and ignored.
#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    alert_transition: Option<String>,
}

fn parse(request: &IntakeRequest<'_>) -> Result<Intake, ConfigError> {
    let payload: Payload = json_body(request)?;
    let text = match (&payload.alert_transition, &payload.title) {
        (Some(transition), _) => transition.as_str(),
        (None, Some(title)) => title.as_str(),
        (None, None) => {
            return Err(ConfigError::invalid(
                "title",
                "missing field `title` (the template must send $EVENT_TITLE or $ALERT_TRANSITION)",
            ));
        }
    };
    let reason = clip(payload.title.as_deref().unwrap_or(text));
    let lower = text.to_lowercase();
    if lower.contains("recovered") {
        Ok(Intake::Result(CheckOutcome::Healthy { reason }))
    } else if lower.contains("triggered") || lower.contains("no data") {
        Ok(Intake::Result(CheckOutcome::Failed { reason }))
    } else {
        Ok(Intake::Ignore(format!("datadog notification carries no status: {reason}")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn intake(body: serde_json::Value) -> Result<Intake, ConfigError> {
        let body = body.to_string();
        let request = IntakeRequest {
            action: None,
            content_type: Some("application/json"),
            body: body.as_bytes(),
            headers: None,
        };
        parse(&request)
    }

    /// Datadog's default webhook payload, as its documentation shows it, filled in.
    fn default_payload(title: &str) -> serde_json::Value {
        json!({
            "body": "%%%\nCPU load is 97% on host:web-1\n%%%",
            "last_updated": "1700000000000",
            "event_type": "query_alert_monitor",
            "title": title,
            "date": "1700000000000",
            "org": {"id": "123456", "name": "Shop"},
            "id": "7088329938273598251"
        })
    }

    #[test]
    fn triggered_and_no_data_fail_and_recovered_heals() {
        let title = "[Triggered] CPU load is high on host:web-1";
        let reason = title.to_owned();
        assert_eq!(
            intake(default_payload(title)).unwrap(),
            Intake::Result(CheckOutcome::Failed { reason })
        );
        let no_data = intake(default_payload("[No Data] Heartbeat on web-1")).unwrap();
        assert!(matches!(no_data, Intake::Result(CheckOutcome::Failed { .. })));
        let re = intake(default_payload("[P1] [Re-Triggered] CPU load is high")).unwrap();
        assert!(matches!(re, Intake::Result(CheckOutcome::Failed { .. })));
        let recovered = intake(default_payload("[Recovered] CPU load is high on web-1")).unwrap();
        assert!(matches!(recovered, Intake::Result(CheckOutcome::Healthy { .. })));
    }

    #[test]
    fn the_alert_transition_variable_wins_over_the_title() {
        let mut payload = default_payload("CPU load on web-1");
        payload["alert_transition"] = json!("Recovered");
        let outcome = intake(payload).unwrap();
        let reason = "CPU load on web-1".to_owned();
        assert_eq!(outcome, Intake::Result(CheckOutcome::Healthy { reason }));
    }

    #[test]
    fn warnings_are_ignored_and_bad_payloads_named() {
        assert!(matches!(intake(default_payload("[Warn] CPU at 80%")).unwrap(), Intake::Ignore(_)));
        let error = intake(json!({"body": "no title"})).unwrap_err();
        assert_eq!(error.field, "title");
        assert_eq!(intake(json!({"title": 5})).unwrap_err().field, "title");
    }
}
