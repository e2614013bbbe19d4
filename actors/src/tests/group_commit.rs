//! A burst of transitions is written in a few group commits, not one transaction each.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_engine::store::{Recorded, Transition};
use cloudroutes_engine::{
    CheckOutcome, Event, Method, Monitor, MonitorId, MonitorState, Reaction, ReactionId, Status,
    Store, StoreError,
};

use super::webhook_draft;
use crate::Node;

/// Delegates to an embedded store and counts `record_many` calls and transitions.
#[derive(Debug)]
struct CountingStore {
    inner: EmbeddedStore,
    commits: AtomicUsize,
    transitions: AtomicUsize,
}

#[async_trait]
impl Store for CountingStore {
    async fn put_monitor(&self, m: &Monitor) -> Result<(), StoreError> {
        self.inner.put_monitor(m).await
    }
    async fn put_monitors(&self, m: &[Monitor]) -> Result<(), StoreError> {
        self.inner.put_monitors(m).await
    }
    async fn get_monitor(&self, id: &MonitorId) -> Result<Option<Monitor>, StoreError> {
        self.inner.get_monitor(id).await
    }
    async fn list_monitors(
        &self,
        after: Option<&MonitorId>,
        limit: usize,
    ) -> Result<Vec<Monitor>, StoreError> {
        self.inner.list_monitors(after, limit).await
    }
    async fn delete_monitor(&self, id: &MonitorId) -> Result<bool, StoreError> {
        self.inner.delete_monitor(id).await
    }
    async fn put_reaction(&self, r: &Reaction) -> Result<(), StoreError> {
        self.inner.put_reaction(r).await
    }
    async fn get_reaction(&self, id: &ReactionId) -> Result<Option<Reaction>, StoreError> {
        self.inner.get_reaction(id).await
    }
    async fn list_reactions(
        &self,
        after: Option<&ReactionId>,
        limit: usize,
    ) -> Result<Vec<Reaction>, StoreError> {
        self.inner.list_reactions(after, limit).await
    }
    async fn get_note(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner.get_note(key).await
    }
    async fn put_note(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        self.inner.put_note(key, value).await
    }
    async fn delete_note(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.delete_note(key).await
    }
    async fn create_token(
        &self,
        t: &cloudroutes_engine::access::ApiToken,
    ) -> Result<bool, StoreError> {
        self.inner.create_token(t).await
    }
    async fn token_by_hash(
        &self,
        h: &str,
    ) -> Result<Option<cloudroutes_engine::access::ApiToken>, StoreError> {
        self.inner.token_by_hash(h).await
    }
    async fn list_tokens(&self) -> Result<Vec<cloudroutes_engine::access::ApiToken>, StoreError> {
        self.inner.list_tokens().await
    }
    async fn delete_token(
        &self,
        id: &str,
    ) -> Result<Option<cloudroutes_engine::access::ApiToken>, StoreError> {
        self.inner.delete_token(id).await
    }
    async fn append_audit(
        &self,
        e: &cloudroutes_engine::access::AuditEntry,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.inner.append_audit(e, keep).await
    }
    async fn list_audit(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<cloudroutes_engine::access::AuditEntry>, StoreError> {
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
    async fn delete_reaction(&self, id: &ReactionId) -> Result<bool, StoreError> {
        self.inner.delete_reaction(id).await
    }
    async fn get_state(&self, id: &MonitorId) -> Result<Option<MonitorState>, StoreError> {
        self.inner.get_state(id).await
    }
    async fn load_states(&self) -> Result<Vec<(MonitorId, MonitorState)>, StoreError> {
        self.inner.load_states().await
    }
    async fn record_many(&self, transitions: &[Transition]) -> Result<Recorded, StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.transitions.fetch_add(transitions.len(), Ordering::SeqCst);
        self.inner.record_many(transitions).await
    }
    async fn put_states(&self, s: &[(MonitorId, MonitorState)]) -> Result<(), StoreError> {
        self.inner.put_states(s).await
    }
    async fn append_events(&self, e: &[Event]) -> Result<(), StoreError> {
        self.inner.append_events(e).await
    }
    async fn list_events(
        &self,
        id: &MonitorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.inner.list_events(id, before, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_failures_shares_few_durable_writes() {
    const MONITORS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let inner = EmbeddedStore::open(&dir.path().join("db"), 100).unwrap();
    let store = Arc::new(CountingStore {
        inner,
        commits: AtomicUsize::new(0),
        transitions: AtomicUsize::new(0),
    });
    let mut config = NodeConfig::default();
    config.engine.router_shards = 1;
    let node = Node::start(config, "n1".into(), store.clone()).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..MONITORS {
        ids.push(node.create_monitor(webhook_draft(vec![])).await.unwrap().monitor.id);
    }
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (node, id) = (node.clone(), id.clone());
            tokio::spawn(async move {
                let outcome = CheckOutcome::Failed { reason: "down".into() };
                node.observe(&id, outcome, Method::Webhook).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status, Status::Failed);
    }
    // Every reply came after its transition was durable.
    for id in &ids {
        let state = store.inner.get_state(id).await.unwrap().unwrap();
        assert_eq!((state.status, state.episode), (Status::Failed, 1));
    }
    let (commits, transitions) =
        (store.commits.load(Ordering::SeqCst), store.transitions.load(Ordering::SeqCst));
    assert_eq!(transitions, MONITORS, "one transition per monitor");
    assert!(commits < MONITORS / 2, "{transitions} transitions took {commits} commits");
    node.shutdown().await;
}
