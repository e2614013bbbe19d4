//! Linode power actions through API v4: `linode-reboot`, `linode-boot` and `linode-shutdown`,
//! one small config each from the local `linode_action_type!` macro.
//!
//! Each run is one `POST /v4/linode/instances/{linode_id}/{action}` with a bearer token and an
//! empty JSON object (the optional `config_id` is left to Linode's choice); Linode answers
//! 200 `{}` once the job is queued. Errors come as `{"errors": [{"reason", "field"}]}`.
//! Reference: <https://techdocs.akamai.com/linode-api/reference/post-reboot-linode-instance>,
//! `post-boot-linode-instance` and `post-shutdown-linode-instance` beside it.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::api::{self, ApiCall, Body};
use crate::{ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError};

/// The real API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.linode.com";

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["api_token"];

/// Serde default of `api_base_url`.
pub fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.into()
}

/// Checks every field of a Linode type in declared order and returns the base URL.
fn validate(
    api_token: &Secret,
    linode_id: u64,
    api_base_url: &str,
    timeout_ms: u64,
) -> Result<Url, ConfigError> {
    api::validate_token("api_token", api_token.expose())?;
    if linode_id == 0 {
        return Err(ConfigError::invalid("linode_id", "must be a linode id of 1 or more"));
    }
    let base = api::parse_base_url(api_base_url)?;
    api::validate_timeout_ms(timeout_ms)?;
    Ok(base)
}

/// A runnable Linode power action.
#[derive(Debug)]
pub struct LinodeActionReaction {
    kind: &'static str,
    effect: Effect,
    action: &'static str,
    linode_id: u64,
    http: crate::egress::GuardedClient,
    api_token: Secret,
    url: Url,
    timeout_ms: u64,
}

#[async_trait::async_trait]
impl Reaction for LinodeActionReaction {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn effect(&self) -> Effect {
        self.effect
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let answer = ApiCall::new(
            self.kind,
            &self.http,
            reqwest::Method::POST,
            self.url.clone(),
            self.timeout_ms,
        )
        .bearer(self.api_token.expose())
        .body(Body::Json(serde_json::json!({})))
        .send()
        .await
        .map_err(|error| api::quote_message(error, api_message))?;
        let (action, linode_id) = (self.action, self.linode_id);
        Ok(Fired::Executed(format!(
            "HTTP {}, {action} of linode {linode_id} queued",
            answer.status
        )))
    }
}

/// Joins the reasons of a Linode error body (`{"errors": [{"reason": …, "field": …}]}`), each
/// prefixed with its field when it names one.
pub fn api_message(json: &serde_json::Value) -> Option<String> {
    let reasons: Vec<String> = json["errors"]
        .as_array()?
        .iter()
        .filter_map(|error| {
            let reason = error["reason"].as_str()?;
            Some(match error["field"].as_str() {
                Some(field) => format!("{field}: {reason}"),
                None => reason.to_owned(),
            })
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Declares the config of a Linode power action: its struct, [`crate::ReactionType`] impl and
/// the endpoint it POSTs to.
macro_rules! linode_action_type {
    ($(#[$doc:meta])* $config:ident, $name:literal, $action:literal, $effect:expr, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $config {
            /// Linode API personal access token (`linodes:read_write`); write-only.
            #[schemars(with = "String", extend("writeOnly" = true))]
            pub api_token: Secret,
            /// The Linode's numeric id.
            #[schemars(range(min = 1))]
            pub linode_id: u64,
            /// Base URL of the Linode API (a proxy or a compatible API).
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
                validate(&self.api_token, self.linode_id, &self.api_base_url, self.timeout_ms)
                    .map(drop)
            }

            fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
                let base =
                    validate(&self.api_token, self.linode_id, &self.api_base_url, self.timeout_ms)?;
                let path = format!("v4/linode/instances/{}/{}", self.linode_id, $action);
                Ok(Box::new(LinodeActionReaction {
                    kind: $name,
                    effect: $effect,
                    action: $action,
                    linode_id: self.linode_id,
                    http: context.http.clone(),
                    api_token: self.api_token.clone(),
                    url: api::endpoint(&base, &path),
                    timeout_ms: self.timeout_ms,
                }))
            }
        }
    };
}

linode_action_type!(
    /// Config of `linode-reboot`: shuts a Linode down and boots it again.
    RebootConfig,
    "linode-reboot",
    "reboot",
    Effect::Destructive,
    "reboot a Linode"
);

linode_action_type!(
    /// Config of `linode-boot`: boots a Linode that is off.
    BootConfig,
    "linode-boot",
    "boot",
    Effect::Idempotent,
    "boot a Linode"
);

linode_action_type!(
    /// Config of `linode-shutdown`: shuts a Linode down.
    ShutdownConfig,
    "linode-shutdown",
    "shutdown",
    Effect::Destructive,
    "shut a Linode down"
);

#[cfg(test)]
#[path = "linode_tests.rs"]
mod tests;
