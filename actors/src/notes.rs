//! Reaction notes kept in the node's store, so that what a reaction remembers (the records a
//! DNS failover switched) survives restarts and follows its monitor to another node.

use std::sync::Arc;

use cloudroutes_engine::Store;
use cloudroutes_reactions::{Notes, ReactionError};

/// [`Notes`] on the node's [`Store`].
pub struct StoreNotes {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for StoreNotes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreNotes")
    }
}

impl StoreNotes {
    /// Keeps notes in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

/// A store that cannot be read or written may work again: the error is retryable.
fn unavailable(error: &cloudroutes_engine::StoreError) -> ReactionError {
    ReactionError::Transport { kind: "notes", message: format!("store: {error}") }
}

#[async_trait::async_trait]
impl Notes for StoreNotes {
    async fn get(&self, key: &str) -> Result<Option<serde_json::Value>, ReactionError> {
        self.store.get_note(key).await.map_err(|e| unavailable(&e))
    }

    async fn put(&self, key: &str, value: &serde_json::Value) -> Result<(), ReactionError> {
        self.store.put_note(key, value).await.map_err(|e| unavailable(&e))
    }

    async fn delete(&self, key: &str) -> Result<(), ReactionError> {
        self.store.delete_note(key).await.map(drop).map_err(|e| unavailable(&e))
    }
}

#[cfg(test)]
mod tests {
    use cloudroutes_engine::store::embedded::EmbeddedStore;

    use super::*;

    #[tokio::test]
    async fn notes_live_in_the_store_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path, 100).unwrap());
        let notes = StoreNotes::new(Arc::clone(&store));
        let value = serde_json::json!({"changed": ["rec-1"]});
        notes.put("cloudflare-dns-failover/r/m", &value).await.unwrap();
        drop((notes, store));
        let reopened: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path, 100).unwrap());
        let notes = StoreNotes::new(reopened);
        assert_eq!(notes.get("cloudflare-dns-failover/r/m").await.unwrap(), Some(value));
        notes.delete("cloudflare-dns-failover/r/m").await.unwrap();
        assert_eq!(notes.get("cloudflare-dns-failover/r/m").await.unwrap(), None);
    }
}
