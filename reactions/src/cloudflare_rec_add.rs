//! `cloudflare-rec-add`: add a DNS record to a Cloudflare zone, unless it is already there.
//!
//! The zone's records of that name and type are listed first
//! (`GET zones/{zone_id}/dns_records?type=&name=`); only when none has the content is the
//! record created (`POST zones/{zone_id}/dns_records` with `type`, `name`, `content`, `ttl`,
//! `proxied`, and `priority` for MX). A repeat run finds it: [`Effect::Idempotent`].

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::cloudflare::{self, Access, Client, RecordType, same_content, same_name};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
    api,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["api_token", "api_key"];

const KIND: &str = "cloudflare-rec-add";

fn default_ttl() -> u32 {
    1
}

/// Config of a `cloudflare-rec-add` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The zone's id (32 hex digits, on the zone's overview page).
    #[schemars(length(min = 32, max = 32))]
    pub zone_id: String,
    /// Fully qualified record name, e.g. `www.example.com`.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Record type: A, AAAA, CNAME, MX, NS, PTR or TXT.
    pub record_type: RecordType,
    /// Record content: an address for A/AAAA, a host name for CNAME/MX/NS/PTR, text for TXT.
    #[schemars(length(min = 1))]
    pub content: String,
    /// Time to live in seconds: 1 (automatic, the default) or 30 to 86400.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1, max = 86_400))]
    pub ttl: u32,
    /// Whether Cloudflare proxies the record (A, AAAA and CNAME only); default false.
    #[serde(default)]
    pub proxied: bool,
    /// Priority of an MX record (required for MX), 0 to 65535.
    #[serde(default)]
    pub priority: Option<u16>,
    /// A Cloudflare API token with DNS edit permission on the zone (write-only); or give
    /// `email` and `api_key` instead.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub api_token: Option<Secret>,
    /// The account's email, with `api_key` (legacy auth, instead of `api_token`).
    #[serde(default)]
    pub email: Option<String>,
    /// The account's Global API key, with `email` (legacy auth; write-only).
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub api_key: Option<Secret>,
    /// Base URL of the Cloudflare API (a proxy or a compatible API).
    #[serde(default = "cloudflare::default_api_base_url")]
    #[schemars(url)]
    pub api_base_url: String,
    /// Milliseconds to wait for each API answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "add a dns record to a cloudflare zone unless one with that name, type and content exists";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.access().validate()?;
        self.content()?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(RecAddReaction::new(self, context)?))
    }
}

impl Config {
    fn access(&self) -> Access<'_> {
        Access {
            zone_id: &self.zone_id,
            api_token: self.api_token.as_ref(),
            email: self.email.as_deref(),
            api_key: self.api_key.as_ref(),
            api_base_url: &self.api_base_url,
            timeout_ms: self.timeout_ms,
        }
    }

    /// Checks the record fields and returns the content as sent.
    fn content(&self) -> Result<String, ConfigError> {
        let content = cloudflare::validate_record(
            &self.name,
            self.record_type,
            &self.content,
            Some(self.ttl),
            Some(self.proxied),
            self.priority,
        )?;
        if self.record_type == RecordType::Mx && self.priority.is_none() {
            return Err(ConfigError::invalid("priority", "is required for an MX record"));
        }
        Ok(content)
    }
}

/// A runnable `cloudflare-rec-add` reaction.
#[derive(Debug)]
pub struct RecAddReaction {
    client: Client,
    zone_id: String,
    name: String,
    record_type: RecordType,
    content: String,
    ttl: u32,
    proxied: bool,
    priority: Option<u16>,
}

impl RecAddReaction {
    /// Validates `config` and builds the reaction on the node's HTTP client.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config, context: &ReactionContext) -> Result<Self, ConfigError> {
        Ok(Self {
            client: config.access().client(KIND, context)?,
            content: config.content()?,
            zone_id: config.zone_id.clone(),
            name: config.name.clone(),
            record_type: config.record_type,
            ttl: config.ttl,
            proxied: config.proxied,
            priority: config.priority,
        })
    }

    fn request_body(&self) -> serde_json::Value {
        let mut body = json!({
            "type": self.record_type.as_str(),
            "name": self.name,
            "content": self.content,
            "ttl": self.ttl,
        });
        if self.record_type.proxiable() {
            body["proxied"] = self.proxied.into();
        }
        if let Some(priority) = self.priority {
            body["priority"] = priority.into();
        }
        body
    }
}

#[async_trait::async_trait]
impl Reaction for RecAddReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let record_type = self.record_type.as_str();
        let label = format!("{record_type} {} {}", self.name, self.content);
        let filter = [("type", record_type), ("name", self.name.as_str())];
        let listed = self.client.list_records(&self.zone_id, &filter).await?;
        let existing = listed.iter().find(|r| {
            r.record_type == record_type
                && same_name(&r.name, &self.name)
                && same_content(record_type, &r.content, &self.content)
        });
        if let Some(existing) = existing {
            return Ok(Fired::Skipped(format!("{label} already exists (record {})", existing.id)));
        }
        Ok(match self.client.create_record(&self.zone_id, self.request_body()).await? {
            Some(created) => Fired::Executed(format!("created {label} (record {})", created.id)),
            None => Fired::Skipped(format!(
                "{label} already exists (an identical record, says the api)"
            )),
        })
    }
}

#[cfg(test)]
#[path = "cloudflare_rec_add_tests.rs"]
mod tests;
