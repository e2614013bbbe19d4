//! `webhook`: a passive monitor whose results are posted to its webhook URL, in the original
//! API v1: `{"action": "healthy" | "failed" | "status", "reason": "…"}` (`true` and `false` are
//! accepted as the original did). The action may instead be the last path segment
//! (`…/{key}/failed`), as the original's `/api/{type}/{id}/{key}/{action}` URLs put it; the
//! body is then optional.

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::intake::{clip, json_body, unknown_action};
use crate::{Check, CheckContext, CheckType, ConfigError, Intake, IntakeError, IntakeRequest};

/// Config of a `webhook` monitor: it has no fields of its own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl CheckType for Config {
    const NAME: &'static str = "webhook";
    const DESCRIPTION: &'static str =
        "results are posted to the monitor's webhook URL (healthy, failed, status)";
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

/// The generic body. `check_key` is what the original's clients send along; the key in the URL
/// is what authenticates, so it is accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    check_key: Option<String>,
}

fn parse(request: &IntakeRequest<'_>) -> Result<Intake, ConfigError> {
    let body = if request.body.iter().all(u8::is_ascii_whitespace) && request.action.is_some() {
        Body { action: None, reason: None, check_key: None }
    } else {
        json_body::<Body>(request)?
    };
    let action = match (request.action, body.action.as_deref()) {
        (Some(action), _) | (None, Some(action)) => action,
        (None, None) => {
            return Err(ConfigError::invalid("action", "missing field `action`"));
        }
    };
    let reason = body.reason.as_deref().map(clip).unwrap_or_else(|| format!("webhook: {action}"));
    match action {
        "healthy" | "true" => Ok(Intake::Result(CheckOutcome::Healthy { reason })),
        "failed" | "false" => Ok(Intake::Result(CheckOutcome::Failed { reason })),
        "status" => Ok(Intake::Status),
        other => Err(unknown_action(other, "healthy, failed or status")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intake(action: Option<&str>, body: &str) -> Result<Intake, ConfigError> {
        let request =
            IntakeRequest { action, content_type: None, body: body.as_bytes(), headers: None };
        parse(&request)
    }

    #[test]
    fn the_original_actions_map_to_results() {
        let healthy = intake(None, r#"{"action": "healthy"}"#).unwrap();
        let reason = "webhook: healthy".to_owned();
        assert_eq!(healthy, Intake::Result(CheckOutcome::Healthy { reason }));
        let failed = intake(None, r#"{"action": "false", "reason": "disk full"}"#).unwrap();
        assert_eq!(failed, Intake::Result(CheckOutcome::Failed { reason: "disk full".into() }));
        assert_eq!(intake(None, r#"{"action": "status"}"#).unwrap(), Intake::Status);
        let with_key = intake(None, r#"{"check_key": "k", "action": "true"}"#).unwrap();
        assert!(matches!(with_key, Intake::Result(CheckOutcome::Healthy { .. })));
    }

    #[test]
    fn the_action_may_come_from_the_path() {
        let failed = intake(Some("failed"), "").unwrap();
        assert!(matches!(failed, Intake::Result(CheckOutcome::Failed { .. })));
        let with_reason = intake(Some("healthy"), r#"{"reason": "back"}"#).unwrap();
        assert_eq!(with_reason, Intake::Result(CheckOutcome::Healthy { reason: "back".into() }));
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        assert_eq!(intake(None, r#"{"action": "reboot"}"#).unwrap_err().field, "action");
        assert_eq!(intake(Some("reboot"), "").unwrap_err().field, "action");
        assert_eq!(intake(None, "{}").unwrap_err().field, "action");
        assert_eq!(intake(None, "not json").unwrap_err().field, "body");
        assert_eq!(intake(None, r#"{"action": "true", "x": 1}"#).unwrap_err().field, "x");
    }
}
