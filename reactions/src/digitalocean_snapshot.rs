//! `digitalocean-snapshot`: take a snapshot of a droplet, named from a template
//! (`POST /v2/droplets/{droplet_id}/actions` with `{"type": "snapshot", "name": …}`,
//! <https://docs.digitalocean.com/reference/api/api-reference/#operation/dropletActions_post>).
//!
//! Destructive in the claim policy's sense: a repeat run makes (and bills) a second snapshot.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use time::UtcOffset;
use time::macros::format_description;

use crate::api;
use crate::digitalocean::{
    ActionBody, ActionReaction, SECRET_FIELDS, default_api_base_url, validate_common,
};
use crate::{ConfigError, Effect, Incident, Reaction, ReactionContext, ReactionType};

const KIND: &str = "digitalocean-snapshot";
/// Longest accepted `snapshot_name` template, in characters.
const MAX_TEMPLATE_CHARS: usize = 255;
const PLACEHOLDERS: &[&str] = &["{monitor}", "{date}"];

fn default_snapshot_name() -> String {
    "cloudroutes {monitor} {date}".into()
}

/// Config of a `digitalocean-snapshot` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DigitalOcean API token (personal access token with `droplet:update`); write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub api_token: Secret,
    /// The droplet's numeric id.
    #[schemars(range(min = 1))]
    pub droplet_id: u64,
    /// Name of the snapshot, up to 255 characters; `{monitor}` is replaced by the monitor's
    /// name and `{date}` by the incident's time in UTC (`2024-05-01T12:30:00Z`).
    #[serde(default = "default_snapshot_name")]
    #[schemars(length(min = 1, max = 255))]
    pub snapshot_name: String,
    /// Base URL of the DigitalOcean API (a proxy or a compatible API).
    #[serde(default = "default_api_base_url")]
    #[schemars(url)]
    pub api_base_url: String,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str = "take a named snapshot of a DigitalOcean droplet";
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(drop)
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let base = self.checked()?;
        let body = SnapshotBody { template: self.snapshot_name.clone() };
        Ok(Box::new(ActionReaction::new(
            KIND,
            Self::EFFECT,
            context,
            &self.api_token,
            &base,
            &format!("v2/droplets/{}/actions", self.droplet_id),
            Box::new(body),
            self.timeout_ms,
        )))
    }
}

impl Config {
    /// Checks every field and returns the base URL.
    fn checked(&self) -> Result<url::Url, ConfigError> {
        let base =
            validate_common(&self.api_token, self.droplet_id, &self.api_base_url, self.timeout_ms)?;
        validate_template(&self.snapshot_name)?;
        Ok(base)
    }
}

/// Checks a `snapshot_name` template: 1 to 255 characters, no control characters, and no
/// braces other than the known placeholders.
fn validate_template(template: &str) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::invalid("snapshot_name", message);
    if template.trim().is_empty() {
        return Err(invalid("must not be empty".into()));
    }
    if template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(invalid(format!("must be at most {MAX_TEMPLATE_CHARS} characters")));
    }
    if template.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters".into()));
    }
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        let tail = &rest[open..];
        match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
            Some(placeholder) => rest = &tail[placeholder.len()..],
            None => {
                let shown: String = tail.chars().take_while(|c| *c != ' ').take(20).collect();
                let message =
                    format!("unknown placeholder `{shown}`, expected {{monitor}} or {{date}}");
                return Err(invalid(message));
            }
        }
    }
    Ok(())
}

/// The snapshot action's body, its name rendered for each incident.
#[derive(Debug)]
struct SnapshotBody {
    template: String,
}

impl ActionBody for SnapshotBody {
    fn json(&self, incident: &Incident) -> serde_json::Value {
        serde_json::json!({"type": "snapshot", "name": snapshot_name(&self.template, incident)})
    }
}

/// Returns the template with `{monitor}` and `{date}` replaced for `incident`.
fn snapshot_name(template: &str, incident: &Incident) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let at = incident.at.to_offset(UtcOffset::UTC);
    let date = at.format(format).unwrap_or_else(|_| at.unix_timestamp().to_string());
    // One pass, so a monitor named `{date}` stays as it is.
    let mut name = String::with_capacity(template.len() + incident.monitor_name.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        name.push_str(&rest[..open]);
        let tail = &rest[open..];
        if let Some(after) = tail.strip_prefix("{monitor}") {
            name.push_str(&incident.monitor_name);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{date}") {
            name.push_str(&date);
            rest = after;
        } else {
            name.push('{');
            rest = &tail[1..];
        }
    }
    name.push_str(rest);
    name
}

#[cfg(test)]
#[path = "digitalocean_snapshot_tests.rs"]
mod tests;
