//! DigitalOcean droplet actions through API v2: `digitalocean-reboot`, `digitalocean-powercycle`,
//! `digitalocean-poweron`, `digitalocean-poweroff` and `digitalocean-shutdown` here (one small
//! config each, from the local `droplet_action_type!` macro); `digitalocean-snapshot` and
//! `digitalocean-assign-floatingip` in their own modules share [`ActionReaction`].
//!
//! Each run is one `POST /v2/droplets/{droplet_id}/actions` with `{"type": …}` and a bearer
//! token (<https://docs.digitalocean.com/reference/api/api-reference/#operation/dropletActions_post>).
//! DigitalOcean answers 201 with `{"action": {"id", "status", "type", …}}` before the action has
//! finished; the detail names the action so that its progress can be looked up. A droplet with
//! an unfinished action is locked and further actions are refused with 422, which is final:
//! nothing here retries a destructive action.

use std::fmt;

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::api::{self, ApiCall, Body};
use crate::{ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError};

/// The real API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.digitalocean.com";

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["api_token"];

/// Serde default of `api_base_url`.
pub fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.into()
}

/// Checks the fields every DigitalOcean type has, in their declared order, and returns the
/// parsed base URL.
///
/// # Errors
/// Naming the first invalid field: `api_token`, `droplet_id`, `api_base_url` or `timeout_ms`.
pub fn validate_common(
    api_token: &Secret,
    droplet_id: u64,
    api_base_url: &str,
    timeout_ms: u64,
) -> Result<Url, ConfigError> {
    api::validate_token("api_token", api_token.expose())?;
    if droplet_id == 0 {
        return Err(ConfigError::invalid("droplet_id", "must be a droplet id of 1 or more"));
    }
    let base = api::parse_base_url(api_base_url)?;
    api::validate_timeout_ms(timeout_ms)?;
    Ok(base)
}

/// The JSON body of one action request; a snapshot's name depends on the incident.
pub trait ActionBody: fmt::Debug + Send + Sync {
    /// Returns the body sent for `incident`.
    fn json(&self, incident: &Incident) -> serde_json::Value;
}

impl ActionBody for serde_json::Value {
    fn json(&self, _incident: &Incident) -> serde_json::Value {
        self.clone()
    }
}

/// A runnable DigitalOcean action: one POST to an `actions` endpoint.
#[derive(Debug)]
pub struct ActionReaction {
    kind: &'static str,
    effect: Effect,
    http: crate::egress::GuardedClient,
    api_token: Secret,
    url: Url,
    body: Box<dyn ActionBody>,
    timeout_ms: u64,
}

impl ActionReaction {
    /// Builds the action of type `kind` POSTed to `path` (relative to `base`) with `body`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: &'static str,
        effect: Effect,
        context: &ReactionContext,
        api_token: &Secret,
        base: &Url,
        path: &str,
        body: Box<dyn ActionBody>,
        timeout_ms: u64,
    ) -> Self {
        Self {
            kind,
            effect,
            http: context.http.clone(),
            api_token: api_token.clone(),
            url: api::endpoint(base, path),
            body,
            timeout_ms,
        }
    }
}

#[async_trait::async_trait]
impl Reaction for ActionReaction {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn effect(&self) -> Effect {
        self.effect
    }

    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError> {
        let kind = self.kind;
        let body = self.body.json(incident);
        let answer = ApiCall::new(
            kind,
            &self.http,
            reqwest::Method::POST,
            self.url.clone(),
            self.timeout_ms,
        )
        .bearer(self.api_token.expose())
        .body(Body::Json(body.clone()))
        .send()
        .await
        .map_err(|error| api::quote_message(error, api_message))?;
        let json = answer.json(kind)?;
        let action = &json["action"];
        let (Some(id), Some(status)) = (action["id"].as_u64(), action["status"].as_str()) else {
            let message =
                format!("answer names no action id and status: {}", api::tidy(&answer.body));
            return Err(ReactionError::Failed { kind, message });
        };
        let action_type = action["type"].as_str().or(body["type"].as_str()).unwrap_or("action");
        Ok(Fired::Executed(format!("HTTP {}, action {id} {action_type} {status}", answer.status)))
    }
}

/// Picks the `message` of a DigitalOcean error body (`{"id": "not_found", "message": …}`).
pub fn api_message(json: &serde_json::Value) -> Option<String> {
    json["message"].as_str().map(str::to_owned)
}

/// Declares the config of a droplet action that needs nothing but the droplet: its struct,
/// [`crate::ReactionType`] impl and the `{"type": ACTION}` it POSTs.
macro_rules! droplet_action_type {
    ($(#[$doc:meta])* $config:ident, $name:literal, $action:literal, $effect:expr, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $config {
            /// DigitalOcean API token (personal access token with `droplet:update`); write-only.
            #[schemars(with = "String", extend("writeOnly" = true))]
            pub api_token: Secret,
            /// The droplet's numeric id.
            #[schemars(range(min = 1))]
            pub droplet_id: u64,
            /// Base URL of the DigitalOcean API (a proxy or a compatible API).
            #[serde(default = "default_api_base_url")]
            #[schemars(url)]
            pub api_base_url: String,
            /// Milliseconds to wait for the answer, 1 to 120000.
            #[serde(default = "api::default_timeout_ms")]
            #[schemars(range(min = 1, max = 120_000))]
            pub timeout_ms: u64,
        }

        impl crate::ReactionType for $config {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $description;
            const EFFECT: Effect = $effect;
            const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

            fn validate(&self) -> Result<(), ConfigError> {
                validate_common(&self.api_token, self.droplet_id, &self.api_base_url, self.timeout_ms)
                    .map(drop)
            }

            fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
                let base = validate_common(
                    &self.api_token,
                    self.droplet_id,
                    &self.api_base_url,
                    self.timeout_ms,
                )?;
                Ok(Box::new(ActionReaction::new(
                    $name,
                    $effect,
                    context,
                    &self.api_token,
                    &base,
                    &format!("v2/droplets/{}/actions", self.droplet_id),
                    Box::new(serde_json::json!({"type": $action})),
                    self.timeout_ms,
                )))
            }
        }
    };
}

droplet_action_type!(
    /// Config of `digitalocean-reboot`: a graceful reboot, like `reboot` on the console.
    RebootConfig,
    "digitalocean-reboot",
    "reboot",
    Effect::Destructive,
    "reboot a DigitalOcean droplet gracefully"
);

droplet_action_type!(
    /// Config of `digitalocean-powercycle`: a hard reset, like the reset button.
    PowercycleConfig,
    "digitalocean-powercycle",
    "power_cycle",
    Effect::Destructive,
    "power cycle a DigitalOcean droplet (a hard reset)"
);

droplet_action_type!(
    /// Config of `digitalocean-poweron`: powers a droplet on.
    PoweronConfig,
    "digitalocean-poweron",
    "power_on",
    Effect::Idempotent,
    "power on a DigitalOcean droplet"
);

droplet_action_type!(
    /// Config of `digitalocean-poweroff`: a hard power off, like pulling the plug.
    PoweroffConfig,
    "digitalocean-poweroff",
    "power_off",
    Effect::Destructive,
    "power off a DigitalOcean droplet (a hard shutdown)"
);

droplet_action_type!(
    /// Config of `digitalocean-shutdown`: a graceful shutdown, like `shutdown` on the console
    /// (issued, not guaranteed to succeed).
    ShutdownConfig,
    "digitalocean-shutdown",
    "shutdown",
    Effect::Destructive,
    "shut a DigitalOcean droplet down gracefully"
);

#[cfg(test)]
#[path = "digitalocean_tests.rs"]
pub(crate) mod tests;
