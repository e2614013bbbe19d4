//! `slack-webhook`: post the incident to a Slack channel through an incoming webhook.
//!
//! One `POST` of `{"text": …, "blocks": […]}` to the webhook URL (Slack: "Sending messages
//! using incoming webhooks", api.slack.com/messaging/webhooks); `text` is the notification
//! fallback, the blocks show a colored status line, the reason, episode, time and node. Slack
//! answers `200 ok`, or a status with a short text (`400 invalid_payload`, `403
//! action_prohibited`, `404 no_service`, `404 channel_not_found`, `410 channel_is_archived`),
//! which errors quote (api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks).
//! A repeated message is harmless: [`Effect::Idempotent`].

use std::fmt;

use cloudroutes_engine::Status;
use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::api::{self, ApiCall, Body};
use crate::notify::{method_label, rfc3339, status_word, truncate_chars};
use crate::{
    ConfigError, Effect, Fired, Incident, REDACTED, Reaction, ReactionContext, ReactionError,
    ReactionType,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["webhook_url"];

const KIND: &str = "slack-webhook";
/// Longest reason shown (a block field holds at most 2000 characters).
const MAX_REASON_CHARS: usize = 1500;
/// Longest monitor or reaction name shown.
const MAX_NAME_CHARS: usize = 200;

/// Config of a `slack-webhook` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The incoming webhook's URL, `https://hooks.slack.com/services/T…/B…/…` (any http or
    /// https URL is accepted, for proxies); write-only, since the URL is the credential.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub webhook_url: Secret,
    /// Milliseconds to wait for Slack's answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "post the monitor's status, reason and episode to a slack channel's incoming webhook";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.webhook_url()?;
        api::validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(SlackWebhookReaction::new(self, context)?))
    }
}

impl Config {
    fn webhook_url(&self) -> Result<Url, ConfigError> {
        if self.webhook_url.expose() == REDACTED {
            let message = "is the placeholder \"***\": give the webhook url";
            return Err(ConfigError::invalid("webhook_url", message));
        }
        // The messages name the problem, never the URL: its path is the credential.
        api::parse_http_url("webhook_url", self.webhook_url.expose())
    }
}

/// A runnable `slack-webhook` reaction.
pub struct SlackWebhookReaction {
    http: crate::egress::GuardedClient,
    url: Url,
    timeout_ms: u64,
}

impl fmt::Debug for SlackWebhookReaction {
    // By hand: the URL is the credential; only its host is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebhookReaction")
            .field("host", &self.url.host_str().unwrap_or_default())
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

impl SlackWebhookReaction {
    /// Validates `config` and builds the reaction on the node's shared HTTP client.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn new(config: &Config, context: &ReactionContext) -> Result<Self, ConfigError> {
        api::validate_timeout_ms(config.timeout_ms)?;
        Ok(Self {
            http: context.http.clone(),
            url: config.webhook_url()?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Keeps the webhook URL out of an error's text.
    fn scrub(&self, error: ReactionError) -> ReactionError {
        let url = self.url.as_str();
        match error {
            ReactionError::Transport { kind, message } if message.contains(url) => {
                ReactionError::Transport { kind, message: message.replace(url, "<webhook url>") }
            }
            other => other,
        }
    }
}

#[async_trait::async_trait]
impl Reaction for SlackWebhookReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError> {
        let call = ApiCall::new(
            KIND,
            &self.http,
            reqwest::Method::POST,
            self.url.clone(),
            self.timeout_ms,
        )
        .body(Body::Json(message(incident)));
        let answer = call.send().await.map_err(|error| self.scrub(error))?;
        Ok(Fired::Executed(format!("HTTP {} {}", answer.status, api::tidy(&answer.body))))
    }
}

/// Returns the message posted for `incident`.
fn message(incident: &Incident) -> serde_json::Value {
    let emoji = match incident.status {
        Status::Failed => ":red_circle:",
        Status::Healthy => ":large_green_circle:",
        Status::Unknown => ":white_circle:",
    };
    let name = escape(&truncate_chars(&incident.monitor_name, MAX_NAME_CHARS));
    let reason = escape(&truncate_chars(&incident.reason, MAX_REASON_CHARS));
    let summary = format!(
        "{emoji} *{}*: *{name}* (episode {})",
        status_word(incident.status),
        incident.episode
    );
    let field =
        |label: &str, value: &str| json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")});
    let footer = format!(
        "CloudRoutes reaction _{}_ · monitor `{}` · {} result",
        escape(&truncate_chars(&incident.reaction_name, MAX_NAME_CHARS)),
        escape(incident.monitor_id.as_str()),
        method_label(incident.method),
    );
    json!({
        "text": format!(
            "{emoji} {}: {name} (episode {}): {reason}",
            status_word(incident.status),
            incident.episode
        ),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {"type": "section", "fields": [
                field("Reason", &reason),
                field("Time", &rfc3339(incident.at)),
                field("Episode", &incident.episode.to_string()),
                field("Node", &escape(&incident.node)),
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]},
        ],
    })
}

/// Escapes the three characters Slack's mrkdwn reserves for links and mentions.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
#[path = "slack_webhook_tests.rs"]
mod tests;
