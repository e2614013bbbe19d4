//! `http-webhook`: call a URL with a JSON body naming the monitor, the reaction, the status, the
//! episode and the reason.
//!
//! Every call carries `Idempotency-Key` (stable across retries of one firing), so receivers can
//! drop duplicates; that makes the reaction [`Effect::Idempotent`].

use std::collections::BTreeMap;
use std::time::Duration;

use cloudroutes_engine::secret::Secret;
use cloudroutes_engine::{Method, Timestamp};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;
use url::Url;

use crate::api::{BODY_EXCERPT_BYTES, innermost_message, read_up_to, tidy};
use crate::{
    ConfigError, Effect, Fired, Incident, REDACTED, Reaction, ReactionContext, ReactionError,
    ReactionType,
};

/// Fields whose values are write-only through the API: every header value.
pub const SECRET_FIELDS: &[&str] = &["headers"];

const KIND: &str = "http-webhook";
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_TIMEOUT_MS: u64 = 120_000;
/// Headers the reaction sets itself, or that would corrupt the request's framing.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "content-type",
    "host",
    "idempotency-key",
    "transfer-encoding",
];

fn default_method() -> String {
    "POST".into()
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Config of an `http-webhook` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL to call; `http` or `https` only.
    #[schemars(url)]
    pub url: String,
    /// HTTP method: GET, POST, PUT, PATCH or DELETE, in any case. GET sends no body.
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra request headers, name to value (e.g. `Authorization`); values are write-only.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>", extend("writeOnly" = true))]
    pub headers: BTreeMap<String, Secret>,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "call a URL with a JSON body naming the monitor, status, episode and reason";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    /// Checks every field: the URL, the method, each header name and value, the timeout.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`url`, `method`, `headers`,
    /// `timeout_ms`); messages name a bad header but never quote its value.
    fn validate(&self) -> Result<(), ConfigError> {
        self.url()?;
        self.method()?;
        self.header_map()?;
        self.timeout()?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(HttpWebhookReaction::new(self, context)?))
    }
}

impl Config {
    fn url(&self) -> Result<Url, ConfigError> {
        let url = Url::parse(&self.url).map_err(|error| {
            let error = error.to_string().to_lowercase();
            ConfigError::invalid("url", format!("not a valid url: {error}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            let message = format!("scheme must be http or https, not `{}`", url.scheme());
            return Err(ConfigError::invalid("url", message));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::invalid("url", "must name a host"));
        }
        Ok(url)
    }

    fn method(&self) -> Result<reqwest::Method, ConfigError> {
        Ok(match self.method.to_ascii_uppercase().as_str() {
            "GET" => reqwest::Method::GET,
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "PATCH" => reqwest::Method::PATCH,
            "DELETE" => reqwest::Method::DELETE,
            _ => {
                let message = "must be one of GET, POST, PUT, PATCH, DELETE";
                return Err(ConfigError::invalid("method", message));
            }
        })
    }

    fn header_map(&self) -> Result<HeaderMap, ConfigError> {
        let invalid = |message: String| ConfigError::invalid("headers", message);
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("`{name}` is not a valid http header name")))?;
            if RESERVED_HEADERS.contains(&header_name.as_str()) {
                return Err(invalid(format!("`{name}` is set by cloudroutes itself")));
            }
            if map.contains_key(&header_name) {
                return Err(invalid(format!("`{name}` is given twice (names ignore case)")));
            }
            if value.expose() == REDACTED {
                let message = format!("the value of `{name}` is the placeholder \"***\"");
                return Err(invalid(message));
            }
            let mut header_value = HeaderValue::from_str(value.expose()).map_err(|_| {
                invalid(format!("the value of `{name}` is not a valid http header value"))
            })?;
            // Keeps the value out of the http stack's debug output.
            header_value.set_sensitive(true);
            map.insert(header_name, header_value);
        }
        Ok(map)
    }

    fn timeout(&self) -> Result<Duration, ConfigError> {
        if !(1..=MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            let message = format!("must be between 1 and {MAX_TIMEOUT_MS}");
            return Err(ConfigError::invalid("timeout_ms", message));
        }
        Ok(Duration::from_millis(self.timeout_ms))
    }
}

/// A runnable `http-webhook` reaction.
#[derive(Debug)]
pub struct HttpWebhookReaction {
    http: crate::egress::GuardedClient,
    url: Url,
    method: reqwest::Method,
    headers: HeaderMap,
    timeout: Duration,
    timeout_ms: u64,
}

impl HttpWebhookReaction {
    /// Validates `config` and builds the reaction on the node's shared HTTP client.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config, context: &ReactionContext) -> Result<Self, ConfigError> {
        let url = config.url()?;
        crate::egress::refuse_denied_literal(context.http.egress(), "url", &url)?;
        Ok(Self {
            http: context.http.clone(),
            url,
            method: config.method()?,
            headers: config.header_map()?,
            timeout: config.timeout()?,
            timeout_ms: config.timeout_ms,
        })
    }

    fn timed_out(&self) -> ReactionError {
        ReactionError::Timeout { kind: KIND, timeout_ms: self.timeout_ms }
    }

    fn request_error(&self, error: &reqwest::Error) -> ReactionError {
        if error.is_timeout() {
            return self.timed_out();
        }
        ReactionError::Transport { kind: KIND, message: innermost_message(error) }
    }
}

#[async_trait::async_trait]
impl Reaction for HttpWebhookReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError> {
        let deadline = Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, self.http.check_url(KIND, &self.url)).await {
            Ok(checked) => checked?,
            Err(_) => return Err(self.timed_out()),
        }
        let mut request = self
            .http
            .request(self.method.clone(), self.url.clone())
            .timeout(self.timeout)
            .headers(self.headers.clone())
            .header("Idempotency-Key", incident.idempotency_key.as_str());
        if self.method != reqwest::Method::GET {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(request_body(incident).to_string());
        }
        let mut response = match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(self.request_error(&error)),
            Err(_) => return Err(self.timed_out()),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(Fired::Executed(format!("HTTP {}", status.as_u16())));
        }
        // The status is the answer; a body that stalls only shortens the quoted excerpt.
        let mut excerpt = Vec::new();
        let read = read_up_to(&mut response, &mut excerpt, BODY_EXCERPT_BYTES);
        let _ = tokio::time::timeout_at(deadline, read).await;
        Err(ReactionError::Rejected { kind: KIND, status: status.as_u16(), body: tidy(&excerpt) })
    }
}

/// Returns the JSON document sent to the URL.
fn request_body(incident: &Incident) -> serde_json::Value {
    serde_json::json!({
        "monitor": {"id": incident.monitor_id.as_str(), "name": incident.monitor_name},
        "reaction": {"id": incident.reaction_id.as_str(), "name": incident.reaction_name},
        "status": incident.status.as_str(),
        "episode": incident.episode,
        "reason": incident.reason,
        "method": method_label(incident.method),
        "at": rfc3339(incident.at),
        "node": incident.node,
        "idempotency_key": incident.idempotency_key,
    })
}

fn method_label(method: Method) -> &'static str {
    match method {
        Method::Automatic => "automatic",
        Method::Manual => "manual",
        Method::Webhook => "webhook",
    }
}

/// Formats `at` in UTC as RFC 3339; years RFC 3339 cannot write fall back to Unix seconds.
fn rfc3339(at: Timestamp) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    at.format(&Rfc3339).unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
#[path = "http_webhook_tests.rs"]
mod tests;
