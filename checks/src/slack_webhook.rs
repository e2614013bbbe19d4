//! `slack-webhook`: results from a Slack slash command (for example `/cloudroutes false db
//! is down`). Slack posts a form (`token`, `team_domain`, `user_name`, `command`, `text`, …);
//! the form's `token` must equal the monitor's verification token (compared in constant time).
//! As in the original, text containing `false` (or `fail`) fails the monitor, `status` only
//! asks, and anything else heals it.
//!
//! With the app's `signing_secret` set, every request must also carry Slack's signature
//! (<https://api.slack.com/authentication/verifying-requests-from-slack>): `X-Slack-Signature`
//! is `v0=` and the hex HMAC-SHA256, keyed with the signing secret, of
//! `v0:{X-Slack-Request-Timestamp}:{raw body}`; a timestamp more than five minutes from now is
//! refused, so a captured request cannot be replayed later.

use cloudroutes_engine::CheckOutcome;
use hmac::{Hmac, KeyInit, Mac};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::intake::{clip, form_body};
use crate::{Check, CheckContext, CheckType, ConfigError, Intake, IntakeError, IntakeRequest};

/// Config of a `slack-webhook` monitor.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The slash command's verification token from the Slack app settings (write-only).
    #[schemars(length(min = 1, max = 256), extend("writeOnly" = true))]
    pub token: String,
    /// The app's signing secret from the Slack app settings (write-only): when set, requests
    /// without a valid, recent Slack signature are refused.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 256), extend("writeOnly" = true))]
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signing_secret = self.signing_secret.as_ref().map(|_| "***");
        f.debug_struct("Config")
            .field("token", &"***")
            .field("signing_secret", &signing_secret)
            .finish()
    }
}

/// How far a request's timestamp may be from now.
const SIGNATURE_MAX_AGE_SECS: i64 = 300;

impl CheckType for Config {
    const NAME: &'static str = "slack-webhook";
    const DESCRIPTION: &'static str =
        "results from a Slack slash command: text with `false` fails, `status` asks, else heals";
    const PASSIVE: bool = true;
    const SECRET_FIELDS: &'static [&'static str] = &["token", "signing_secret"];

    fn validate(&self) -> Result<(), ConfigError> {
        if self.token.trim().is_empty() {
            return Err(ConfigError::invalid("token", "must not be empty"));
        }
        if self.token.len() > 256 {
            return Err(ConfigError::invalid("token", "must be at most 256 bytes"));
        }
        match self.signing_secret.as_deref().map(str::trim) {
            Some("") => Err(ConfigError::invalid("signing_secret", "must not be empty")),
            Some(secret) if secret.len() > 256 => {
                Err(ConfigError::invalid("signing_secret", "must be at most 256 bytes"))
            }
            _ => Ok(()),
        }
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
    if let Some(secret) = &config.signing_secret {
        verify_signature(secret, request, OffsetDateTime::now_utc().unix_timestamp())?;
    }
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

/// Checks Slack's signature of `request` against `secret`, at `now` (Unix seconds).
fn verify_signature(
    secret: &str,
    request: &IntakeRequest<'_>,
    now: i64,
) -> Result<(), IntakeError> {
    let denied = |why: &str| Err(IntakeError::Denied(format!("slack signature: {why}")));
    let (Some(timestamp), Some(signature)) =
        (request.header("x-slack-request-timestamp"), request.header("x-slack-signature"))
    else {
        return denied("X-Slack-Signature and X-Slack-Request-Timestamp are required");
    };
    let Ok(sent) = timestamp.trim().parse::<i64>() else {
        return denied("X-Slack-Request-Timestamp is not a Unix time");
    };
    if (now - sent).abs() > SIGNATURE_MAX_AGE_SECS {
        return denied("the request is more than five minutes old (or from the future)");
    }
    let Some(expected) = signature.strip_prefix("v0=").and_then(hex_bytes) else {
        return denied("X-Slack-Signature is not `v0=` and hex");
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| IntakeError::Denied("slack signature: unusable signing secret".into()))?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(request.body);
    if mac.verify_slice(&expected).is_err() {
        return denied("it does not match the body");
    }
    Ok(())
}

/// Decodes lowercase or uppercase hex.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
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
        let config = Config { token: "gIkuvaNzQIHg97ATvDxqgjtO".into(), signing_secret: None };
        let content_type = Some("application/x-www-form-urlencoded");
        parse(
            &config,
            &IntakeRequest { action: None, content_type, body: body.as_bytes(), headers: None },
        )
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

    /// Slack's worked example of a signed slash command (its "verifying requests" page).
    const DOCS_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOCS_TIMESTAMP: i64 = 1_531_420_618;
    const DOCS_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=\
        testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=\
        roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com\
        %2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=\
        398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOCS_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn signed(timestamp: &str, signature: &str) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-slack-request-timestamp", timestamp.parse().unwrap());
        headers.insert("x-slack-signature", signature.parse().unwrap());
        headers
    }

    fn verify(headers: Option<&reqwest::header::HeaderMap>, body: &str, now: i64) -> String {
        let content_type = Some("application/x-www-form-urlencoded");
        let request = IntakeRequest { action: None, content_type, body: body.as_bytes(), headers };
        match verify_signature(DOCS_SECRET, &request, now) {
            Ok(()) => "ok".into(),
            Err(IntakeError::Denied(why)) => why,
            Err(other) => panic!("a signature is accepted or denied, got {other:?}"),
        }
    }

    #[test]
    fn slacks_own_example_verifies_and_any_change_to_it_is_denied() {
        let headers = signed(&DOCS_TIMESTAMP.to_string(), DOCS_SIGNATURE);
        let now = DOCS_TIMESTAMP + 10;
        assert_eq!(verify(Some(&headers), DOCS_BODY, now), "ok");
        let upper =
            signed(&DOCS_TIMESTAMP.to_string(), &DOCS_SIGNATURE.to_uppercase().replace("V0", "v0"));
        assert_eq!(verify(Some(&upper), DOCS_BODY, now), "ok", "hex in capitals");
        let tampered = DOCS_BODY.replace("text=", "text=false");
        assert!(verify(Some(&headers), &tampered, now).contains("does not match"));
        let other_time = signed(&(DOCS_TIMESTAMP + 1).to_string(), DOCS_SIGNATURE);
        assert!(verify(Some(&other_time), DOCS_BODY, now).contains("does not match"));
        assert!(verify(Some(&headers), DOCS_BODY, DOCS_TIMESTAMP + 301).contains("five minutes"));
        assert!(verify(Some(&headers), DOCS_BODY, DOCS_TIMESTAMP - 301).contains("five minutes"));
        assert!(verify(None, DOCS_BODY, now).contains("are required"));
        let no_prefix = signed(&DOCS_TIMESTAMP.to_string(), &DOCS_SIGNATURE[3..]);
        assert!(verify(Some(&no_prefix), DOCS_BODY, now).contains("`v0=`"));
        let odd = signed(&DOCS_TIMESTAMP.to_string(), &DOCS_SIGNATURE[..DOCS_SIGNATURE.len() - 1]);
        assert!(verify(Some(&odd), DOCS_BODY, now).contains("`v0=`"));
        let words = signed("yesterday", DOCS_SIGNATURE);
        assert!(verify(Some(&words), DOCS_BODY, now).contains("not a Unix time"));
    }

    #[test]
    fn with_a_signing_secret_an_unsigned_command_is_denied_and_a_signed_one_decides() {
        let token = "xyzz0WbapA4vBCDEFasx0q6G";
        let config = Config { token: token.into(), signing_secret: Some("s1gn1ng-secret".into()) };
        let body = command(token, "false db-1 is down");
        let content_type = Some("application/x-www-form-urlencoded");
        let unsigned =
            IntakeRequest { action: None, content_type, body: body.as_bytes(), headers: None };
        assert!(matches!(parse(&config, &unsigned), Err(IntakeError::Denied(_))));
        let now = OffsetDateTime::now_utc().unix_timestamp().to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s1gn1ng-secret").unwrap();
        mac.update(format!("v0:{now}:{body}").as_bytes());
        let hex: String =
            mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
        let headers = signed(&now, &format!("v0={hex}"));
        let request = IntakeRequest { headers: Some(&headers), ..unsigned };
        assert!(matches!(
            parse(&config, &request),
            Ok(Intake::Result(CheckOutcome::Failed { .. }))
        ));
    }

    #[test]
    fn a_blank_signing_secret_is_refused_by_name() {
        let config = Config { token: "t".into(), signing_secret: Some("  ".into()) };
        assert_eq!(config.validate().unwrap_err().field, "signing_secret");
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config = Config {
            token: "gIkuvaNzQIHg97ATvDxqgjtO".into(),
            signing_secret: Some("8f742231b10e".into()),
        };
        assert!(!format!("{config:?}").contains("gIku"));
        assert!(!format!("{config:?}").contains("8f742231b10e"));
    }
}
