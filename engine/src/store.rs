//! The `Store` trait: where definitions, state and history live.
//!
//! One trait, one file per backend (`store/embedded.rs` now, Redis in cluster mode), and one
//! conformance suite ([`conformance::run_all`]) that every backend passes.
//!
//! Durability contract: every method that returns `Ok` has made its write durable (for the
//! embedded backend, committed and fsynced). [`Store::record`] writes a state and its events in
//! one atomic transaction, so a status transition is never half-written.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{Event, Monitor, MonitorId, MonitorState, Reaction, ReactionId};

pub mod conformance;
pub mod embedded;

/// A monitor's new state and the events that explain it, written together.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The monitor.
    pub id: MonitorId,
    /// Its state after the change.
    pub state: MonitorState,
    /// The events of the change (status change, ignored result).
    pub events: Vec<Event>,
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
        let transition =
            Transition { id: id.clone(), state: state.clone(), events: events.to_vec() };
        self.record_many(std::slice::from_ref(&transition)).await
    }
    /// Writes many transitions (states with their events) in one atomic, durable transaction,
    /// in order: a group commit. Transitions of monitors that no longer exist are dropped.
    async fn record_many(&self, transitions: &[Transition]) -> Result<(), StoreError>;
    /// Writes many states in one transaction (routine counters, batched). States of monitors
    /// that no longer exist are dropped.
    async fn put_states(&self, states: &[(MonitorId, MonitorState)]) -> Result<(), StoreError>;

    /// Appends events in one transaction. Events of monitors that no longer exist are dropped.
    async fn append_events(&self, events: &[Event]) -> Result<(), StoreError>;
    /// Returns a monitor's events, newest first, starting strictly before event id `before`.
    async fn list_events(
        &self,
        id: &MonitorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;
}
