//! `cloudflare-dns-failover`: when the monitor fails, point the zone's A (or AAAA) records
//! that hold `failed_ip` at `standby_ip`; when it is healthy again, point exactly those
//! records back (automatic failback) or leave them (manual failback).
//!
//! What was switched is kept in the node's notes under
//! `cloudflare-dns-failover/{reaction}/{monitor}`: each record's id, name, type, old and new
//! content. The note is written before the first change, so a run cut short still knows what
//! it may have changed, and updated after. Failback restores only remembered records that
//! still hold the standby address; a record deleted meanwhile, or changed by someone to a
//! third value, is left alone and named in the detail.
//!
//! Failover answers failed incidents and failback healthy ones, so the reaction wants
//! `"call_on": "both"`. Both directions are [`Effect::Idempotent`]: a repeat failover finds
//! no record still on `failed_ip`, a repeat failback finds no note.

use std::net::IpAddr;
use std::sync::Arc;

use cloudroutes_engine::Status;
use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cloudflare::{self, Access, Client, DnsRecord, list_labels, same_content, same_name};
use crate::{
    ConfigError, Effect, Fired, Incident, Notes, Reaction, ReactionContext, ReactionError,
    ReactionType, api,
};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["api_token", "api_key"];

const KIND: &str = "cloudflare-dns-failover";

/// What happens to the switched records once the monitor is healthy again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Failback {
    /// Point the records back at the failed address.
    #[default]
    Automatic,
    /// Leave them on the standby address until someone changes them.
    Manual,
}

/// Config of a `cloudflare-dns-failover` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The zone's id (32 hex digits, on the zone's overview page).
    #[schemars(length(min = 32, max = 32))]
    pub zone_id: String,
    /// The address that failed: records holding it are switched.
    pub failed_ip: String,
    /// The address they are switched to; same family (IPv4 or IPv6) as `failed_ip`.
    pub standby_ip: String,
    /// Only records with these fully qualified names (e.g. `www.example.com`); empty: every
    /// A/AAAA record of the zone holding `failed_ip`.
    #[serde(default)]
    pub names: Vec<String>,
    /// `automatic` (default): switch the records back once the monitor is healthy (with
    /// `call_on` `both`); `manual`: leave them on `standby_ip`.
    #[serde(default)]
    pub failback: Failback,
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
    const DESCRIPTION: &'static str = "on failure point a cloudflare zone's A/AAAA records from the failed address to a standby, and back on recovery";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.access().validate()?;
        self.addresses()?;
        for (index, name) in self.names.iter().enumerate() {
            cloudflare::validate_name(&format!("names[{index}]"), name)?;
        }
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(DnsFailoverReaction::new(self, context)?))
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

    /// Returns the failed and standby addresses.
    fn addresses(&self) -> Result<(IpAddr, IpAddr), ConfigError> {
        let failed: IpAddr = self
            .failed_ip
            .parse()
            .map_err(|_| ConfigError::invalid("failed_ip", "must be an ipv4 or ipv6 address"))?;
        let standby: IpAddr = self
            .standby_ip
            .parse()
            .map_err(|_| ConfigError::invalid("standby_ip", "must be an ipv4 or ipv6 address"))?;
        if failed.is_ipv4() != standby.is_ipv4() {
            let message = "must be of the same family (ipv4 or ipv6) as failed_ip";
            return Err(ConfigError::invalid("standby_ip", message));
        }
        if failed == standby {
            return Err(ConfigError::invalid("standby_ip", "must differ from failed_ip"));
        }
        Ok((failed, standby))
    }
}

/// One record a failover switched (or was about to), as the note keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switched {
    /// Zone of the record.
    pub zone_id: String,
    /// Record id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `A` or `AAAA`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// Its content before the failover.
    pub old_content: String,
    /// The standby address it was switched to.
    pub new_content: String,
    /// `false` while the change is under way: it may or may not have happened.
    pub done: bool,
}

/// The note of one reaction on one monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The records switched and not yet restored.
    pub records: Vec<Switched>,
}

/// A runnable `cloudflare-dns-failover` reaction.
#[derive(Debug)]
pub struct DnsFailoverReaction {
    client: Client,
    notes: Arc<dyn Notes>,
    zone_id: String,
    failed: IpAddr,
    standby: IpAddr,
    names: Vec<String>,
    failback: Failback,
}

impl DnsFailoverReaction {
    /// Validates `config` and builds the reaction on the node's HTTP client and notes.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config, context: &ReactionContext) -> Result<Self, ConfigError> {
        config.validate()?;
        let (failed, standby) = config.addresses()?;
        Ok(Self {
            client: config.access().client(KIND, context)?,
            notes: Arc::clone(&context.notes),
            zone_id: config.zone_id.clone(),
            failed,
            standby,
            names: config.names.clone(),
            failback: config.failback,
        })
    }

    fn record_type(&self) -> &'static str {
        if self.failed.is_ipv4() { "A" } else { "AAAA" }
    }

    async fn load_note(&self, key: &str) -> Result<Note, ReactionError> {
        match self.notes.get(key).await? {
            None => Ok(Note::default()),
            Some(value) => serde_json::from_value(value).map_err(|error| ReactionError::Failed {
                kind: KIND,
                message: format!("note `{key}` is unreadable ({error}): fix or delete it"),
            }),
        }
    }

    async fn save_note(&self, key: &str, note: &Note) -> Result<(), ReactionError> {
        if note.records.is_empty() {
            return self.notes.delete(key).await;
        }
        let value = serde_json::to_value(note).map_err(|error| ReactionError::Failed {
            kind: KIND,
            message: format!("note `{key}` cannot be written: {error}"),
        })?;
        self.notes.put(key, &value).await
    }

    /// Returns the zone's records of the failed address's type that hold it (and carry one
    /// of `names`, when given).
    async fn records_on_failed_ip(&self) -> Result<Vec<DnsRecord>, ReactionError> {
        let record_type = self.record_type();
        let failed = self.failed.to_string();
        let filter = [("type", record_type), ("content", failed.as_str())];
        let listed = self.client.list_records(&self.zone_id, &filter).await?;
        // The filter is the API's; checking again keeps a lax compatible API from widening it.
        Ok(listed
            .into_iter()
            .filter(|r| {
                r.record_type == record_type && same_content(record_type, &r.content, &failed)
            })
            .filter(|r| self.names.is_empty() || self.names.iter().any(|n| same_name(n, &r.name)))
            .collect())
    }

    async fn fail_over(&self, key: &str) -> Result<Fired, ReactionError> {
        let mut note = self.load_note(key).await?;
        let found = self.records_on_failed_ip().await?;
        let (record_type, failed, standby) = (self.record_type(), self.failed, self.standby);
        if found.is_empty() {
            let named = if self.names.is_empty() {
                String::new()
            } else {
                format!(" named {}", self.names.join(", "))
            };
            let mut reason =
                format!("no {record_type} record{named} in zone {} holds {failed}", self.zone_id);
            if !note.records.is_empty() {
                let switched = note.records.len();
                reason.push_str(&format!(
                    " any more; {switched} switched earlier are remembered for failback"
                ));
            }
            return Ok(Fired::Skipped(reason));
        }
        for record in &found {
            note.records.retain(|kept| kept.id != record.id);
            note.records.push(Switched {
                zone_id: self.zone_id.clone(),
                id: record.id.clone(),
                name: record.name.clone(),
                record_type: record.record_type.clone(),
                old_content: record.content.clone(),
                new_content: standby.to_string(),
                done: false,
            });
        }
        // Remember first: a run cut short after a change must still be able to undo it.
        self.save_note(key, &note).await?;
        for record in &found {
            let body = json!({"content": standby.to_string()});
            if let Err(error) = self.client.patch_record(&self.zone_id, &record.id, body).await {
                // What finished is kept; the failed one stays unfinished (it may have landed).
                let _ = self.save_note(key, &note).await;
                return Err(error);
            }
            if let Some(kept) = note.records.iter_mut().find(|kept| kept.id == record.id) {
                kept.done = true;
            }
        }
        self.save_note(key, &note).await?;
        let labels: Vec<String> = found.iter().map(|r| r.name.clone()).collect();
        Ok(Fired::Executed(format!(
            "switched {} {record_type} record(s) from {failed} to {standby}: {}",
            found.len(),
            list_labels(&labels)
        )))
    }

    async fn fail_back(&self, key: &str) -> Result<Fired, ReactionError> {
        if self.failback == Failback::Manual {
            return Ok(Fired::Skipped(format!(
                "failback is manual: records switched to {} stay until changed by hand",
                self.standby
            )));
        }
        let mut note = self.load_note(key).await?;
        if note.records.is_empty() {
            return Ok(Fired::Skipped("no switched records remembered: nothing to restore".into()));
        }
        let (mut restored, mut unchanged, mut gone, mut left) = (vec![], vec![], vec![], vec![]);
        while let Some(entry) = note.records.first().cloned() {
            let label = format!("{} {}", entry.record_type, entry.name);
            let current = match self.client.get_record(&entry.zone_id, &entry.id).await {
                Ok(current) => current,
                Err(error) => {
                    let _ = self.save_note(key, &note).await;
                    return Err(error);
                }
            };
            match current {
                None => gone.push(label),
                Some(record)
                    if same_content(&entry.record_type, &record.content, &entry.old_content) =>
                {
                    unchanged.push(label);
                }
                Some(record)
                    if same_content(&entry.record_type, &record.content, &entry.new_content) =>
                {
                    let body = json!({"content": entry.old_content});
                    if let Err(error) =
                        self.client.patch_record(&entry.zone_id, &entry.id, body).await
                    {
                        let _ = self.save_note(key, &note).await;
                        return Err(error);
                    }
                    restored.push(format!("{label} to {}", entry.old_content));
                }
                Some(record) => left.push(format!("{label} (now {})", record.content)),
            }
            note.records.remove(0);
        }
        self.notes.delete(key).await?;
        let mut parts = Vec::new();
        if !restored.is_empty() {
            parts.push(format!("restored {}: {}", restored.len(), list_labels(&restored)));
        }
        if !left.is_empty() {
            parts.push(format!("left alone, changed by someone else: {}", list_labels(&left)));
        }
        if !gone.is_empty() {
            parts.push(format!("no longer exist: {}", list_labels(&gone)));
        }
        if !unchanged.is_empty() {
            parts.push(format!("already on the old address: {}", list_labels(&unchanged)));
        }
        let detail = parts.join("; ");
        Ok(if restored.is_empty() { Fired::Skipped(detail) } else { Fired::Executed(detail) })
    }
}

/// Returns the note key of `incident`'s reaction and monitor.
pub fn note_key(incident: &Incident) -> String {
    format!("{KIND}/{}/{}", incident.reaction_id.as_str(), incident.monitor_id.as_str())
}

#[async_trait::async_trait]
impl Reaction for DnsFailoverReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError> {
        let key = note_key(incident);
        match incident.status {
            Status::Failed => self.fail_over(&key).await,
            Status::Healthy => self.fail_back(&key).await,
            Status::Unknown => {
                Ok(Fired::Skipped("monitor status is unknown: nothing to fail over or back".into()))
            }
        }
    }
}

#[cfg(test)]
#[path = "cloudflare_dns_failover_tests.rs"]
mod tests;
