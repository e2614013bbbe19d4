//! The node facade: the one entry point the HTTP API (and tests) use. It validates, writes the
//! store first, then tells the actors, so a definition that was acknowledged is never lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cloudroutes_checks::CheckContext;
use cloudroutes_checks::execute_shell_command::ExecPolicy;
use cloudroutes_engine::cluster::{Coordinator, Fences};
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::{Monitor, MonitorId, MonitorState, Reaction, ReactionId, Status, Store};
use cloudroutes_reactions::ReactionContext;
use ractor::{Actor, ActorRef};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::board::{Board, Listing, StatusCounts};
use crate::brake::{Brake, BrakeRules};
use crate::error::NodeError;
use crate::firing::{FiringContext, ReactionBook};
use crate::metrics::Metrics;
use crate::monitor::MonitorShared;
use crate::root::{NodeActor, NodeMsg, Parts, runnable};
use crate::router::{RouterMsg, Routers};
use crate::supervisor::SupervisorMsg;

mod claims;
mod cluster;
mod cluster_view;
mod egress;
mod intake;
mod keys;
mod liveness;
mod monitors;
mod partitions;
mod reactions;
mod routing;
mod standby;

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
    /// Only monitors whose name contains this text, ignoring case (give it lowercased).
    pub name_contains: Option<String>,
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
    /// Where the heartbeat and the lease renewals run, with a coordinator of their own.
    pub lifeline: crate::Lifeline,
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

    /// Starts a cluster member: loads every reaction. It takes no partition until
    /// [`Node::join_cluster`] (after [`Node::attach_transport`], when it has a transport);
    /// from then on it takes its share and keeps it as members come and go.
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
        let cluster = cluster::Cluster::new(setup, partitions);
        let node = Self::start_with(config, node_id, store, Some(cluster)).await?;
        if let Some(cluster) = node.cluster() {
            // A restarted node takes part again even if it was drained before.
            cluster.coordinator.set_draining(node.node_id(), false).await?;
        }
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
        let exec = ExecPolicy::from_config(&config.checks.exec)
            .map_err(|e| NodeError::Unavailable(format!("exec policy: {e}")))?;
        if exec.enabled {
            info!(allow = ?exec.allow, user = ?exec.user, "execute-shell-command may run programs");
        }
        let egress = egress::policy(&config).await?;
        let check_context = CheckContext::new(egress.clone())
            .map_err(|e| NodeError::Unavailable(format!("http client: {e}")))?
            .with_exec(exec);
        let smtp = smtp_relay(&config);
        if let Some(relay) = &smtp {
            relay.validate("smtp").map_err(|e| NodeError::Unavailable(format!("[smtp]: {e}")))?;
        }
        let reaction_context = ReactionContext::new(egress)
            .map_err(|e| NodeError::Unavailable(format!("http client: {e}")))?
            .with_notes(Arc::new(crate::notes::StoreNotes::new(Arc::clone(&store))))
            .with_smtp(smtp);
        let node_id: Arc<str> = Arc::from(node_id);
        let firing = Arc::new(FiringContext {
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
            limiter: Arc::new(Semaphore::new(config.engine.reaction_concurrency)),
            timeout: Duration::from_millis(config.engine.reaction_timeout_ms),
            tasks: tasks.clone(),
            hold_until: std::sync::Mutex::new(None),
            in_flight: std::sync::Mutex::new(std::collections::HashMap::new()),
            brake: Brake::new(BrakeRules::from_config(&config.engine), Arc::clone(&board)),
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
            let full = page.len() == LOAD_PAGE;
            count += page.len();
            after = page.last().map(|last| last.id.clone());
            let mut starts = Vec::with_capacity(page.len());
            for monitor in page {
                let state = states.remove(&monitor.id).unwrap_or_default();
                starts.extend(runnable(&monitor, &parts.check_context));
                parts.board.upsert(Arc::new(Listing::of(&monitor)), state);
            }
            let _ = supervisor.cast(SupervisorMsg::Upsert(starts));
            if !full {
                break;
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

    /// The monitor supervisor, unless it is being restarted.
    pub(crate) fn supervisor(&self) -> Result<ActorRef<SupervisorMsg>, NodeError> {
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

    /// Stops monitors, flushes state, waits for running reactions (up to their timeout) and
    /// stops the actors.
    pub async fn shutdown(&self) {
        let parts = &self.inner.parts;
        parts.stopping.store(true, Ordering::SeqCst);
        self.announce().await;
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

/// The node's default mail relay for `email-notification`, from `[smtp]` (none when
/// `smtp.host` is unset); its messages link to `http.public_url`.
fn smtp_relay(config: &NodeConfig) -> Option<cloudroutes_reactions::smtp::SmtpSettings> {
    use cloudroutes_engine::config::SmtpSecurity as Node;
    use cloudroutes_reactions::smtp::SmtpSecurity as Relay;
    let smtp = &config.smtp;
    let host = smtp.host.clone()?;
    Some(cloudroutes_reactions::smtp::SmtpSettings {
        host,
        port: smtp.port,
        security: match smtp.security {
            Node::Starttls => Relay::Starttls,
            Node::Tls => Relay::Tls,
            Node::None => Relay::None,
        },
        username: smtp.username.clone(),
        password: smtp.password.clone(),
        from: smtp.from.clone().unwrap_or_default(),
        accept_invalid_certs: smtp.accept_invalid_certs,
        public_url: config.http.public_url.clone(),
    })
}
