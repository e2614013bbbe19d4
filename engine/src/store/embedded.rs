//! The embedded backend: one crash-safe redb file per node (`DATA_DIR/cloudroutes.redb`).
//!
//! Every write is one redb write transaction committed with the default `Durability::Immediate`
//! (fsynced before `commit` returns), so a method that returns `Ok` survives a crash. redb calls
//! block, so each one runs on tokio's blocking pool.
//!
//! Records are a version byte ([`RECORD_VERSION`]) followed by JSON; a monitor's state, written
//! after nearly every check, is binary ([`record::STATE_RECORD_VERSION`]). Tables:
//! - `monitors`, `reactions`, `states`: id → record;
//! - `events`: (monitor id, event id) → record; event ids are lowercase ULIDs, so a monitor's
//!   events sort oldest first;
//! - `event_counts`: monitor id → number of stored events, so that retention costs one lookup
//!   per append instead of a scan;
//! - `tokens`, `token_hashes`, `audit`: API tokens and the audit trail (see `embedded/access.rs`).
//! - `brake`: the start times of the destructive reactions granted in the budget's window.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Recorded, Store, Transition};
use crate::access::{ApiToken, AuditEntry};
use crate::error::StoreError;
use crate::model::{Event, Monitor, MonitorId, MonitorState, Reaction, ReactionId};

mod access;
mod brake;

pub use super::record::RECORD_VERSION;
use super::record::{self, decode};

const MONITORS: TableDefinition<&str, &[u8]> = TableDefinition::new("monitors");
const REACTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("reactions");
const STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("states");
const EVENTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("events");
const EVENT_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("event_counts");
const NOTES: TableDefinition<&str, &[u8]> = TableDefinition::new("notes");

/// A [`Store`] on a local redb file; serves a single node.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    history_max_events: usize,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .field("history_max_events", &self.history_max_events)
            .finish_non_exhaustive()
    }
}

/// The page cache [`EmbeddedStore::open`] uses: 16 MiB. Reads past it go to the kernel's page
/// cache, which costs a system call, not the node's memory.
pub const DEFAULT_CACHE_BYTES: usize = 16 * 1024 * 1024;

impl EmbeddedStore {
    /// Opens (or creates) the database file at `path`, creating its parent directories, and
    /// keeps at most `history_max_events` events per monitor (0 acts as 1).
    ///
    /// This is blocking file I/O: call it at startup, or from `spawn_blocking`.
    ///
    /// # Errors
    /// Returns [`StoreError::Open`] when the directory or file cannot be created or opened
    /// (including when another process holds the file), or [`StoreError::Embedded`] when the
    /// tables cannot be created.
    pub fn open(path: &Path, history_max_events: usize) -> Result<Self, StoreError> {
        Self::open_with_cache(path, history_max_events, DEFAULT_CACHE_BYTES)
    }

    /// Opens the store like [`EmbeddedStore::open`], with a page cache of at most
    /// `cache_bytes` (redb's own default is 1 GiB, which a large node would mostly spend on
    /// state records it rarely reads).
    ///
    /// # Errors
    /// As [`EmbeddedStore::open`].
    pub fn open_with_cache(
        path: &Path,
        history_max_events: usize,
        cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        let open_error = |message: String| StoreError::Open { path: path.to_owned(), message };
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| open_error(error.to_string()))?;
        }
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|error| open_error(error.to_string()))?;
        let txn = db.begin_write().map_err(embedded("begin write"))?;
        {
            txn.open_table(MONITORS).map_err(embedded("create table"))?;
            txn.open_table(REACTIONS).map_err(embedded("create table"))?;
            txn.open_table(STATES).map_err(embedded("create table"))?;
            txn.open_table(EVENTS).map_err(embedded("create table"))?;
            txn.open_table(EVENT_COUNTS).map_err(embedded("create table"))?;
            txn.open_table(NOTES).map_err(embedded("create table"))?;
            access::create_tables(&txn)?;
            brake::create_tables(&txn)?;
        }
        txn.commit().map_err(embedded("commit"))?;
        Ok(Self {
            db: Arc::new(db),
            path: path.to_owned(),
            history_max_events: history_max_events.max(1),
        })
    }

    /// Returns the database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the blocking pool with the database.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db)).await.map_err(embedded("blocking task"))?
    }

    /// Runs `work` in one write transaction and commits it durably.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(embedded("begin write"))?;
            let value = work(&txn)?;
            txn.commit().map_err(embedded("commit"))?;
            Ok(value)
        })
        .await
    }
}

/// Returns a mapper from a redb error to [`StoreError::Embedded`].
fn embedded<E: Display>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |error| StoreError::Embedded { context, message: error.to_string() }
}

/// Encodes a record: the version byte, then JSON.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    record::encode(value).map_err(embedded("encode record"))
}

/// Returns the first monitor id that sorts after every `(monitor, _)` event key: nothing
/// sorts between a string and the same string followed by NUL.
fn successor(monitor: &str) -> String {
    format!("{monitor}\0")
}

fn get_record<T: DeserializeOwned>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    what: &'static str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    get_decoded(db, table, key, |bytes| decode(what, key, bytes))
}

/// Reads one record and decodes it with `decode`.
fn get_decoded<T>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    decode: impl FnOnce(&[u8]) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let txn = db.begin_read().map_err(embedded("begin read"))?;
    let table = txn.open_table(table).map_err(embedded("open table"))?;
    let bytes = table.get(key).map_err(embedded("get"))?;
    bytes.map(|bytes| decode(bytes.value())).transpose()
}

fn list_records<T: DeserializeOwned>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    what: &'static str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let txn = db.begin_read().map_err(embedded("begin read"))?;
    let table = txn.open_table(table).map_err(embedded("open table"))?;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut records = Vec::new();
    for entry in table.range::<&str>((start, Bound::Unbounded)).map_err(embedded("range"))? {
        if records.len() >= limit {
            break;
        }
        let (key, bytes) = entry.map_err(embedded("range"))?;
        records.push(decode(what, key.value(), bytes.value())?);
    }
    Ok(records)
}

fn put_record(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let mut table = txn.open_table(table).map_err(embedded("open table"))?;
    table.insert(key, bytes).map_err(embedded("insert"))?;
    Ok(())
}

fn remove_record(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<bool, StoreError> {
    let mut table = txn.open_table(table).map_err(embedded("open table"))?;
    let existed = table.remove(key).map_err(embedded("remove"))?.is_some();
    Ok(existed)
}

/// Answers "does this monitor's definition exist?" once per monitor per transaction. The
/// monitors table stays open for the whole batch (opening a table per record cost as much as
/// the record's own insert); nothing else opens it while an `Existence` lives.
struct Existence<'txn> {
    txn: &'txn WriteTransaction,
    monitors: Option<redb::Table<'txn, &'static str, &'static [u8]>>,
    known: HashMap<String, bool>,
}

impl<'txn> Existence<'txn> {
    fn new(txn: &'txn WriteTransaction) -> Self {
        Self { txn, monitors: None, known: HashMap::new() }
    }

    fn monitor_exists(&mut self, id: &str) -> Result<bool, StoreError> {
        if let Some(&exists) = self.known.get(id) {
            return Ok(exists);
        }
        let exists = self.look_up(id)?;
        self.known.insert(id.to_owned(), exists);
        Ok(exists)
    }

    /// Like [`Existence::monitor_exists`] without remembering the answer, for a batch that
    /// names each monitor about once (remembering would cost a copy of every id).
    fn monitor_exists_once(&mut self, id: &str) -> Result<bool, StoreError> {
        match self.known.get(id) {
            Some(&exists) => Ok(exists),
            None => self.look_up(id),
        }
    }

    fn look_up(&mut self, id: &str) -> Result<bool, StoreError> {
        let txn = self.txn;
        let table = match &mut self.monitors {
            Some(table) => table,
            empty => empty.insert(txn.open_table(MONITORS).map_err(embedded("open table"))?),
        };
        Ok(table.get(id).map_err(embedded("get"))?.is_some())
    }
}

/// Writes the states of existing monitors, in one open states table; drops the others. They
/// go in key order (a stable sort, so the last of two states of one monitor still wins): each
/// B-tree page is then visited once, not once per monitor on it.
///
/// A state is stored only for a monitor that exists, and deleting a monitor deletes its state
/// in the same transaction, so overwriting a state needs no look-up in the monitors table: only
/// a monitor's first state does.
fn put_states_in<'a>(
    existence: &mut Existence<'_>,
    states: impl IntoIterator<Item = (&'a MonitorId, &'a MonitorState)>,
) -> Result<(), StoreError> {
    let mut states: Vec<_> = states.into_iter().collect();
    if states.is_empty() {
        return Ok(());
    }
    states.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut table = existence.txn.open_table(STATES).map_err(embedded("open table"))?;
    let mut bytes = Vec::new();
    for (id, state) in states {
        bytes.clear();
        record::encode_state_into(&mut bytes, state).map_err(embedded("encode record"))?;
        let replaced =
            table.insert(id.as_str(), bytes.as_slice()).map_err(embedded("insert"))?.is_some();
        if !replaced && !existence.monitor_exists_once(id.as_str())? {
            table.remove(id.as_str()).map_err(embedded("remove"))?;
            tracing::debug!(monitor_id = %id, "dropping state of a deleted monitor");
        }
    }
    Ok(())
}

/// Appends the events of existing monitors (dropping the others) and trims each touched
/// monitor's history to `max` events, oldest first.
fn append_events_in(
    existence: &mut Existence<'_>,
    events: &[Event],
    max: usize,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let txn = existence.txn;
    let mut added: BTreeMap<&str, u64> = BTreeMap::new();
    {
        let mut table = txn.open_table(EVENTS).map_err(embedded("open table"))?;
        for event in events {
            let monitor = event.monitor_id.as_str();
            if !existence.monitor_exists(monitor)? {
                tracing::debug!(monitor_id = %monitor, "dropping event of a deleted monitor");
                continue;
            }
            let bytes = encode(event)?;
            let replaced = table.insert((monitor, event.id.as_str()), bytes.as_slice());
            if replaced.map_err(embedded("insert"))?.is_none() {
                *added.entry(monitor).or_default() += 1;
            }
        }
    }
    let max = u64::try_from(max).unwrap_or(u64::MAX);
    let mut events_table = txn.open_table(EVENTS).map_err(embedded("open table"))?;
    let mut counts = txn.open_table(EVENT_COUNTS).map_err(embedded("open table"))?;
    for (monitor, added) in added {
        let stored = counts.get(monitor).map_err(embedded("get"))?.map_or(0, |count| count.value());
        let mut count = stored.saturating_add(added);
        if count > max {
            let upper = successor(monitor);
            let range = (Bound::Included((monitor, "")), Bound::Excluded((upper.as_str(), "")));
            let excess = usize::try_from(count - max).unwrap_or(usize::MAX);
            let oldest = events_table
                .range::<(&str, &str)>(range)
                .map_err(embedded("range"))?
                .take(excess)
                .map(|entry| entry.map(|(key, _)| key.value().1.to_owned()))
                .collect::<Result<Vec<String>, _>>()
                .map_err(embedded("range"))?;
            for event_id in &oldest {
                events_table.remove((monitor, event_id.as_str())).map_err(embedded("remove"))?;
            }
            count -= oldest.len() as u64;
        }
        counts.insert(monitor, count).map_err(embedded("insert"))?;
    }
    Ok(())
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn put_monitor(&self, monitor: &Monitor) -> Result<(), StoreError> {
        let (id, bytes) = (monitor.id.0.clone(), encode(monitor)?);
        self.write(move |txn| put_record(txn, MONITORS, &id, &bytes)).await
    }

    async fn put_monitors(&self, monitors: &[Monitor]) -> Result<(), StoreError> {
        let records = monitors
            .iter()
            .map(|monitor| Ok((monitor.id.0.clone(), encode(monitor)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(move |txn| {
            records.iter().try_for_each(|(id, bytes)| put_record(txn, MONITORS, id, bytes))
        })
        .await
    }

    async fn get_monitor(&self, id: &MonitorId) -> Result<Option<Monitor>, StoreError> {
        let id = id.0.clone();
        self.blocking(move |db| get_record(db, MONITORS, "monitor", &id)).await
    }

    async fn list_monitors(
        &self,
        after: Option<&MonitorId>,
        limit: usize,
    ) -> Result<Vec<Monitor>, StoreError> {
        let after = after.map(|id| id.0.clone());
        self.blocking(move |db| list_records(db, MONITORS, "monitor", after.as_deref(), limit))
            .await
    }

    async fn delete_monitor(&self, id: &MonitorId) -> Result<bool, StoreError> {
        let id = id.0.clone();
        self.write(move |txn| {
            let existed = remove_record(txn, MONITORS, &id)?;
            remove_record(txn, STATES, &id)?;
            let mut counts = txn.open_table(EVENT_COUNTS).map_err(embedded("open table"))?;
            counts.remove(&*id).map_err(embedded("remove"))?;
            let mut events = txn.open_table(EVENTS).map_err(embedded("open table"))?;
            let upper = successor(&id);
            let range = (Bound::Included((&*id, "")), Bound::Excluded((upper.as_str(), "")));
            events.retain_in::<(&str, &str), _>(range, |_, _| false).map_err(embedded("remove"))?;
            Ok(existed)
        })
        .await
    }

    async fn put_reaction(&self, reaction: &Reaction) -> Result<(), StoreError> {
        let (id, bytes) = (reaction.id.0.clone(), encode(reaction)?);
        self.write(move |txn| put_record(txn, REACTIONS, &id, &bytes)).await
    }

    async fn get_reaction(&self, id: &ReactionId) -> Result<Option<Reaction>, StoreError> {
        let id = id.0.clone();
        self.blocking(move |db| get_record(db, REACTIONS, "reaction", &id)).await
    }

    async fn list_reactions(
        &self,
        after: Option<&ReactionId>,
        limit: usize,
    ) -> Result<Vec<Reaction>, StoreError> {
        let after = after.map(|id| id.0.clone());
        self.blocking(move |db| list_records(db, REACTIONS, "reaction", after.as_deref(), limit))
            .await
    }

    async fn delete_reaction(&self, id: &ReactionId) -> Result<bool, StoreError> {
        let id = id.0.clone();
        self.write(move |txn| remove_record(txn, REACTIONS, &id)).await
    }

    async fn get_note(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let key = key.to_owned();
        self.blocking(move |db| get_record(db, NOTES, "note", &key)).await
    }

    async fn put_note(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let (key, bytes) = (key.to_owned(), encode(value)?);
        self.write(move |txn| put_record(txn, NOTES, &key, &bytes)).await
    }

    async fn delete_note(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write(move |txn| remove_record(txn, NOTES, &key)).await
    }

    async fn create_token(&self, token: &ApiToken) -> Result<bool, StoreError> {
        self.create_token_record(token).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.token_record_by_hash(hash).await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.token_records().await
    }

    async fn delete_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.delete_token_record(id).await
    }

    async fn append_audit(&self, entry: &AuditEntry, keep: usize) -> Result<(), StoreError> {
        self.append_audit_record(entry, keep).await
    }

    async fn list_audit(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_records(before, limit).await
    }

    async fn get_state(&self, id: &MonitorId) -> Result<Option<MonitorState>, StoreError> {
        let id = id.0.clone();
        self.blocking(move |db| {
            get_decoded(db, STATES, &id, |bytes| record::decode_state(&id, bytes))
        })
        .await
    }

    async fn load_states(&self) -> Result<Vec<(MonitorId, MonitorState)>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(embedded("begin read"))?;
            let table = txn.open_table(STATES).map_err(embedded("open table"))?;
            let mut states = Vec::with_capacity(table.len().map_or(0, |len| len as usize));
            for entry in table.iter().map_err(embedded("iterate"))? {
                let (key, bytes) = entry.map_err(embedded("iterate"))?;
                let state = record::decode_state(key.value(), bytes.value())?;
                states.push((MonitorId::from(key.value().to_owned()), state));
            }
            Ok(states)
        })
        .await
    }

    async fn record_many(&self, transitions: &[Transition]) -> Result<Recorded, StoreError> {
        let (transitions, max) = (transitions.to_vec(), self.history_max_events);
        self.write(move |txn| {
            // The states of the whole batch, then its events: each table opened once.
            let mut existence = Existence::new(txn);
            put_states_in(&mut existence, transitions.iter().map(|t| (&t.id, &t.state)))?;
            let events: Vec<Event> =
                transitions.into_iter().flat_map(|transition| transition.events).collect();
            append_events_in(&mut existence, &events, max)
        })
        .await?;
        // One node, no leases: nothing is fenced, and every claim is granted.
        Ok(Recorded::default())
    }

    async fn put_states(&self, states: &[(MonitorId, MonitorState)]) -> Result<(), StoreError> {
        let states = states.to_vec();
        self.write(move |txn| {
            put_states_in(&mut Existence::new(txn), states.iter().map(|(id, state)| (id, state)))
        })
        .await
    }

    async fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let (events, max) = (events.to_vec(), self.history_max_events);
        self.write(move |txn| append_events_in(&mut Existence::new(txn), &events, max)).await
    }

    async fn list_events(
        &self,
        id: &MonitorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let (id, before) = (id.0.clone(), before.map(str::to_owned));
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(embedded("begin read"))?;
            let table = txn.open_table(EVENTS).map_err(embedded("open table"))?;
            let upper_monitor = successor(&id);
            let upper = match &before {
                Some(before) => Bound::Excluded((&*id, before.as_str())),
                None => Bound::Excluded((upper_monitor.as_str(), "")),
            };
            let range = (Bound::Included((&*id, "")), upper);
            let mut events = Vec::new();
            for entry in table.range::<(&str, &str)>(range).map_err(embedded("range"))?.rev() {
                if events.len() >= limit {
                    break;
                }
                let (key, bytes) = entry.map_err(embedded("range"))?;
                let (monitor, event_id) = key.value();
                events.push(decode("event", &format!("{monitor}/{event_id}"), bytes.value())?);
            }
            Ok(events)
        })
        .await
    }

    async fn take_destructive(
        &self,
        wanted: u32,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<u32, StoreError> {
        self.take_destructive_runs(wanted, limit, window).await
    }
}

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;
