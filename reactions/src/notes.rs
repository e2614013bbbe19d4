//! Notes: what a reaction remembers between its runs (for example which DNS records
//! `cloudflare-dns-failover` switched, so that failback restores exactly those). The node keeps
//! them in its store, so they survive restarts and move with the monitor in a cluster.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ReactionError;

/// A reaction's memory, keyed by strings the reaction chooses (it should include the reaction
/// and monitor ids, which every [`crate::Incident`] carries).
#[async_trait::async_trait]
pub trait Notes: Send + Sync + std::fmt::Debug {
    /// Returns the note under `key`, if any.
    ///
    /// # Errors
    /// The store could not be read.
    async fn get(&self, key: &str) -> Result<Option<serde_json::Value>, ReactionError>;
    /// Writes the note under `key`, replacing any.
    ///
    /// # Errors
    /// The store could not be written.
    async fn put(&self, key: &str, value: &serde_json::Value) -> Result<(), ReactionError>;
    /// Deletes the note under `key`, if any.
    ///
    /// # Errors
    /// The store could not be written.
    async fn delete(&self, key: &str) -> Result<(), ReactionError>;
}

/// Notes in memory: for tests, and for a context built without a store.
#[derive(Debug, Default)]
pub struct MemoryNotes {
    notes: Mutex<HashMap<String, serde_json::Value>>,
}

impl MemoryNotes {
    fn notes(&self) -> std::sync::MutexGuard<'_, HashMap<String, serde_json::Value>> {
        // Every write is one insert or remove: a poisoned map is still consistent.
        self.notes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Notes for MemoryNotes {
    async fn get(&self, key: &str) -> Result<Option<serde_json::Value>, ReactionError> {
        Ok(self.notes().get(key).cloned())
    }

    async fn put(&self, key: &str, value: &serde_json::Value) -> Result<(), ReactionError> {
        self.notes().insert(key.to_owned(), value.clone());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), ReactionError> {
        self.notes().remove(key);
        Ok(())
    }
}
