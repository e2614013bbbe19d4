//! `cloudflare-rec-update`: set the content (and, when given, the TTL and proxy status) of a
//! Cloudflare zone's DNS record of a name and type.
//!
//! The record is looked up (`GET zones/{zone_id}/dns_records?type=&name=`) and, unless it
//! already holds those values, edited in place (`PATCH zones/{zone_id}/dns_records/{id}` with
//! the changed fields only, so its comment and tags stay). Setting a value twice changes
//! nothing: [`Effect::Idempotent`]. It never creates a record (that is `cloudflare-rec-add`)
//! and refuses a name and type held by several records, which one value cannot describe.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::cloudflare::{self, Access, Client, DnsRecord, RecordType, same_content, same_name};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
    api,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["api_token", "api_key"];

const KIND: &str = "cloudflare-rec-update";

/// Config of a `cloudflare-rec-update` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The zone's id (32 hex digits, on the zone's overview page).
    #[schemars(length(min = 32, max = 32))]
    pub zone_id: String,
    /// Fully qualified name of the record to change, e.g. `www.example.com`.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Record type: A, AAAA, CNAME, MX, NS, PTR or TXT.
    pub record_type: RecordType,
    /// The new content: an address for A/AAAA, a host name for CNAME/MX/NS/PTR, text for TXT.
    #[schemars(length(min = 1))]
    pub content: String,
    /// New time to live in seconds: 1 (automatic) or 30 to 86400; none: unchanged.
    #[serde(default)]
    #[schemars(range(min = 1, max = 86_400))]
    pub ttl: Option<u32>,
    /// Whether Cloudflare proxies the record (A, AAAA and CNAME only); none: unchanged.
    #[serde(default)]
    pub proxied: Option<bool>,
    /// New priority of an MX record, 0 to 65535; none: unchanged.
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
        "set the content, and optionally ttl and proxy status, of a cloudflare dns record";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.access().validate()?;
        self.content()?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(RecUpdateReaction::new(self, context)?))
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
        cloudflare::validate_record(
            &self.name,
            self.record_type,
            &self.content,
            self.ttl,
            self.proxied,
            self.priority,
        )
    }
}

/// A runnable `cloudflare-rec-update` reaction.
#[derive(Debug)]
pub struct RecUpdateReaction {
    client: Client,
    zone_id: String,
    name: String,
    record_type: RecordType,
    content: String,
    ttl: Option<u32>,
    proxied: Option<bool>,
    priority: Option<u16>,
}

impl RecUpdateReaction {
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
}

impl RecUpdateReaction {
    /// Returns the `PATCH` body of the fields `record` does not hold yet, and each change
    /// described (`content 192.0.2.1 → 192.0.2.2`).
    fn changes(&self, record: &DnsRecord) -> (serde_json::Value, Vec<String>) {
        let mut body = json!({});
        let mut changes = Vec::new();
        let shown = |value: Option<String>| value.unwrap_or_else(|| "unset".into());
        if !same_content(self.record_type.as_str(), &record.content, &self.content) {
            body["content"] = self.content.clone().into();
            changes.push(format!("content {} → {}", record.content, self.content));
        }
        if let Some(ttl) = self.ttl.filter(|ttl| record.ttl != Some(*ttl)) {
            body["ttl"] = ttl.into();
            changes.push(format!("ttl {} → {ttl}", shown(record.ttl.map(|t| t.to_string()))));
        }
        if let Some(proxied) = self.proxied.filter(|p| record.proxied != Some(*p)) {
            body["proxied"] = proxied.into();
            let was = shown(record.proxied.map(|p| p.to_string()));
            changes.push(format!("proxied {was} → {proxied}"));
        }
        if let Some(priority) = self.priority.filter(|p| record.priority != Some(*p)) {
            body["priority"] = priority.into();
            let was = shown(record.priority.map(|p| p.to_string()));
            changes.push(format!("priority {was} → {priority}"));
        }
        (body, changes)
    }
}

#[async_trait::async_trait]
impl Reaction for RecUpdateReaction {
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
        let mut matching: Vec<_> = listed
            .into_iter()
            .filter(|r| r.record_type == record_type && same_name(&r.name, &self.name))
            .collect();
        let record = match matching.len() {
            0 => {
                return Ok(Fired::Skipped(format!(
                    "no {record_type} record named {} in zone {}: nothing to update",
                    self.name, self.zone_id
                )));
            }
            1 => matching.remove(0),
            several => {
                return Err(ReactionError::Failed {
                    kind: KIND,
                    message: format!(
                        "{several} {record_type} records are named {}: cloudflare-rec-update \
                         sets one record, use cloudflare-rec-remove and cloudflare-rec-add",
                        self.name
                    ),
                });
            }
        };
        let (body, changes) = self.changes(&record);
        let label = record.label();
        if changes.is_empty() {
            return Ok(Fired::Skipped(format!("{label} already holds {}", self.content)));
        }
        self.client.patch_record(&self.zone_id, &record.id, body).await?;
        Ok(Fired::Executed(format!(
            "updated {label} (record {}): {}",
            record.id,
            changes.join(", ")
        )))
    }
}

#[cfg(test)]
#[path = "cloudflare_rec_update_tests.rs"]
mod tests;
