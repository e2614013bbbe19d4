//! The store handle for the HTTP layer (tokens, audit) and webhook key rotation.

use std::sync::Arc;

use cloudroutes_engine::{MonitorId, Store};

use super::{MonitorView, Node, new_webhook_key};
use crate::error::NodeError;
use crate::validate::MonitorDraft;

impl Node {
    /// Returns the node's store (API tokens and the audit trail live there too).
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.inner.parts.store)
    }

    /// Gives a monitor a new random webhook key; the old one stops working at once (intake
    /// reads the key from the store on every request, on every node).
    ///
    /// # Errors
    /// `NotFound`, or `Store` when nothing could be written.
    pub async fn rotate_webhook_key(&self, id: &MonitorId) -> Result<MonitorView, NodeError> {
        let existing = self.stored_monitor(id).await?;
        let draft = MonitorDraft {
            name: existing.name,
            check: existing.check,
            interval_secs: existing.interval_secs,
            reactions: existing.reactions,
            enabled: existing.enabled,
            tags: existing.tags,
        };
        self.save_monitor(draft, existing.id, new_webhook_key()).await
    }
}
