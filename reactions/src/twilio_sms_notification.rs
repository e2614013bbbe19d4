//! `twilio-sms-notification`: text up to ten phone numbers through Twilio, naming the monitor,
//! its status and the reason.
//!
//! One request per recipient (<https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource>):
//! `POST /2010-04-01/Accounts/{account_sid}/Messages.json`, HTTP basic auth
//! `account_sid:auth_token`, form `To`, `From`, `Body`; Twilio answers 201 with the message's
//! `sid`, or an error `{"code": 21211, "message": "…", "more_info": "…"}` whose code and message
//! the error quotes.
//!
//! A notification is [`Effect::Idempotent`], so a failed run is retried; the reaction notes
//! which recipients a firing already reached, and a retry texts only the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::api::{
    ApiCall, Body, default_timeout_ms, endpoint, parse_base_url, tidy, validate_timeout_ms,
};
use crate::{
    ConfigError, Effect, Fired, Incident, Notes, Reaction, ReactionContext, ReactionError,
    ReactionType,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["auth_token"];

const KIND: &str = "twilio-sms-notification";
/// Twilio's limit on a message body, in characters.
const MAX_BODY_CHARS: usize = 1600;
/// Most recipients of one reaction.
const MAX_RECIPIENTS: usize = 10;

fn default_api_base_url() -> String {
    "https://api.twilio.com".into()
}

/// Config of a `twilio-sms-notification` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Your Twilio account SID: `AC` and 32 hexadecimal digits.
    #[schemars(length(min = 34, max = 34))]
    pub account_sid: String,
    /// The account's auth token; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub auth_token: Secret,
    /// The sending Twilio number, in E.164 form (`+15017122661`).
    #[schemars(length(min = 3, max = 16))]
    pub from: String,
    /// The numbers to text, in E.164 form; 1 to 10, each texted once.
    #[schemars(length(min = 1, max = 10))]
    pub to: Vec<String>,
    /// Base URL of the Twilio API; change it only for a proxy or a test server.
    #[serde(default = "default_api_base_url")]
    #[schemars(url)]
    pub api_base_url: String,
    /// Milliseconds to wait for each recipient's answer, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

/// Returns whether `number` is in E.164 form: `+`, then 2 to 15 digits, the first not 0.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "text up to ten phone numbers through Twilio with the monitor, its status and the reason";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        let sid_ok = self
            .account_sid
            .strip_prefix("AC")
            .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if !sid_ok {
            let message = "must be `AC` followed by 32 hexadecimal digits";
            return Err(ConfigError::invalid("account_sid", message));
        }
        let token = self.auth_token.expose();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            let message = "must not be empty and must hold no spaces or control characters";
            return Err(ConfigError::invalid("auth_token", message));
        }
        if !is_e164(&self.from) {
            return Err(ConfigError::invalid(
                "from",
                "must be a phone number in E.164 form, e.g. +15017122661",
            ));
        }
        if !(1..=MAX_RECIPIENTS).contains(&self.to.len()) {
            let message = format!("must list 1 to {MAX_RECIPIENTS} phone numbers");
            return Err(ConfigError::invalid("to", message));
        }
        for (index, number) in self.to.iter().enumerate() {
            let field = format!("to[{index}]");
            if !is_e164(number) {
                let message = "must be a phone number in E.164 form, e.g. +15558675310";
                return Err(ConfigError::invalid(field, message));
            }
            if self.to[..index].contains(number) {
                return Err(ConfigError::invalid(field, format!("{number} is listed twice")));
            }
        }
        parse_base_url(&self.api_base_url)?;
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        self.validate()?;
        Ok(Box::new(TwilioSmsReaction {
            http: context.http.clone(),
            notes: Arc::clone(&context.notes),
            base: parse_base_url(&self.api_base_url)?,
            account_sid: self.account_sid.clone(),
            auth_token: self.auth_token.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            timeout_ms: self.timeout_ms,
        }))
    }
}

/// A runnable `twilio-sms-notification` reaction.
#[derive(Debug)]
pub struct TwilioSmsReaction {
    http: crate::egress::GuardedClient,
    notes: Arc<dyn Notes>,
    base: Url,
    account_sid: String,
    auth_token: Secret,
    from: String,
    to: Vec<String>,
    timeout_ms: u64,
}

/// Returns the text: monitor, status and reason, cut to Twilio's 1600 characters.
fn message(incident: &Incident) -> String {
    let text = format!(
        "CloudRoutes: monitor {} is {}: {}",
        incident.monitor_name,
        incident.status.as_str(),
        incident.reason
    );
    text.chars().take(MAX_BODY_CHARS).collect()
}

impl TwilioSmsReaction {
    /// Texts `to`; returns the message's sid.
    async fn send(&self, to: &str, text: &str) -> Result<String, ReactionError> {
        let path = format!("2010-04-01/Accounts/{}/Messages.json", self.account_sid);
        let url = endpoint(&self.base, &path);
        let form = vec![
            ("To".to_owned(), to.to_owned()),
            ("From".to_owned(), self.from.clone()),
            ("Body".to_owned(), text.to_owned()),
        ];
        let answer = ApiCall::new(KIND, &self.http, reqwest::Method::POST, url, self.timeout_ms)
            .basic(&self.account_sid, self.auth_token.expose())
            .header("accept", "application/json")
            .body(Body::Form(form))
            .send_any_status()
            .await?;
        let document: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if !(200..300).contains(&answer.status) {
            let code = document.get("code").and_then(Value::as_i64);
            let text = document.get("message").and_then(Value::as_str);
            let body = match (code, text) {
                (Some(code), Some(text)) => format!("code {code}: {text}"),
                _ => tidy(&answer.body),
            };
            return Err(ReactionError::Rejected { kind: KIND, status: answer.status, body });
        }
        match document.get("sid").and_then(Value::as_str) {
            Some(sid) => Ok(sid.to_owned()),
            None => Err(ReactionError::Failed {
                kind: KIND,
                message: format!(
                    "HTTP {} without a message sid: {}",
                    answer.status,
                    tidy(&answer.body)
                ),
            }),
        }
    }

    fn note_key(incident: &Incident) -> String {
        format!("{KIND}:{}:{}", incident.reaction_id.as_str(), incident.monitor_id.as_str())
    }

    /// Returns the recipients this firing already reached (number → sid), from the notes.
    async fn already_sent(&self, incident: &Incident) -> BTreeMap<String, String> {
        let note = match self.notes.get(&Self::note_key(incident)).await {
            Ok(note) => note,
            Err(error) => {
                tracing::warn!(reaction_id = %incident.reaction_id.as_str(), error = %error,
                    "could not read which recipients were texted; texting all");
                None
            }
        };
        note.filter(|note| note["firing"] == incident.idempotency_key.as_str())
            .and_then(|note| serde_json::from_value(note["sent"].clone()).ok())
            .unwrap_or_default()
    }

    async fn remember(&self, incident: &Incident, sent: &BTreeMap<String, String>) {
        let note = json!({"firing": incident.idempotency_key, "sent": sent});
        if let Err(error) = self.notes.put(&Self::note_key(incident), &note).await {
            tracing::warn!(reaction_id = %incident.reaction_id.as_str(), error = %error,
                "could not note which recipients were texted");
        }
    }
}

#[async_trait::async_trait]
impl Reaction for TwilioSmsReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError> {
        let text = message(incident);
        let mut sent = self.already_sent(incident).await;
        let pending: Vec<_> = self.to.iter().filter(|to| !sent.contains_key(*to)).collect();
        if pending.is_empty() {
            return Ok(Fired::Skipped("this firing already texted every recipient".into()));
        }
        let mut failures = Vec::new();
        for to in pending {
            match self.send(to, &text).await {
                Ok(sid) => {
                    sent.insert(to.clone(), sid);
                    self.remember(incident, &sent).await;
                }
                Err(error) => failures.push((to.as_str(), error)),
            }
        }
        let reached: Vec<_> =
            self.to.iter().filter_map(|to| Some(format!("{to} ({})", sent.get(to)?))).collect();
        if failures.is_empty() {
            return Ok(Fired::Executed(format!("HTTP 201, sent to {}", reached.join(", "))));
        }
        Err(combined(failures, &reached, self.to.len()))
    }
}

/// Returns one error for the recipients that failed: of the variant of the first retryable
/// failure (so that the run is retried when one may help) or else of the first, its text
/// naming each failed number and why, and the numbers reached.
fn combined(
    failures: Vec<(&str, ReactionError)>,
    reached: &[String],
    total: usize,
) -> ReactionError {
    let why = |error: &ReactionError| match error {
        ReactionError::Rejected { status, body, .. } => format!("HTTP {status} {body}"),
        ReactionError::Transport { message, .. } | ReactionError::Failed { message, .. } => {
            message.clone()
        }
        ReactionError::SmtpRejected { code, message, .. } => format!("{code} {message}"),
        ReactionError::Timeout { timeout_ms, .. } => format!("no answer within {timeout_ms} ms"),
    };
    let list: Vec<_> = failures.iter().map(|(to, error)| format!("{to}: {}", why(error))).collect();
    let mut summary = list.join("; ");
    if total > 1 {
        summary = format!("{} of {total} recipients failed: {summary}", failures.len());
    }
    if !reached.is_empty() {
        summary = format!("{summary}; sent to {}", reached.join(", "));
    }
    let first =
        failures.iter().map(|(_, e)| e).find(|e| e.is_retryable()).unwrap_or(&failures[0].1);
    match first {
        ReactionError::Rejected { status, .. } => {
            ReactionError::Rejected { kind: KIND, status: *status, body: summary }
        }
        ReactionError::Transport { .. } | ReactionError::Timeout { .. } => {
            ReactionError::Transport { kind: KIND, message: summary }
        }
        ReactionError::Failed { .. } | ReactionError::SmtpRejected { .. } => {
            ReactionError::Failed { kind: KIND, message: summary }
        }
    }
}

#[cfg(test)]
#[path = "twilio_sms_notification_tests.rs"]
mod tests;
