//! The root supervisor of a node: it starts the reaction routers and the monitor supervisor,
//! and restarts either if it fails. Everything a child needs to be rebuilt lives in [`Parts`],
//! outside the children, so a restart loses nothing but in-flight messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloudroutes_checks::{Check, CheckConfig, CheckContext};
use cloudroutes_engine::{Monitor, Store};
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_cluster::RactorMessage;
use tracing::{error, warn};

use crate::board::Board;
use crate::firing::{FiringContext, ReactionBook};
use crate::metrics::Metrics;
use crate::monitor::MonitorShared;
use crate::router::{RouterActor, RouterArgs, RouterMsg, Routers};
use crate::supervisor::{MonitorSupervisor, Start, SupervisorArgs, SupervisorMsg};

/// Everything the node's actors are built from.
pub struct Parts {
    /// Monitors and their live state.
    pub board: Arc<Board>,
    /// Loaded reactions.
    pub book: Arc<ReactionBook>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// What reaction runs share.
    pub firing: Arc<FiringContext>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// What monitor actors share (includes the routers).
    pub monitor_shared: Arc<MonitorShared>,
    /// What checks share.
    pub check_context: CheckContext,
    /// Counter flush period.
    pub flush_every: Duration,
    /// Monitor restart backoff: first delay.
    pub backoff_initial: Duration,
    /// Monitor restart backoff: longest delay.
    pub backoff_max: Duration,
    /// The current monitor supervisor.
    pub supervisor: RwLock<Option<ActorRef<SupervisorMsg>>>,
    /// Set during shutdown: children that stop are not restarted.
    pub stopping: AtomicBool,
}

impl Parts {
    /// Returns the routers.
    pub fn routers(&self) -> &Arc<Routers> {
        &self.monitor_shared.routers
    }

    /// Returns the current monitor supervisor.
    pub fn supervisor(&self) -> Option<ActorRef<SupervisorMsg>> {
        self.supervisor.read().unwrap_or_else(|poison| poison.into_inner()).clone()
    }
}

/// Messages of the root supervisor (it only reacts to its children).
#[derive(RactorMessage)]
pub enum NodeMsg {}

/// The root supervisor actor.
pub struct NodeActor;

impl Actor for NodeActor {
    type Msg = NodeMsg;
    type State = Arc<Parts>;
    type Arguments = Arc<Parts>;

    async fn pre_start(
        &self,
        myself: ActorRef<NodeMsg>,
        parts: Arc<Parts>,
    ) -> Result<Arc<Parts>, ActorProcessingErr> {
        for shard in 0..parts.board.shard_count() {
            let router = spawn_router(&myself, &parts, shard).await?;
            parts.routers().install(shard, router);
        }
        let supervisor = spawn_supervisor(&myself, &parts).await?;
        *parts.supervisor.write().unwrap_or_else(|poison| poison.into_inner()) = Some(supervisor);
        Ok(parts)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<NodeMsg>,
        event: SupervisionEvent,
        parts: &mut Arc<Parts>,
    ) -> Result<(), ActorProcessingErr> {
        let (SupervisionEvent::ActorFailed(cell, _) | SupervisionEvent::ActorTerminated(cell, ..)) =
            event
        else {
            return Ok(());
        };
        if parts.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let id = cell.get_id();
        if let Some(shard) = parts.routers().shard_of_actor(id) {
            error!(shard, "reaction router stopped; restarting it");
            let router = spawn_router(&myself, parts, shard).await?;
            parts.routers().install(shard, router);
        } else if parts.supervisor().is_some_and(|s| s.get_id() == id) {
            error!("monitor supervisor stopped; restarting it and every monitor");
            let supervisor = spawn_supervisor(&myself, parts).await?;
            *parts.supervisor.write().unwrap_or_else(|poison| poison.into_inner()) =
                Some(supervisor.clone());
            let starts = parts
                .board
                .monitors()
                .iter()
                .filter_map(|listing| listing.definition())
                .filter_map(|monitor| runnable(&monitor, &parts.check_context))
                .collect();
            let _ = supervisor.cast(SupervisorMsg::Upsert(starts));
        }
        Ok(())
    }
}

/// Returns what starts `monitor`, or `None` when it does not run
/// (disabled, webhook-driven, or a stored check that no longer builds).
pub fn runnable(monitor: &Monitor, context: &CheckContext) -> Option<Start> {
    if !monitor.enabled {
        return None;
    }
    match CheckConfig::parse(&monitor.check).and_then(|config| config.build(context)) {
        Ok(check) => start_of(monitor, check),
        Err(err) => {
            warn!(monitor_id = %monitor.id, error = %err, "stored check does not build; not running it");
            None
        }
    }
}

/// Returns what starts `monitor` with its already built `check`, or
/// `None` when it does not run (disabled, or webhook-driven without a check of its own).
pub fn start_of(monitor: &Monitor, check: Option<Box<dyn Check>>) -> Option<Start> {
    let (true, Some(check)) = (monitor.enabled, check) else {
        return None;
    };
    // A watchdog (heartbeat, alert staleness) keeps its own schedule; other checks run every
    // `interval_secs`, which webhook-driven monitors lack.
    let interval = check
        .interval()
        .or_else(|| monitor.interval_secs.map(|secs| Duration::from_secs(u64::from(secs))))?;
    Some(Start {
        id: monitor.id.clone(),
        check: Arc::from(check),
        interval,
        first_due: None,
        gate: None,
    })
}

async fn spawn_router(
    myself: &ActorRef<NodeMsg>,
    parts: &Parts,
    shard: usize,
) -> Result<ActorRef<RouterMsg>, ActorProcessingErr> {
    let args = RouterArgs {
        shard,
        board: Arc::clone(&parts.board),
        book: Arc::clone(&parts.book),
        store: Arc::clone(&parts.store),
        firing: Arc::clone(&parts.firing),
        metrics: Arc::clone(&parts.metrics),
        flush_every: parts.flush_every,
    };
    let (router, _) = Actor::spawn_linked(None, RouterActor, args, myself.get_cell()).await?;
    Ok(router)
}

async fn spawn_supervisor(
    myself: &ActorRef<NodeMsg>,
    parts: &Parts,
) -> Result<ActorRef<SupervisorMsg>, ActorProcessingErr> {
    let args = SupervisorArgs {
        shared: Arc::clone(&parts.monitor_shared),
        store: Arc::clone(&parts.store),
        backoff_initial: parts.backoff_initial,
        backoff_max: parts.backoff_max,
    };
    let (supervisor, _) =
        Actor::spawn_linked(None, MonitorSupervisor, args, myself.get_cell()).await?;
    Ok(supervisor)
}
