//! The `Store` trait: where definitions, state and history live.
//!
//! One trait, one file per backend (`store/embedded.rs` now, Redis in cluster mode), and one
//! conformance suite ([`conformance::run_all`]) that every backend passes.
//!
//! Durability contract: every method that returns `Ok` has made its write durable (for the
//! embedded backend, committed and fsynced). [`Store::record`] writes a state and its events in
//! one atomic transaction, so a status transition is never half-written.

use async_trait::async_trait;

use crate::access::{ApiToken, AuditEntry};
use crate::error::StoreError;
use crate::model::{Event, Monitor, MonitorId, MonitorState, Reaction, ReactionId};

pub mod conformance;
pub mod embedded;
mod record;
pub mod redis;
pub mod sealed;

/// A monitor's new state and the events that explain it, written together.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The monitor.
    pub id: MonitorId,
    /// Its state after the change.
    pub state: MonitorState,
    /// The events of the change (status change, ignored result).
    pub events: Vec<Event>,
    /// Reaction firings this transition decided, claimed in the same atomic write (cluster
    /// mode); a backend without claims grants them all.
    pub claims: Vec<Claim>,
}

impl Transition {
    /// A transition with no claims.
    pub fn new(id: MonitorId, state: MonitorState, events: Vec<Event>) -> Self {
        Self { id, state, events, claims: Vec::new() }
    }
}

/// A reaction firing claimed before it runs, so that it runs once across the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The firing key, `monitor:reaction:episode:phase:window` ([`crate::gate::Firing::key`]).
    pub key: String,
    /// The reaction.
    pub reaction_id: ReactionId,
    /// The episode it answers.
    pub episode: u64,
    /// Whether the reaction is destructive (never retried by a node that adopts the claim).
    pub destructive: bool,
}

/// What a group commit wrote, beyond `Ok`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Monitors whose transitions were refused because this node no longer holds their
    /// partition's lease at the epoch it wrote with (fencing): nothing of them was written
    /// and nothing they decided may run.
    pub fenced: Vec<MonitorId>,
    /// Claim keys that were already taken: those firings must not run.
    pub already_claimed: Vec<String>,
}

impl Recorded {
    /// Returns whether every transition was written and every claim granted.
    pub fn is_clean(&self) -> bool {
        self.fenced.is_empty() && self.already_claimed.is_empty()
    }
}

/// Persistent storage for monitors, reactions, monitor state and history.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates or replaces a monitor definition (its state and history are untouched).
    async fn put_monitor(&self, monitor: &Monitor) -> Result<(), StoreError>;
    /// Creates or replaces many monitor definitions in one transaction (all or none).
    async fn put_monitors(&self, monitors: &[Monitor]) -> Result<(), StoreError>;
    /// Returns one monitor definition.
    async fn get_monitor(&self, id: &MonitorId) -> Result<Option<Monitor>, StoreError>;
    /// Returns up to `limit` monitors ordered by id, starting after `after`.
    async fn list_monitors(
        &self,
        after: Option<&MonitorId>,
        limit: usize,
    ) -> Result<Vec<Monitor>, StoreError>;
    /// Deletes a monitor with its state and history in one transaction; returns whether it existed.
    async fn delete_monitor(&self, id: &MonitorId) -> Result<bool, StoreError>;

    /// Creates or replaces a reaction definition.
    async fn put_reaction(&self, reaction: &Reaction) -> Result<(), StoreError>;
    /// Returns one reaction definition.
    async fn get_reaction(&self, id: &ReactionId) -> Result<Option<Reaction>, StoreError>;
    /// Returns up to `limit` reactions ordered by id, starting after `after`.
    async fn list_reactions(
        &self,
        after: Option<&ReactionId>,
        limit: usize,
    ) -> Result<Vec<Reaction>, StoreError>;
    /// Deletes a reaction definition; returns whether it existed.
    async fn delete_reaction(&self, id: &ReactionId) -> Result<bool, StoreError>;

    /// Returns one monitor's persisted state.
    async fn get_state(&self, id: &MonitorId) -> Result<Option<MonitorState>, StoreError>;
    /// Returns every persisted state (used once, at startup).
    async fn load_states(&self) -> Result<Vec<(MonitorId, MonitorState)>, StoreError>;
    /// Writes one state and its events in one atomic, durable transaction. A state for a
    /// monitor that no longer exists is dropped, not written.
    async fn record(
        &self,
        id: &MonitorId,
        state: &MonitorState,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let transition = Transition::new(id.clone(), state.clone(), events.to_vec());
        self.record_many(std::slice::from_ref(&transition)).await.map(|_| ())
    }
    /// Writes many transitions (states with their events and claims) in order: a group
    /// commit. The embedded backend writes them in one atomic transaction; the Redis backend
    /// writes each partition's share atomically and fenced by the partition's lease.
    /// Transitions of monitors that no longer exist are dropped.
    async fn record_many(&self, transitions: &[Transition]) -> Result<Recorded, StoreError>;
    /// Writes many states in one transaction (routine counters, batched). States of monitors
    /// that no longer exist are dropped.
    async fn put_states(&self, states: &[(MonitorId, MonitorState)]) -> Result<(), StoreError>;

    /// Appends events in one transaction. Events of monitors that no longer exist are dropped.
    /// A reaction event that names a claim also closes that claim (cluster mode).
    async fn append_events(&self, events: &[Event]) -> Result<(), StoreError>;
    /// Returns a monitor's events, newest first, starting strictly before event id `before`.
    async fn list_events(
        &self,
        id: &MonitorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Returns the note under `key`: what a reaction remembers between runs (for example the
    /// DNS records a failover switched, so failback restores exactly those).
    async fn get_note(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Writes the note under `key`, replacing any.
    async fn put_note(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError>;
    /// Deletes the note under `key`; returns whether it existed.
    async fn delete_note(&self, key: &str) -> Result<bool, StoreError>;

    /// Creates an API token (stored with the hash of its secret only); returns `false` and
    /// writes nothing when another token already has its name.
    async fn create_token(&self, token: &ApiToken) -> Result<bool, StoreError>;
    /// Returns the token whose secret hashes to `hash` (hex SHA-256).
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError>;
    /// Returns every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Deletes (revokes) a token; returns it when it existed.
    async fn delete_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError>;
    /// Appends an audit entry and drops the oldest so that at most `keep` remain (0 acts as 1).
    async fn append_audit(&self, entry: &AuditEntry, keep: usize) -> Result<(), StoreError>;
    /// Returns audit entries newest first, starting strictly before entry id `before`.
    async fn list_audit(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Takes up to `wanted` runs from the destructive-reaction budget: at most `limit` runs in
    /// any `window`, counted across every node that shares this store. Returns how many were
    /// granted (0 when the budget is spent); what is granted counts from now until `window`
    /// has passed.
    async fn take_destructive(
        &self,
        wanted: u32,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<u32, StoreError>;
}
