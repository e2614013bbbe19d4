//! [`SealedStore`]: a [`Store`] decorator that seals the secret fields of monitor `check` and
//! reaction `action` objects, each monitor's webhook key and every reaction note on write and
//! opens them on read, so that neither the embedded file nor Redis ever holds a credential in
//! plain text. Only the store's own key-check note ([`KEY_CHECK_NOTE`]) is passed through: it
//! is read before the key is known to be right, and holds a sealed value of its own.
//!
//! Which fields are secret is told by the node ([`SecretFields`], from the check and reaction
//! registries). Each field's JSON value is sealed whole (a string, or an object such as
//! `headers`) with the record's id and the field's path as associated data. A value stored
//! before sealing existed is read as it is and sealed on the next write (or by
//! [`SealedStore::reseal`], which covers webhook keys too; a plain note is sealed when its
//! reaction next writes it).

use std::time::Duration;

use async_trait::async_trait;

use super::{Recorded, Store, Transition};
use crate::access::{ApiToken, AuditEntry};
use crate::cluster::{Acquired, Coordinator, Lease, Member, OpenClaim, PartitionVersion};
use crate::error::StoreError;
use crate::model::{Event, Monitor, MonitorId, MonitorState, PluginSpec, Reaction, ReactionId};
use crate::seal::{SealError, SealKey, is_sealed};

mod values;

/// The secret fields of a plugin type, by type name (none for an unknown type).
pub type FieldsOf = fn(&str) -> &'static [&'static str];

/// Where the secret fields of checks and reactions are declared.
#[derive(Debug, Clone, Copy)]
pub struct SecretFields {
    /// Secret fields of a check type.
    pub check: FieldsOf,
    /// Secret fields of a reaction type.
    pub action: FieldsOf,
}

/// The note key under which a value sealed with the store's key is kept, to tell a wrong key
/// at startup.
pub const KEY_CHECK_NOTE: &str = "secrets:key-check";
const KEY_CHECK_CONTEXT: &str = "note/secrets:key-check";
const KEY_CHECK_TEXT: &[u8] = b"cloudroutes secrets key check";

/// A store whose secret fields are sealed at rest.
#[derive(Debug)]
pub struct SealedStore<S> {
    inner: S,
    key: SealKey,
    fields: SecretFields,
}

/// Returns the associated data of one field: `monitor/<id>/check.<field>`.
fn context(kind: &str, id: &str, object: &str, field: &str) -> String {
    format!("{kind}/{id}/{object}.{field}")
}

fn seal_spec(key: &SealKey, spec: &mut PluginSpec, fields: &[&str], place: (&str, &str, &str)) {
    let (kind, id, object) = place;
    for field in fields {
        if let Some(value) = spec.0.get_mut(*field).filter(|value| !value.is_null()) {
            let json = serde_json::to_vec(value).unwrap_or_default();
            *value = key.seal(&json, &context(kind, id, object, field)).into();
        }
    }
}

fn open_spec(
    key: &SealKey,
    spec: &mut PluginSpec,
    fields: &[&str],
    place: (&'static str, &str, &str),
) -> Result<(), StoreError> {
    let (kind, id, object) = place;
    for field in fields {
        let Some(value) = spec.0.get_mut(*field) else { continue };
        let Some(sealed) = value.as_str().filter(|text| is_sealed(text)) else { continue };
        let corrupt = |error: String| StoreError::Corrupt {
            what: kind,
            key: id.to_owned(),
            message: format!("secret field `{object}.{field}`: {error}"),
        };
        let json = key
            .open(sealed, &context(kind, id, object, field))
            .map_err(|error| corrupt(error.to_string()))?;
        *value = serde_json::from_slice(&json).map_err(|error| corrupt(error.to_string()))?;
    }
    Ok(())
}

/// Returns whether a secret field of `spec` holds a value that is not sealed.
fn has_plaintext(spec: &PluginSpec, fields: &[&str]) -> bool {
    fields.iter().any(|field| match spec.0.get(*field) {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::String(text)) => !is_sealed(text),
        Some(_) => true,
    })
}

impl<S> SealedStore<S> {
    /// Wraps `inner`, sealing with `key` the fields `fields` names.
    pub fn new(inner: S, key: SealKey, fields: SecretFields) -> Self {
        Self { inner, key, fields }
    }

    /// Returns the wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn seal_monitor(&self, monitor: &Monitor) -> Monitor {
        let mut sealed = monitor.clone();
        let fields = (self.fields.check)(sealed.check.kind());
        seal_spec(&self.key, &mut sealed.check, fields, ("monitor", &monitor.id.0, "check"));
        values::seal_webhook_key(&self.key, &mut sealed);
        sealed
    }

    fn open_monitor(&self, mut monitor: Monitor) -> Result<Monitor, StoreError> {
        let fields = (self.fields.check)(monitor.check.kind());
        let id = monitor.id.0.clone();
        open_spec(&self.key, &mut monitor.check, fields, ("monitor", &id, "check"))?;
        values::open_webhook_key(&self.key, &mut monitor)?;
        Ok(monitor)
    }

    fn seal_reaction(&self, reaction: &Reaction) -> Reaction {
        let mut sealed = reaction.clone();
        let fields = (self.fields.action)(sealed.action.kind());
        seal_spec(&self.key, &mut sealed.action, fields, ("reaction", &reaction.id.0, "action"));
        sealed
    }

    fn open_reaction(&self, mut reaction: Reaction) -> Result<Reaction, StoreError> {
        let fields = (self.fields.action)(reaction.action.kind());
        let id = reaction.id.0.clone();
        open_spec(&self.key, &mut reaction.action, fields, ("reaction", &id, "action"))?;
        Ok(reaction)
    }
}

/// What [`SealedStore::check_key`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The store had no key check yet; one sealed with this key was written.
    Recorded,
    /// The store's key check opened with this key.
    Matches,
}

impl<S: Store> SealedStore<S> {
    /// Checks that this key is the one that sealed the store's secrets, by opening a value
    /// sealed at the first start (and writing it when there is none).
    ///
    /// # Errors
    /// [`SealError::Open`] (as a `StoreError::Corrupt` naming the key check) for a wrong key;
    /// a store failure.
    pub async fn check_key(&self) -> Result<KeyCheck, StoreError> {
        let stored = self.inner.get_note(KEY_CHECK_NOTE).await?;
        let wrong = |error: SealError| StoreError::Corrupt {
            what: "note",
            key: KEY_CHECK_NOTE.to_owned(),
            message: error.to_string(),
        };
        match stored.as_ref().and_then(serde_json::Value::as_str) {
            Some(sealed) => {
                let text = self.key.open(sealed, KEY_CHECK_CONTEXT).map_err(wrong)?;
                if text != KEY_CHECK_TEXT {
                    return Err(wrong(SealError::Open));
                }
                Ok(KeyCheck::Matches)
            }
            None => {
                let sealed = self.key.seal(KEY_CHECK_TEXT, KEY_CHECK_CONTEXT);
                self.inner.put_note(KEY_CHECK_NOTE, &sealed.into()).await?;
                Ok(KeyCheck::Recorded)
            }
        }
    }

    /// Seals every secret field and webhook key still stored in plain text (definitions
    /// written before sealing existed), `page` definitions at a time; returns how many definitions it
    /// rewrote. Meant for a single node at startup, before it serves requests.
    ///
    /// # Errors
    /// A store failure.
    pub async fn reseal(&self, page: usize) -> Result<usize, StoreError> {
        let page = page.max(1);
        let mut rewritten = 0;
        let mut after: Option<MonitorId> = None;
        loop {
            let monitors = self.inner.list_monitors(after.as_ref(), page).await?;
            let Some(last) = monitors.last() else { break };
            after = Some(last.id.clone());
            let plain: Vec<Monitor> = monitors
                .iter()
                .filter(|m| {
                    has_plaintext(&m.check, (self.fields.check)(m.check.kind()))
                        || values::webhook_key_is_plain(m)
                })
                .map(|m| self.seal_monitor(m))
                .collect();
            if !plain.is_empty() {
                self.inner.put_monitors(&plain).await?;
                rewritten += plain.len();
            }
            if monitors.len() < page {
                break;
            }
        }
        let mut after: Option<ReactionId> = None;
        loop {
            let reactions = self.inner.list_reactions(after.as_ref(), page).await?;
            let Some(last) = reactions.last() else { break };
            after = Some(last.id.clone());
            for reaction in &reactions {
                if has_plaintext(&reaction.action, (self.fields.action)(reaction.action.kind())) {
                    self.inner.put_reaction(&self.seal_reaction(reaction)).await?;
                    rewritten += 1;
                }
            }
            if reactions.len() < page {
                break;
            }
        }
        Ok(rewritten)
    }
}

#[async_trait]
impl<S: Store> Store for SealedStore<S> {
    async fn put_monitor(&self, monitor: &Monitor) -> Result<(), StoreError> {
        self.inner.put_monitor(&self.seal_monitor(monitor)).await
    }
    async fn put_monitors(&self, monitors: &[Monitor]) -> Result<(), StoreError> {
        let sealed: Vec<Monitor> = monitors.iter().map(|m| self.seal_monitor(m)).collect();
        self.inner.put_monitors(&sealed).await
    }
    async fn get_monitor(&self, id: &MonitorId) -> Result<Option<Monitor>, StoreError> {
        self.inner.get_monitor(id).await?.map(|m| self.open_monitor(m)).transpose()
    }
    async fn list_monitors(
        &self,
        after: Option<&MonitorId>,
        limit: usize,
    ) -> Result<Vec<Monitor>, StoreError> {
        let monitors = self.inner.list_monitors(after, limit).await?;
        monitors.into_iter().map(|m| self.open_monitor(m)).collect()
    }
    async fn delete_monitor(&self, id: &MonitorId) -> Result<bool, StoreError> {
        self.inner.delete_monitor(id).await
    }
    async fn put_reaction(&self, reaction: &Reaction) -> Result<(), StoreError> {
        self.inner.put_reaction(&self.seal_reaction(reaction)).await
    }
    async fn get_reaction(&self, id: &ReactionId) -> Result<Option<Reaction>, StoreError> {
        self.inner.get_reaction(id).await?.map(|r| self.open_reaction(r)).transpose()
    }
    async fn list_reactions(
        &self,
        after: Option<&ReactionId>,
        limit: usize,
    ) -> Result<Vec<Reaction>, StoreError> {
        let reactions = self.inner.list_reactions(after, limit).await?;
        reactions.into_iter().map(|r| self.open_reaction(r)).collect()
    }
    async fn delete_reaction(&self, id: &ReactionId) -> Result<bool, StoreError> {
        self.inner.delete_reaction(id).await
    }
    async fn get_state(&self, id: &MonitorId) -> Result<Option<MonitorState>, StoreError> {
        self.inner.get_state(id).await
    }
    async fn load_states(&self) -> Result<Vec<(MonitorId, MonitorState)>, StoreError> {
        self.inner.load_states().await
    }
    async fn record(
        &self,
        id: &MonitorId,
        state: &MonitorState,
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.inner.record(id, state, events).await
    }
    async fn record_many(&self, transitions: &[Transition]) -> Result<Recorded, StoreError> {
        self.inner.record_many(transitions).await
    }
    async fn put_states(&self, states: &[(MonitorId, MonitorState)]) -> Result<(), StoreError> {
        self.inner.put_states(states).await
    }
    async fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        self.inner.append_events(events).await
    }
    async fn list_events(
        &self,
        id: &MonitorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.inner.list_events(id, before, limit).await
    }
    async fn get_note(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let note = self.inner.get_note(key).await?;
        if key == KEY_CHECK_NOTE {
            return Ok(note);
        }
        note.map(|value| values::open_note(&self.key, key, value)).transpose()
    }
    async fn put_note(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        if key == KEY_CHECK_NOTE {
            return self.inner.put_note(key, value).await;
        }
        self.inner.put_note(key, &values::seal_note(&self.key, key, value)).await
    }
    async fn delete_note(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.delete_note(key).await
    }
    async fn create_token(&self, token: &ApiToken) -> Result<bool, StoreError> {
        self.inner.create_token(token).await
    }
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.inner.token_by_hash(hash).await
    }
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.inner.list_tokens().await
    }
    async fn delete_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.inner.delete_token(id).await
    }
    async fn append_audit(&self, entry: &AuditEntry, keep: usize) -> Result<(), StoreError> {
        self.inner.append_audit(entry, keep).await
    }
    async fn list_audit(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.list_audit(before, limit).await
    }

    async fn take_destructive(
        &self,
        wanted: u32,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<u32, StoreError> {
        self.inner.take_destructive(wanted, limit, window).await
    }
}

#[async_trait]
impl<S: Coordinator> Coordinator for SealedStore<S> {
    async fn heartbeat(&self, member: &Member, ttl: Duration) -> Result<(), StoreError> {
        self.inner.heartbeat(member, ttl).await
    }
    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        self.inner.members().await
    }
    async fn leave(&self, node: &str) -> Result<(), StoreError> {
        self.inner.leave(node).await
    }
    async fn set_draining(&self, node: &str, draining: bool) -> Result<(), StoreError> {
        self.inner.set_draining(node, draining).await
    }
    async fn draining(&self) -> Result<Vec<String>, StoreError> {
        self.inner.draining().await
    }
    async fn acquire(
        &self,
        node: &str,
        partitions: &[u32],
        ttl: Duration,
    ) -> Result<Vec<(u32, Acquired)>, StoreError> {
        self.inner.acquire(node, partitions, ttl).await
    }
    async fn renew(
        &self,
        node: &str,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<(Lease, bool)>, StoreError> {
        self.inner.renew(node, leases, ttl).await
    }
    async fn release(&self, node: &str, leases: &[Lease]) -> Result<(), StoreError> {
        self.inner.release(node, leases).await
    }
    async fn holders(&self) -> Result<Vec<(u32, String, u64)>, StoreError> {
        self.inner.holders().await
    }
    async fn partition_monitors(&self, partition: u32) -> Result<Vec<Monitor>, StoreError> {
        let monitors = self.inner.partition_monitors(partition).await?;
        monitors.into_iter().map(|m| self.open_monitor(m)).collect()
    }
    async fn partition_states(
        &self,
        partition: u32,
    ) -> Result<Vec<(MonitorId, MonitorState)>, StoreError> {
        self.inner.partition_states(partition).await
    }
    async fn partition_versions(
        &self,
        partitions: &[u32],
    ) -> Result<Vec<PartitionVersion>, StoreError> {
        self.inner.partition_versions(partitions).await
    }
    async fn open_claims(&self, partition: u32) -> Result<Vec<OpenClaim>, StoreError> {
        self.inner.open_claims(partition).await
    }
    async fn server_id(&self) -> Result<String, StoreError> {
        self.inner.server_id().await
    }
}

#[cfg(test)]
mod tests;
