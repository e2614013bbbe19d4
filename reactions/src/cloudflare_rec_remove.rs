//! `cloudflare-rec-remove`: delete a Cloudflare zone's DNS records of a name and type (and
//! content, when given).
//!
//! The matching records are listed (`GET zones/{zone_id}/dns_records?type=&name=`), then each
//! is deleted (`DELETE zones/{zone_id}/dns_records/{id}`). A repeat run finds none and skips:
//! [`Effect::Idempotent`].

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::cloudflare::{self, Access, Client, RecordType, list_labels, same_content, same_name};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
    api,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["api_token", "api_key"];

const KIND: &str = "cloudflare-rec-remove";

/// Config of a `cloudflare-rec-remove` reaction.
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
    /// Only the record with this content (e.g. one address of several); none: every record
    /// of the name and type.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub content: Option<String>,
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
        "delete a cloudflare zone's dns records of a name and type, and content when given";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.access().validate()?;
        self.content()?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(RecRemoveReaction::new(self, context)?))
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

    /// Checks the record fields and returns the content to match, if any.
    fn content(&self) -> Result<Option<String>, ConfigError> {
        cloudflare::validate_name("name", &self.name)?;
        self.content.as_deref().map(|c| self.record_type.content("content", c)).transpose()
    }
}

/// A runnable `cloudflare-rec-remove` reaction.
#[derive(Debug)]
pub struct RecRemoveReaction {
    client: Client,
    zone_id: String,
    name: String,
    record_type: RecordType,
    content: Option<String>,
}

impl RecRemoveReaction {
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
        })
    }
}

#[async_trait::async_trait]
impl Reaction for RecRemoveReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let record_type = self.record_type.as_str();
        let filter = [("type", record_type), ("name", self.name.as_str())];
        let listed = self.client.list_records(&self.zone_id, &filter).await?;
        let doomed: Vec<_> = listed
            .into_iter()
            .filter(|r| r.record_type == record_type && same_name(&r.name, &self.name))
            .filter(|r| {
                self.content.as_deref().is_none_or(|c| same_content(record_type, &r.content, c))
            })
            .collect();
        if doomed.is_empty() {
            let with = self.content.as_deref().map(|c| format!(" with content {c}"));
            return Ok(Fired::Skipped(format!(
                "no {record_type} record named {}{} in zone {}: nothing to delete",
                self.name,
                with.unwrap_or_default(),
                self.zone_id
            )));
        }
        let mut deleted = Vec::new();
        for record in &doomed {
            self.client.delete_record(&self.zone_id, &record.id).await?;
            deleted.push(format!("{} {}", record.label(), record.content));
        }
        Ok(Fired::Executed(format!("deleted {}: {}", deleted.len(), list_labels(&deleted))))
    }
}

#[cfg(test)]
#[path = "cloudflare_rec_remove_tests.rs"]
mod tests;
