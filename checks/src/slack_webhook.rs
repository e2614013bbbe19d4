//! `slack-webhook`: results from a Slack slash command (for example `/cloudroutes false db
//! is down`). Slack posts a form (`token`, `team_domain`, `user_name`, `command`, `text`, …);
//! the form's `token` must equal the monitor's verification token (compared in constant time).
//! As in the original, text containing `false` (or `fail`) fails the monitor, `status` only
//! asks, and anything else heals it.

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::intake::{clip, form_body};
use crate::{Check, CheckContext, CheckType, ConfigError, Intake, IntakeError, IntakeRequest};

/// Config of a `slack-webhook` monitor.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The slash command's verification token from the Slack app settings (write-only).
    #[schemars(length(min = 1, max = 256), extend("writeOnly" = true))]
    pub token: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").field("token", &"***").finish()
    }
}

impl CheckType for Config {
    const NAME: &'static str = "slack-webhook";
    const DESCRIPTION: &'static str =
        "results from a Slack slash command: text with `false` fails, `status` asks, else heals";
    const PASSIVE: bool = true;
    const SECRET_FIELDS: &'static [&'static str] = &["token"];

    fn validate(&self) -> Result<(), ConfigError> {
        if self.token.trim().is_empty() {
            return Err(ConfigError::invalid("token", "must not be empty"));
        }
        if self.token.len() > 256 {
            return Err(ConfigError::invalid("token", "must be at most 256 bytes"));
        }
        Ok(())
    }

    fn build(&self, _context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(None)
    }

    fn intake(&self, request: &IntakeRequest<'_>) -> Option<Result<Intake, IntakeError>> {
        Some(parse(self, request))
    }
}

/// The slash command form fields we read; Slack sends more, which are ignored.
#[derive(Debug, Deserialize)]
struct Command {
    token: String,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    text: String,
}

fn parse(config: &Config, request: &IntakeRequest<'_>) -> Result<Intake, IntakeError> {
    let command: Command = form_body(request)?;
    if !bool::from(command.token.as_bytes().ct_eq(config.token.as_bytes())) {
        return Err(IntakeError::Denied("the slash command's token does not match".into()));
    }
    let text = command.text.trim();
    let lower = text.to_lowercase();
    let who = command.user_name.as_deref().unwrap_or("someone");
    let reason = clip(&format!("slack: {who}: {text}"));
    if lower == "status" {
        Ok(Intake::Status)
    } else if lower.contains("false") || lower.contains("fail") {
        Ok(Intake::Result(CheckOutcome::Failed { reason }))
    } else {
        Ok(Intake::Result(CheckOutcome::Healthy { reason }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slash command as Slack's documentation shows it.
    fn command(token: &str, text: &str) -> String {
        serde_urlencoded::to_string([
            ("token", token),
            ("team_id", "T0001"),
            ("team_domain", "example"),
            ("enterprise_id", "E0001"),
            ("channel_id", "C2147483705"),
            ("channel_name", "ops"),
            ("user_id", "U2147483697"),
            ("user_name", "steve"),
            ("command", "/cloudroutes"),
            ("text", text),
            ("response_url", "https://hooks.slack.com/commands/1234/5678"),
            ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
            ("api_app_id", "A123456"),
        ])
        .unwrap()
    }

    fn intake(body: &str) -> Result<Intake, IntakeError> {
        let config = Config { token: "gIkuvaNzQIHg97ATvDxqgjtO".into() };
        let content_type = Some("application/x-www-form-urlencoded");
        parse(&config, &IntakeRequest { action: None, content_type, body: body.as_bytes() })
    }

    #[test]
    fn text_decides_the_result() {
        let token = "gIkuvaNzQIHg97ATvDxqgjtO";
        let failed = intake(&command(token, "False db-1 is down")).unwrap();
        let reason = "slack: steve: False db-1 is down".to_owned();
        assert_eq!(failed, Intake::Result(CheckOutcome::Failed { reason }));
        let healed = intake(&command(token, "true")).unwrap();
        assert!(matches!(healed, Intake::Result(CheckOutcome::Healthy { .. })));
        assert_eq!(intake(&command(token, " status ")).unwrap(), Intake::Status);
    }

    #[test]
    fn a_wrong_token_is_denied_and_a_missing_one_named() {
        let denied = intake(&command("not-the-token", "false")).unwrap_err();
        assert!(matches!(denied, IntakeError::Denied(_)), "{denied:?}");
        let IntakeError::Invalid(error) = intake("text=false").unwrap_err() else {
            panic!("a form without a token is malformed");
        };
        assert_eq!(error.field, "token");
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config = Config { token: "gIkuvaNzQIHg97ATvDxqgjtO".into() };
        assert!(!format!("{config:?}").contains("gIku"));
    }
}
