//! `digitalocean-assign-floatingip`: move a floating (reserved) IP to a droplet, e.g. a standby
//! (`POST /v2/floating_ips/{ip}/actions` with `{"type": "assign", "droplet_id": N}`,
//! <https://docs.digitalocean.com/reference/api/api-reference/#operation/floatingIPsAction_post>).
//!
//! Idempotent: assigning the IP to the droplet it already points at changes nothing.

use std::net::Ipv4Addr;

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::api;
use crate::digitalocean::{ActionReaction, SECRET_FIELDS, default_api_base_url, validate_common};
use crate::{ConfigError, Effect, Reaction, ReactionContext, ReactionType};

const KIND: &str = "digitalocean-assign-floatingip";

/// Config of a `digitalocean-assign-floatingip` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DigitalOcean API token (personal access token with `reserved_ip:update` and
    /// `droplet:read`); write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub api_token: Secret,
    /// The floating IP to move, an IPv4 address such as `45.55.96.47`.
    pub floating_ip: String,
    /// The numeric id of the droplet that receives the IP.
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

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str = "assign a DigitalOcean floating IP to a droplet";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(drop)
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let (base, ip) = self.checked()?;
        Ok(Box::new(ActionReaction::new(
            KIND,
            Self::EFFECT,
            context,
            &self.api_token,
            &base,
            &format!("v2/floating_ips/{ip}/actions"),
            Box::new(serde_json::json!({"type": "assign", "droplet_id": self.droplet_id})),
            self.timeout_ms,
        )))
    }
}

impl Config {
    /// Checks every field and returns the base URL and the IP.
    fn checked(&self) -> Result<(url::Url, Ipv4Addr), ConfigError> {
        let base =
            validate_common(&self.api_token, self.droplet_id, &self.api_base_url, self.timeout_ms)?;
        let ip: Ipv4Addr = self.floating_ip.parse().map_err(|_| {
            let message = "must be an ipv4 address such as 45.55.96.47 (floating ips are ipv4)";
            ConfigError::invalid("floating_ip", message)
        })?;
        if ip.is_unspecified() || ip.is_loopback() || ip.is_private() || ip.is_broadcast() {
            let message = format!("`{ip}` is not a public address, which floating ips are");
            return Err(ConfigError::invalid("floating_ip", message));
        }
        Ok((base, ip))
    }
}

#[cfg(test)]
#[path = "digitalocean_assign_floatingip_tests.rs"]
mod tests;
