//! The node facade: the one entry point the HTTP API (and tests) use. It validates, writes the
//! store first, then tells the actors, so a definition that was acknowledged is never lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cloudroutes_checks::{CheckConfig, CheckContext, MAX_CHECK_TIMEOUT};
use cloudroutes_engine::cluster::{Coordinator, Fences};
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::gate::Observation;
use cloudroutes_engine::{
    CheckOutcome, Event, Method, Monitor, MonitorId, MonitorState, Reaction, ReactionId, Status,
    Store,
};
use cloudroutes_reactions::ReactionContext;
use ractor::{Actor, ActorRef};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::board::{Board, StatusCounts};
use crate::cluster::wire::PeerNotice;
use crate::error::NodeError;
use crate::firing::{FiringContext, ReactionBook};
use crate::metrics::Metrics;
use crate::monitor::{MonitorMsg, MonitorShared, run_check};
use crate::root::{NodeActor, NodeMsg, Parts, runnable, start_message};
use crate::router::{RouterMsg, Routers};
use crate::supervisor::SupervisorMsg;
use crate::validate::{self, MonitorDraft};

mod cluster;
mod cluster_view;
mod partitions;
mod reactions;
mod routing;

pub use cluster_view::{ClusterView, NodeStatus};
pub use routing::NodeInbox;

/// How long the facade waits for an actor to answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Store page size when loading at start.
const LOAD_PAGE: usize = 1_000;

/// A monitor with its live state.
#[derive(Debug, Clone)]
pub struct MonitorView {
    /// The definition.
    pub monitor: Monitor,
    /// The state.
    pub state: MonitorState,
}

/// A reaction with what the node knows of its runs.
#[derive(Debug, Clone)]
pub struct ReactionView {
    /// The definition (secrets included: redact before showing it).
    pub reaction: Reaction,
    /// When it last ran on this node.
    pub last_run_at: Option<OffsetDateTime>,
}

/// Filters for listing monitors.
#[derive(Debug, Clone, Default)]
pub struct MonitorFilter {
    /// Only monitors with this status.
    pub status: Option<Status>,
    /// Only monitors with this tag.
    pub tag: Option<String>,
}

/// A running node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: Arc<str>,
    config: NodeConfig,
    parts: Arc<Parts>,
    reaction_context: ReactionContext,
    root: ActorRef<NodeMsg>,
    tasks: tokio_util::task::TaskTracker,
    ready: AtomicBool,
    cluster: Option<cluster::Cluster>,
    http_addr: std::sync::OnceLock<std::net::SocketAddr>,
}

/// What a node needs to run as a member of a cluster.
pub struct ClusterSetup {
    /// Membership, leases and claims in the shared store.
    pub coordinator: Arc<dyn Coordinator>,
    /// The leases this node holds, as its clock sees them (shared with the store's fenced
    /// writes).
    pub fences: Arc<Fences>,
}

impl Node {
    /// Starts the node's actors and loads every reaction, state and monitor from the store.
    ///
    /// # Errors
    /// Fails when the store cannot be read or the actors cannot start.
    pub async fn start(
        config: NodeConfig,
        node_id: String,
        store: Arc<dyn Store>,
    ) -> Result<Self, NodeError> {
        Self::start_with(config, node_id, store, None).await
    }

    /// Starts a cluster member: loads every reaction, then takes its share of the partitions
    /// (their monitors start as their leases are acquired) and keeps it as members come and
    /// go.
    ///
    /// # Errors
    /// Fails when the store cannot be read or the actors cannot start.
    pub async fn start_cluster(
        config: NodeConfig,
        node_id: String,
        store: Arc<dyn Store>,
        setup: ClusterSetup,
    ) -> Result<Self, NodeError> {
        let partitions = config.cluster.partitions;
        let cluster = cluster::Cluster::new(setup.coordinator, setup.fences, partitions);
        let node = Self::start_with(config, node_id, store, Some(cluster)).await?;
        if let Some(cluster) = node.cluster() {
            // A restarted node takes part again even if it was drained before.
            cluster.coordinator.set_draining(node.node_id(), false).await?;
        }
        node.tick().await;
        if let Some(cluster) = node.cluster() {
            cluster.settled.store(true, Ordering::SeqCst);
        }
        node.start_ownership();
        Ok(node)
    }

    async fn start_with(
        config: NodeConfig,
        node_id: String,
        store: Arc<dyn Store>,
        cluster: Option<cluster::Cluster>,
    ) -> Result<Self, NodeError> {
        let metrics = Arc::new(Metrics::new());
        let board = Arc::new(Board::new(config.router_shards()));
        let book = Arc::new(ReactionBook::default());
        let tasks = tokio_util::task::TaskTracker::new();
        let check_context =
            CheckContext::new().map_err(|e| NodeError::Unavailable(format!("http client: {e}")))?;
        let reaction_context = ReactionContext::new()
            .map_err(|e| NodeError::Unavailable(format!("http client: {e}")))?;
        let node_id: Arc<str> = Arc::from(node_id);
        let firing = Arc::new(FiringContext {
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
            limiter: Arc::new(Semaphore::new(config.engine.reaction_concurrency)),
            timeout: Duration::from_millis(config.engine.reaction_timeout_ms),
            tasks: tasks.clone(),
            hold_until: std::sync::Mutex::new(None),
            in_flight: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        let monitor_shared = Arc::new(MonitorShared {
            routers: Arc::new(Routers::new(Arc::clone(&board))),
            check_limiter: Arc::new(Semaphore::new(config.engine.check_concurrency)),
            metrics: Arc::clone(&metrics),
            node_id: Arc::clone(&node_id),
        });
        let parts = Arc::new(Parts {
            board,
            book,
            store,
            firing,
            metrics,
            monitor_shared,
            check_context,
            flush_every: Duration::from_millis(config.engine.state_flush_ms),
            backoff_initial: Duration::from_millis(config.engine.restart_backoff_initial_ms),
            backoff_max: Duration::from_millis(config.engine.restart_backoff_max_ms),
            supervisor: Default::default(),
            stopping: AtomicBool::new(false),
        });
        let (root, _) = Actor::spawn(None, NodeActor, Arc::clone(&parts))
            .await
            .map_err(|e| NodeError::Unavailable(format!("cannot start actors: {e}")))?;
        let inner = Inner {
            node_id,
            config,
            parts,
            reaction_context,
            root,
            tasks,
            ready: AtomicBool::new(false),
            cluster,
            http_addr: std::sync::OnceLock::new(),
        };
        let node = Self { inner: Arc::new(inner) };
        node.load().await?;
        node.inner.ready.store(true, Ordering::SeqCst);
        Ok(node)
    }

    async fn load(&self) -> Result<(), NodeError> {
        let parts = &self.inner.parts;
        let mut after: Option<ReactionId> = None;
        loop {
            let page = parts.store.list_reactions(after.as_ref(), LOAD_PAGE).await?;
            for reaction in &page {
                match self.build_reaction(reaction.clone()) {
                    Ok(loaded) => parts.book.insert(loaded),
                    Err(err) => {
                        warn!(reaction_id = %reaction.id, error = %err, "stored reaction does not build; skipping it")
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == LOAD_PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        if self.cluster().is_some() {
            // Monitors are loaded a partition at a time, as their leases are acquired.
            return Ok(());
        }
        let mut states: std::collections::HashMap<_, _> =
            parts.store.load_states().await?.into_iter().collect();
        // A reaction's last run is remembered per monitor; the latest one is its `last_run_at`.
        for state in states.values() {
            for (reaction_id, memory) in &state.reactions {
                if let (Some(at), Some(reaction)) =
                    (memory.last_fired_at, parts.book.get(reaction_id))
                {
                    reaction.set_last_run_at(at);
                }
            }
        }
        let supervisor = self.supervisor()?;
        let mut after: Option<MonitorId> = None;
        let mut count = 0usize;
        loop {
            let page = parts.store.list_monitors(after.as_ref(), LOAD_PAGE).await?;
            for monitor in &page {
                let state = states.remove(&monitor.id).unwrap_or_default();
                parts.board.upsert(Arc::new(monitor.clone()), state);
                if let Some(upsert) = runnable(monitor, &parts.check_context) {
                    let _ = supervisor.cast(upsert);
                }
            }
            count += page.len();
            match page.last() {
                Some(last) if page.len() == LOAD_PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        info!(monitors = count, "monitors loaded");
        Ok(())
    }

    /// Returns this node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Records the address the HTTP API is bound to (announced to the cluster).
    pub fn set_http_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.inner.http_addr.set(addr);
    }

    /// Returns the node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// Returns the node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.parts.metrics
    }

    /// Returns whether the node has loaded everything and runs its monitors.
    pub fn is_ready(&self) -> bool {
        let settled = self.cluster().is_none_or(|c| c.settled.load(Ordering::SeqCst));
        settled
            && self.inner.ready.load(Ordering::SeqCst)
            && !self.inner.parts.stopping.load(Ordering::SeqCst)
    }

    /// Counts monitors by status.
    pub fn counts(&self) -> StatusCounts {
        self.inner.parts.board.counts()
    }

    fn supervisor(&self) -> Result<ActorRef<SupervisorMsg>, NodeError> {
        self.inner
            .parts
            .supervisor()
            .ok_or_else(|| NodeError::Unavailable("monitor supervisor is restarting".into()))
    }

    fn router(&self, id: &MonitorId) -> Result<ActorRef<RouterMsg>, NodeError> {
        self.inner
            .parts
            .routers()
            .for_monitor(id)
            .ok_or_else(|| NodeError::Unavailable("router is restarting".into()))
    }

    async fn reactions_exist(&self, ids: &[ReactionId]) -> Result<(), NodeError> {
        for (i, id) in ids.iter().enumerate() {
            if self.inner.parts.store.get_reaction(id).await?.is_none() {
                return Err(NodeError::invalid(
                    format!("reactions[{i}]"),
                    format!("reaction `{id}` does not exist"),
                ));
            }
        }
        Ok(())
    }

    /// Creates a monitor and starts it.
    ///
    /// # Errors
    /// `Invalid` naming the field; `Store` when nothing could be written.
    pub async fn create_monitor(&self, draft: MonitorDraft) -> Result<MonitorView, NodeError> {
        self.save_monitor(draft, MonitorId::generate(), new_webhook_key()).await
    }

    /// Replaces a monitor's definition (its state and webhook key are kept) and reconfigures it.
    ///
    /// # Errors
    /// `NotFound`, `Invalid` naming the field, or `Store`.
    pub async fn replace_monitor(
        &self,
        id: &MonitorId,
        draft: MonitorDraft,
    ) -> Result<MonitorView, NodeError> {
        let existing = self.stored_monitor(id).await?;
        self.save_monitor(draft, existing.id, existing.webhook_key).await
    }

    /// Validates `draft`, writes it as monitor `id` (keeping `webhook_key`), then starts,
    /// reconfigures or stops its actor.
    async fn save_monitor(
        &self,
        draft: MonitorDraft,
        id: MonitorId,
        webhook_key: String,
    ) -> Result<MonitorView, NodeError> {
        let check = validate::monitor(&draft)?;
        let monitor = Monitor {
            id,
            name: draft.name,
            check: draft.check,
            interval_secs: draft.interval_secs,
            reactions: draft.reactions,
            enabled: draft.enabled,
            tags: draft.tags,
            webhook_key,
        };
        let built = check
            .build(&self.inner.parts.check_context)
            .map_err(|e| NodeError::invalid(format!("check.{}", e.field), e.message))?;
        self.reactions_exist(&monitor.reactions).await?;
        self.inner.parts.store.put_monitor(&monitor).await?;
        match self.owner(&monitor.id) {
            cluster::Owner::Local => self.start_monitor(monitor, built).await,
            owner => {
                // The owner hears of it now; its reconciliation repairs a lost message.
                if let cluster::Owner::Remote(node) = owner {
                    self.notify(
                        &node,
                        PeerNotice::MonitorChanged { monitor_id: monitor.id.clone() },
                    );
                }
                let state = self.state_of(&monitor.id).await?;
                Ok(MonitorView { monitor, state })
            }
        }
    }

    /// Puts a stored definition on the board and starts, reconfigures or stops its actor
    /// (this node runs its partition).
    pub(crate) async fn apply_monitor(&self, monitor: Monitor) {
        let built = CheckConfig::parse(&monitor.check)
            .and_then(|config| config.build(&self.inner.parts.check_context));
        match built {
            Ok(check) => {
                if let Err(err) = self.start_monitor(monitor, check).await {
                    warn!(error = %err, "could not start a changed monitor");
                }
            }
            Err(err) => {
                warn!(monitor_id = %monitor.id, error = %err, "stored check does not build; not running it");
                let _ = self.start_monitor(monitor, None).await;
            }
        }
    }

    /// Stops a monitor's actor and forgets its live state (deleted, or no longer ours).
    pub(crate) async fn forget_monitor(&self, id: &MonitorId) {
        let parts = &self.inner.parts;
        if let Ok(supervisor) = self.supervisor() {
            let _ = call(&supervisor, |port| SupervisorMsg::Remove(id.clone(), port)).await;
        }
        parts.board.remove(id);
        if let Ok(router) = self.router(id) {
            let _ = call(&router, |port| RouterMsg::Forget(id.clone(), port)).await;
        }
    }

    async fn start_monitor(
        &self,
        monitor: Monitor,
        built: Option<Box<dyn cloudroutes_checks::Check>>,
    ) -> Result<MonitorView, NodeError> {
        let parts = &self.inner.parts;
        let previous = parts.board.get(&monitor.id).map(|entry| entry.monitor);
        let attached: Vec<ReactionId> = monitor
            .reactions
            .iter()
            .filter(|id| previous.as_ref().is_none_or(|p| !p.reactions.contains(id)))
            .cloned()
            .collect();
        let monitor = Arc::new(monitor);
        parts.board.upsert(Arc::clone(&monitor), MonitorState::default());
        if !attached.is_empty() {
            let id = monitor.id.clone();
            call(&self.router(&id)?, |port| RouterMsg::Attach(id.clone(), attached, port)).await?;
        }
        let supervisor = self.supervisor()?;
        match start_message(&monitor, built) {
            Some(upsert) => {
                let _ = supervisor.cast(upsert);
            }
            None => {
                let _ =
                    call(&supervisor, |port| SupervisorMsg::Remove(monitor.id.clone(), port)).await;
            }
        }
        let state = parts.board.state(&monitor.id).unwrap_or_default();
        Ok(MonitorView { monitor: (*monitor).clone(), state })
    }

    async fn stored_monitor(&self, id: &MonitorId) -> Result<Monitor, NodeError> {
        self.inner
            .parts
            .store
            .get_monitor(id)
            .await?
            .ok_or_else(|| not_found("monitor", id.as_str()))
    }

    /// Returns one monitor with its live state.
    ///
    /// # Errors
    /// `NotFound` or `Store`.
    pub async fn get_monitor(&self, id: &MonitorId) -> Result<MonitorView, NodeError> {
        let monitor = self.stored_monitor(id).await?;
        let state = self.state_of(id).await?;
        Ok(MonitorView { monitor, state })
    }

    async fn state_of(&self, id: &MonitorId) -> Result<MonitorState, NodeError> {
        match self.inner.parts.board.state(id) {
            Some(state) => Ok(state),
            None => Ok(self.inner.parts.store.get_state(id).await?.unwrap_or_default()),
        }
    }

    /// Lists monitors ordered by id after `after`, filtered; returns the page and the cursor
    /// of the next page.
    ///
    /// # Errors
    /// `Store`.
    pub async fn list_monitors(
        &self,
        filter: &MonitorFilter,
        after: Option<MonitorId>,
        limit: usize,
    ) -> Result<(Vec<MonitorView>, Option<String>), NodeError> {
        let mut items = Vec::new();
        let mut cursor = after;
        loop {
            let page = self.inner.parts.store.list_monitors(cursor.as_ref(), limit).await?;
            let exhausted = page.len() < limit;
            for monitor in page {
                cursor = Some(monitor.id.clone());
                if filter.tag.as_ref().is_some_and(|tag| !monitor.tags.contains(tag)) {
                    continue;
                }
                let state = self.state_of(&monitor.id).await?;
                if filter.status.is_some_and(|status| status != state.status) {
                    continue;
                }
                items.push(MonitorView { monitor, state });
                if items.len() == limit {
                    let next = cursor.map(|c| c.0);
                    return Ok((items, next));
                }
            }
            if exhausted {
                return Ok((items, None));
            }
        }
    }

    /// Deletes a monitor: its actor stops, its state and history go.
    ///
    /// # Errors
    /// `NotFound` or `Store`.
    pub async fn delete_monitor(&self, id: &MonitorId) -> Result<(), NodeError> {
        self.stored_monitor(id).await?;
        match self.owner(id) {
            cluster::Owner::Local => {
                call(&self.supervisor()?, |port| SupervisorMsg::Remove(id.clone(), port)).await?;
                self.forget_monitor(id).await;
                self.inner.parts.store.delete_monitor(id).await?;
            }
            owner => {
                self.inner.parts.store.delete_monitor(id).await?;
                if let cluster::Owner::Remote(node) = owner {
                    self.notify(&node, PeerNotice::MonitorDeleted { monitor_id: id.clone() });
                }
            }
        }
        Ok(())
    }

    /// Runs a monitor's check now, records the result like any other, and returns it.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` for webhook-driven monitors.
    pub async fn run_now(&self, id: &MonitorId) -> Result<(CheckOutcome, MonitorView), NodeError> {
        let monitor = self.stored_monitor(id).await?;
        match self.owner(id) {
            cluster::Owner::Local => self.run_now_local(id, monitor).await,
            cluster::Owner::Remote(node) => self.run_now_remote(&node, monitor).await,
            cluster::Owner::Moving(message) => Err(NodeError::Unavailable(message)),
        }
    }

    /// Runs a monitor this node owns now.
    pub(crate) async fn run_now_local(
        &self,
        id: &MonitorId,
        monitor: Monitor,
    ) -> Result<(CheckOutcome, MonitorView), NodeError> {
        let parts = &self.inner.parts;
        let actor =
            call(&self.supervisor()?, |port| SupervisorMsg::Lookup(id.clone(), port)).await?;
        let outcome = match actor {
            Some(actor) => {
                // The actor answers within the check's own deadline, at most this long.
                let timeout = CALL_TIMEOUT + MAX_CHECK_TIMEOUT;
                match actor.call(MonitorMsg::RunNow, Some(timeout)).await {
                    Ok(ractor::rpc::CallResult::Success(outcome)) => outcome,
                    _ => return Err(NodeError::Unavailable("monitor did not answer".into())),
                }
            }
            None => {
                let config = CheckConfig::parse(&monitor.check)
                    .map_err(|e| NodeError::invalid(format!("check.{}", e.field), e.message))?;
                let Some(check) = config
                    .build(&parts.check_context)
                    .map_err(|e| NodeError::invalid(format!("check.{}", e.field), e.message))?
                else {
                    return Err(NodeError::Conflict(format!(
                        "a `{}` monitor gets its results from outside and has no check to run",
                        monitor.check.kind()
                    )));
                };
                let outcome = run_check(check.as_ref(), &parts.monitor_shared).await;
                self.observe(id, outcome.clone(), Method::Automatic).await?;
                outcome
            }
        };
        // The actor reported to the router by cast; a flush round trip orders us after it.
        call(&self.router(id)?, RouterMsg::Flush).await?;
        let state = self.state_of(id).await?;
        Ok((outcome, MonitorView { monitor, state }))
    }

    /// Records a result that did not come from a scheduled check (manual or webhook) and
    /// returns the new state. Reactions run as for any result.
    ///
    /// # Errors
    /// `NotFound`, or `Unavailable` when the router does not answer.
    pub async fn observe(
        &self,
        id: &MonitorId,
        outcome: CheckOutcome,
        method: Method,
    ) -> Result<MonitorState, NodeError> {
        match self.owner(id) {
            cluster::Owner::Local => self.observe_local(id, outcome, method).await,
            cluster::Owner::Remote(node) => self.observe_remote(&node, id, outcome, method).await,
            cluster::Owner::Moving(message) => Err(NodeError::Unavailable(message)),
        }
    }

    /// Records a result for a monitor this node owns.
    pub(crate) async fn observe_local(
        &self,
        id: &MonitorId,
        outcome: CheckOutcome,
        method: Method,
    ) -> Result<MonitorState, NodeError> {
        let observation = Observation {
            outcome,
            method,
            at: OffsetDateTime::now_utc(),
            node: self.inner.node_id.to_string(),
        };
        let router = self.router(id)?;
        let state = call(&router, |port| RouterMsg::Observe {
            id: id.clone(),
            observation,
            reply: Some(port),
        })
        .await?;
        state.ok_or_else(|| not_found("monitor", id.as_str()))
    }

    /// Marks a monitor failed or healthy by hand.
    ///
    /// # Errors
    /// `NotFound` or `Unavailable`.
    pub async fn set_manual(
        &self,
        id: &MonitorId,
        status: Status,
        reason: Option<String>,
    ) -> Result<MonitorView, NodeError> {
        let monitor = self.stored_monitor(id).await?;
        let reason = reason.unwrap_or_else(|| format!("marked {} by hand", status.as_str()));
        let outcome = match status {
            Status::Failed => CheckOutcome::Failed { reason },
            _ => CheckOutcome::Healthy { reason },
        };
        let state = self.observe(id, outcome, Method::Manual).await?;
        Ok(MonitorView { monitor, state })
    }

    /// Returns a monitor's history, newest first, and the cursor of the next page.
    ///
    /// # Errors
    /// `NotFound` or `Store`.
    pub async fn events(
        &self,
        id: &MonitorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Event>, Option<String>), NodeError> {
        self.stored_monitor(id).await?;
        let events = self.inner.parts.store.list_events(id, before, limit).await?;
        let next = if events.len() == limit { events.last().map(|e| e.id.clone()) } else { None };
        Ok((events, next))
    }

    /// Stops monitors, flushes state, waits for running reactions (up to their timeout) and
    /// stops the actors.
    pub async fn shutdown(&self) {
        let parts = &self.inner.parts;
        parts.stopping.store(true, Ordering::SeqCst);
        if let Some(supervisor) = parts.supervisor() {
            let _ = supervisor.stop_and_wait(None, Some(CALL_TIMEOUT)).await;
        }
        for router in parts.routers().all() {
            let _ = call(&router, RouterMsg::Flush).await;
        }
        self.inner.tasks.close();
        let grace = Duration::from_millis(self.inner.config.engine.reaction_timeout_ms);
        if tokio::time::timeout(grace, self.inner.tasks.wait()).await.is_err() {
            warn!("reactions still running at shutdown were abandoned");
        }
        for router in parts.routers().all() {
            let _ = router.stop_and_wait(None, Some(CALL_TIMEOUT)).await;
        }
        self.leave_cluster().await;
        self.inner.root.stop(None);
        info!("node stopped");
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("node_id", &self.inner.node_id).finish_non_exhaustive()
    }
}

async fn call<M, T, F>(actor: &ActorRef<M>, build: F) -> Result<T, NodeError>
where
    M: ractor::Message,
    T: Send + 'static,
    F: FnOnce(ractor::RpcReplyPort<T>) -> M,
{
    match actor.call(build, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(value)) => Ok(value),
        Ok(_) => Err(NodeError::Unavailable("an actor did not answer in time".into())),
        Err(err) => Err(NodeError::Unavailable(format!("an actor is gone: {err}"))),
    }
}

fn not_found(what: &'static str, id: &str) -> NodeError {
    NodeError::NotFound { what, id: id.to_owned() }
}

fn new_webhook_key() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
