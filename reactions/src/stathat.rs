//! `stathat`: count the monitor's result in a StatHat stat, as the original product did.
//!
//! One call to the EZ API in its JSON form (<https://www.stathat.com/docs/api>, JSON bodies:
//! <https://blog.stathat.com/2013/03/13/use_json_to_update_many_stats.html>):
//! `POST /ez` with `{"ezkey": …, "data": [{"stat": <name>, "count": 1}]}`. StatHat answers
//! `{"status": 200, "msg": "ok"}`. The stat name comes from a template, by default
//! `cloudroutes.{monitor}.{status}`. Counting is a notification, [`Effect::Idempotent`]: a retry
//! after a lost answer may count one firing twice, which is what the EZ API offers.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::api::{
    ApiCall, Body, default_timeout_ms, endpoint, parse_base_url, validate_timeout_ms,
};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["ezkey"];

const KIND: &str = "stathat";
/// StatHat's limit on a stat name, in characters.
const MAX_STAT_CHARS: usize = 255;
/// The placeholders a stat name template may use.
const PLACEHOLDERS: &[&str] = &["monitor", "status", "reaction"];

fn default_api_base_url() -> String {
    "https://api.stathat.com".into()
}

fn default_stat() -> String {
    "cloudroutes.{monitor}.{status}".into()
}

/// Config of a `stathat` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Your StatHat EZ key (the account's email address or the key set in its settings);
    /// write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub ezkey: Secret,
    /// The stat name, with `{monitor}`, `{status}` (healthy, failed) and `{reaction}` replaced
    /// by the monitor's name, its status and the reaction's name; at most 255 characters once
    /// filled in (longer names are cut). `~` in names filled in becomes `-`, as StatHat reads
    /// `~` as a list of stats.
    #[serde(default = "default_stat")]
    #[schemars(length(min = 1, max = 255))]
    pub stat: String,
    /// Base URL of the StatHat API; change it only for a proxy or a test server.
    #[serde(default = "default_api_base_url")]
    #[schemars(url)]
    pub api_base_url: String,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl Config {
    fn check_stat(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::invalid("stat", message);
        if self.stat.trim().is_empty() {
            return Err(invalid("must not be empty".into()));
        }
        if self.stat.chars().count() > MAX_STAT_CHARS {
            return Err(invalid(format!("must be at most {MAX_STAT_CHARS} characters")));
        }
        if self.stat.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters".into()));
        }
        let mut rest = self.stat.as_str();
        while let Some(open) = rest.find(['{', '}']) {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}').filter(|_| rest[open..].starts_with('{')) else {
                return Err(invalid("has an unmatched `{` or `}`".into()));
            };
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                let message = format!(
                    "`{{{name}}}` is not a placeholder: use {{monitor}}, {{status}} or {{reaction}}"
                );
                return Err(invalid(message));
            }
            rest = &after[close + 1..];
        }
        Ok(())
    }
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str = "count the monitor's result in a StatHat stat (EZ API, default cloudroutes.<monitor>.<status>)";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        if self.ezkey.expose().trim().is_empty() {
            return Err(ConfigError::invalid("ezkey", "must not be empty"));
        }
        self.check_stat()?;
        parse_base_url(&self.api_base_url)?;
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        self.validate()?;
        Ok(Box::new(StathatReaction {
            http: context.http.clone(),
            base: parse_base_url(&self.api_base_url)?,
            ezkey: self.ezkey.clone(),
            stat: self.stat.clone(),
            timeout_ms: self.timeout_ms,
        }))
    }
}

/// A runnable `stathat` reaction.
#[derive(Debug)]
pub struct StathatReaction {
    http: crate::egress::GuardedClient,
    base: Url,
    ezkey: Secret,
    stat: String,
    timeout_ms: u64,
}

impl StathatReaction {
    /// Returns the stat name for `incident`: the template filled in, cut to 255 characters.
    fn stat_name(&self, incident: &Incident) -> String {
        let fill = |value: &str| value.replace('~', "-");
        let name = self
            .stat
            .replace("{monitor}", &fill(&incident.monitor_name))
            .replace("{status}", incident.status.as_str())
            .replace("{reaction}", &fill(&incident.reaction_name));
        name.chars().take(MAX_STAT_CHARS).collect()
    }

    /// Returns `error` with the EZ key (an email address, often echoed back) replaced by `***`.
    fn scrub(&self, error: ReactionError) -> ReactionError {
        let clean = |text: String| text.replace(self.ezkey.expose(), "***");
        match error {
            ReactionError::Rejected { kind, status, body } => {
                ReactionError::Rejected { kind, status, body: clean(body) }
            }
            ReactionError::Failed { kind, message } => {
                ReactionError::Failed { kind, message: clean(message) }
            }
            other => other,
        }
    }
}

#[async_trait::async_trait]
impl Reaction for StathatReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError> {
        let stat = self.stat_name(incident);
        let body = json!({"ezkey": self.ezkey.expose(), "data": [{"stat": stat, "count": 1}]});
        let url = endpoint(&self.base, "ez");
        let answer = ApiCall::new(KIND, &self.http, reqwest::Method::POST, url, self.timeout_ms)
            .body(Body::Json(body))
            .send()
            .await
            .map_err(|error| self.scrub(error))?;
        // StatHat repeats the outcome in the body; a body that is not JSON is taken as the
        // status alone.
        let document: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if let Some(status) = document.get("status").and_then(Value::as_u64)
            && status != 200
        {
            let message = document.get("msg").and_then(Value::as_str).unwrap_or("no message");
            let message = format!("stathat answered status {status}: {message}");
            return Err(self.scrub(ReactionError::Failed { kind: KIND, message }));
        }
        Ok(Fired::Executed(format!("HTTP {}, counted 1 in `{stat}`", answer.status)))
    }
}

#[cfg(test)]
#[path = "stathat_tests.rs"]
mod tests;
