//! `pagerduty-notification`: open a PagerDuty alert when a monitor fails and resolve it when
//! the monitor recovers, through the Events API v2.
//!
//! `POST {api_base_url}/v2/enqueue` with `{"routing_key", "event_action", "dedup_key",
//! "payload": {"summary", "source", "severity", …}}` (PagerDuty developer docs, "Send an
//! Alert Event", developer.pagerduty.com/docs/events-API-v2/trigger-events). A failed
//! incident sends `trigger`, a healthy one `resolve`, both with the dedup key
//! `cloudroutes-{monitor_id}-{episode}`: a recovery keeps its failed episode's number, so the
//! resolve closes exactly the alert that episode opened, and a repeated trigger only adds a
//! log entry to it ([`Effect::Idempotent`]). PagerDuty answers `202 {"status": "success",
//! "dedup_key": …}`, `400 {"status": "invalid event", "errors": […]}` (quoted), or `429`
//! when rate-limited (retried).

use cloudroutes_engine::Status;
use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::api::{self, ApiCall, Body};
use crate::notify::{headline, method_label, rfc3339, truncate_chars};
use crate::{
    ConfigError, Effect, Fired, Incident, REDACTED, Reaction, ReactionContext, ReactionError,
    ReactionType,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["routing_key"];

const KIND: &str = "pagerduty-notification";
/// The Events API v2 host.
pub const DEFAULT_API_BASE_URL: &str = "https://events.pagerduty.com";
/// Longest `payload.summary` PagerDuty accepts.
const MAX_SUMMARY_CHARS: usize = 1024;
/// Longest `source` or `component` accepted here.
const MAX_LABEL_CHARS: usize = 255;
const MAX_ROUTING_KEY_CHARS: usize = 128;

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.into()
}

/// How bad PagerDuty is told a failure is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The service is down.
    #[default]
    Critical,
    /// Something is broken.
    Error,
    /// Something may soon break.
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// Config of a `pagerduty-notification` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Events API v2 integration key of the PagerDuty service (write-only).
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub routing_key: Secret,
    /// `critical` (default), `error`, `warning` or `info`.
    #[serde(default)]
    pub severity: Severity,
    /// `payload.source`, the affected system; the monitor's name unless set.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub source: Option<String>,
    /// `payload.component`, the part of the source at fault; the monitor's id unless set.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub component: Option<String>,
    /// Base URL of the Events API, `https://events.pagerduty.com` unless set (a proxy or a
    /// compatible API).
    #[serde(default = "default_api_base_url")]
    #[schemars(url)]
    pub api_base_url: String,
    /// Milliseconds to wait for PagerDuty's answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "trigger a pagerduty alert on failure and resolve it on recovery (events api v2)";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.check_routing_key()?;
        check_label("source", self.source.as_deref())?;
        check_label("component", self.component.as_deref())?;
        api::parse_base_url(&self.api_base_url)?;
        api::validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(PagerdutyNotificationReaction::new(self, context)?))
    }
}

impl Config {
    fn check_routing_key(&self) -> Result<(), ConfigError> {
        let key = self.routing_key.expose();
        if key == REDACTED {
            let message = "is the placeholder \"***\": give the integration key";
            return Err(ConfigError::invalid("routing_key", message));
        }
        if key.is_empty()
            || key.chars().count() > MAX_ROUTING_KEY_CHARS
            || !key.chars().all(|c| c.is_ascii_graphic())
        {
            let message =
                format!("must be 1 to {MAX_ROUTING_KEY_CHARS} printable characters without spaces");
            return Err(ConfigError::invalid("routing_key", message));
        }
        Ok(())
    }
}

fn check_label(field: &str, value: Option<&str>) -> Result<(), ConfigError> {
    let Some(value) = value else { return Ok(()) };
    if value.trim().is_empty()
        || value.chars().count() > MAX_LABEL_CHARS
        || value.chars().any(char::is_control)
    {
        let message = format!("must be 1 to {MAX_LABEL_CHARS} characters without line breaks");
        return Err(ConfigError::invalid(field, message));
    }
    Ok(())
}

/// A runnable `pagerduty-notification` reaction.
#[derive(Debug)]
pub struct PagerdutyNotificationReaction {
    http: crate::egress::GuardedClient,
    url: Url,
    routing_key: Secret,
    severity: Severity,
    source: Option<String>,
    component: Option<String>,
    timeout_ms: u64,
}

impl PagerdutyNotificationReaction {
    /// Validates `config` and builds the reaction on the node's shared HTTP client.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn new(config: &Config, context: &ReactionContext) -> Result<Self, ConfigError> {
        config.validate()?;
        let base = api::parse_base_url(&config.api_base_url)?;
        Ok(Self {
            http: context.http.clone(),
            url: api::endpoint(&base, "v2/enqueue"),
            routing_key: config.routing_key.clone(),
            severity: config.severity,
            source: config.source.clone(),
            component: config.component.clone(),
            timeout_ms: config.timeout_ms,
        })
    }

    /// Returns the event sent for `incident` with `action` (`trigger` or `resolve`).
    fn event(&self, incident: &Incident, action: &str) -> serde_json::Value {
        let summary = format!("{}: {}", headline(incident), incident.reason);
        json!({
            "routing_key": self.routing_key.expose(),
            "event_action": action,
            "dedup_key": dedup_key(incident),
            "client": "CloudRoutes",
            "payload": {
                "summary": truncate_chars(&summary, MAX_SUMMARY_CHARS),
                "source": self.source.as_deref().unwrap_or(&incident.monitor_name),
                "severity": self.severity.as_str(),
                "component": self.component.as_deref().unwrap_or(incident.monitor_id.as_str()),
                "timestamp": rfc3339(incident.at),
                "custom_details": {
                    "monitor_id": incident.monitor_id.as_str(),
                    "monitor": incident.monitor_name,
                    "status": incident.status.as_str(),
                    "episode": incident.episode,
                    "reason": incident.reason,
                    "method": method_label(incident.method),
                    "reaction": incident.reaction_name,
                    "node": incident.node,
                },
            },
        })
    }

    /// Rewrites a rejection to quote PagerDuty's `errors`, and keeps the key out of it.
    fn explain(&self, error: ReactionError) -> ReactionError {
        let ReactionError::Rejected { kind, status, body } = error else { return error };
        let body = match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(answer) => {
                let mut parts = Vec::new();
                for field in ["status", "message"] {
                    if let Some(text) = answer[field].as_str() {
                        parts.push(text.to_owned());
                    }
                }
                if let Some(errors) = answer["errors"].as_array() {
                    let errors: Vec<String> = errors
                        .iter()
                        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                        .collect();
                    parts.push(errors.join("; "));
                }
                if parts.is_empty() { body } else { parts.join(": ") }
            }
            Err(_) => body,
        };
        let body = body.replace(self.routing_key.expose(), REDACTED);
        ReactionError::Rejected { kind, status, body }
    }
}

#[async_trait::async_trait]
impl Reaction for PagerdutyNotificationReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError> {
        let action = match incident.status {
            Status::Failed => "trigger",
            Status::Healthy => "resolve",
            Status::Unknown => {
                return Ok(Fired::Skipped("status unknown: nothing to trigger or resolve".into()));
            }
        };
        let call = ApiCall::new(
            KIND,
            &self.http,
            reqwest::Method::POST,
            self.url.clone(),
            self.timeout_ms,
        )
        .body(Body::Json(self.event(incident, action)));
        let answer = call.send().await.map_err(|error| self.explain(error))?;
        let sent_key = dedup_key(incident);
        let body = answer.json(KIND).unwrap_or_default();
        let key = body["dedup_key"].as_str().unwrap_or(&sent_key);
        let message = body["message"].as_str().unwrap_or("accepted");
        Ok(Fired::Executed(format!("HTTP {}, {action} {key}: {message}", answer.status)))
    }
}

/// Returns `cloudroutes-{monitor_id}-{episode}`: the same for an episode's trigger and resolve.
fn dedup_key(incident: &Incident) -> String {
    format!("cloudroutes-{}-{}", incident.monitor_id.as_str(), incident.episode)
}

#[cfg(test)]
#[path = "pagerduty_notification_tests.rs"]
mod tests;
