//! The reaction router: folds results into monitor state, persists transitions before acting,
//! asks the gate which reactions fire, and starts them. Routine counters are written in
//! batches every `engine.state_flush_ms`.
//!
//! Routers are sharded by monitor id (see [`Board::shard_of`]); router `i` is the only writer
//! of board shard `i`'s states, so one monitor's results are handled strictly in order.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloudroutes_engine::gate::{self, Decision, Firing, Observation};
use cloudroutes_engine::{Event, EventKind, Method, MonitorId, MonitorState, ReactionId, Store};
use cloudroutes_reactions::{Effect, Incident};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;
use tracing::{error, warn};

use crate::board::Board;
use crate::firing::{FiringContext, LoadedReaction, ReactionBook};
use crate::metrics::{Metrics, OpLabel};

/// Messages a router handles.
#[derive(RactorMessage)]
pub enum RouterMsg {
    /// A result for one monitor; the reply, when asked for, carries the new state (or `None`
    /// when the monitor is not on this node).
    Observe {
        /// The monitor.
        id: MonitorId,
        /// The result.
        observation: Observation,
        /// Optional reply with the resulting state.
        reply: Option<RpcReplyPort<Option<MonitorState>>>,
    },
    /// Write pending counters now; replies when done.
    Flush(RpcReplyPort<()>),
    /// Periodic flush (self-scheduled).
    FlushTick,
    /// Forget pending writes for a monitor being deleted; replies when done.
    Forget(MonitorId, RpcReplyPort<()>),
    /// Reactions were newly attached to a monitor: prepare their memory ([`gate::attach`]).
    Attach(MonitorId, Vec<ReactionId>, RpcReplyPort<()>),
}

/// The routers of a node, indexed like the board's shards.
#[derive(Debug)]
pub struct Routers {
    refs: RwLock<Vec<Option<ActorRef<RouterMsg>>>>,
    board: Arc<Board>,
}

impl Routers {
    /// Returns an empty set with one slot per board shard; [`Routers::install`] fills it.
    pub fn new(board: Arc<Board>) -> Self {
        Self { refs: RwLock::new(vec![None; board.shard_count()]), board }
    }

    /// Returns the router that serves `id` (`None` only before start or while restarting).
    pub fn for_monitor(&self, id: &MonitorId) -> Option<ActorRef<RouterMsg>> {
        let refs = self.refs.read().unwrap_or_else(|poison| poison.into_inner());
        refs[self.board.shard_of(id)].clone()
    }

    /// Returns every running router.
    pub fn all(&self) -> Vec<ActorRef<RouterMsg>> {
        let refs = self.refs.read().unwrap_or_else(|poison| poison.into_inner());
        refs.iter().flatten().cloned().collect()
    }

    /// Returns the shard a router actor serves.
    pub fn shard_of_actor(&self, actor: ractor::ActorId) -> Option<usize> {
        let refs = self.refs.read().unwrap_or_else(|poison| poison.into_inner());
        refs.iter().position(|r| r.as_ref().is_some_and(|r| r.get_id() == actor))
    }

    /// Installs router `shard` (at start, or after a restart).
    pub fn install(&self, shard: usize, router: ActorRef<RouterMsg>) {
        let mut refs = self.refs.write().unwrap_or_else(|poison| poison.into_inner());
        refs[shard] = Some(router);
    }
}

/// Arguments to start a router.
pub struct RouterArgs {
    /// The board shard this router serves.
    pub shard: usize,
    /// The board.
    pub board: Arc<Board>,
    /// Loaded reactions.
    pub book: Arc<ReactionBook>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// What reaction runs share.
    pub firing: Arc<FiringContext>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// How often to flush counters.
    pub flush_every: Duration,
}

/// A router's state.
pub struct RouterState {
    args: RouterArgs,
    dirty: HashSet<MonitorId>,
}

/// The reaction router actor.
pub struct RouterActor;

impl Actor for RouterActor {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RouterMsg>,
        args: RouterArgs,
    ) -> Result<RouterState, ActorProcessingErr> {
        myself.send_after(args.flush_every, || RouterMsg::FlushTick);
        // After a restart, whatever was pending in the old router is written again.
        let dirty = args.board.ids_in_shard(args.shard).into_iter().collect();
        Ok(RouterState { args, dirty })
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        message: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RouterMsg::Observe { id, observation, reply } => {
                let new_state = observe(state, &id, observation).await;
                if let Some(reply) = reply {
                    let _ = reply.send(new_state);
                }
            }
            RouterMsg::Flush(reply) => {
                flush(state).await;
                let _ = reply.send(());
            }
            RouterMsg::FlushTick => {
                flush(state).await;
                myself.send_after(state.args.flush_every, || RouterMsg::FlushTick);
            }
            RouterMsg::Forget(id, reply) => {
                state.dirty.remove(&id);
                let _ = reply.send(());
            }
            RouterMsg::Attach(id, reactions, reply) => {
                let attached = state.args.board.update(&id, |entry| {
                    for reaction in &reactions {
                        gate::attach(&mut entry.state, reaction);
                    }
                });
                if attached.is_some() {
                    state.dirty.insert(id);
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RouterMsg>,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        flush(state).await;
        Ok(())
    }
}

/// What one result decided, computed under the board lock.
struct Step {
    state: MonitorState,
    events: Vec<Event>,
    firings: Vec<(Arc<LoadedReaction>, Firing)>,
    monitor_name: String,
}

async fn observe(
    router: &mut RouterState,
    id: &MonitorId,
    observation: Observation,
) -> Option<MonitorState> {
    let args = &router.args;
    let now = observation.at;
    let step = args.board.update(id, |entry| {
        let applied = gate::observe(&entry.state, &observation);
        let mut next = applied.state.clone();
        next.reactions.retain(|reaction_id, _| entry.monitor.reactions.contains(reaction_id));
        let mut firings = Vec::new();
        for reaction_id in &entry.monitor.reactions {
            let Some(reaction) = args.book.get(reaction_id) else { continue };
            let memory = next.reactions.get(reaction_id).cloned().unwrap_or_default();
            if let Decision::Fire(firing) = gate::decide(&reaction.rule, &memory, &applied, now) {
                gate::remember(
                    next.reactions.entry(reaction_id.clone()).or_default(),
                    &firing,
                    now,
                );
                firings.push((reaction, firing));
            }
        }
        let mut events = Vec::new();
        if let Some(change) = applied.change {
            events.push(Event::new(
                id.clone(),
                now,
                EventKind::StatusChange {
                    status: change.new,
                    prev_status: change.prev,
                    streak: next.streak,
                    episode: next.episode,
                    method: observation.method,
                    node: observation.node.clone(),
                    reason: observation.outcome.reason().to_owned(),
                },
            ));
        } else if !applied.counted && observation.method != Method::Automatic {
            events.push(Event::new(
                id.clone(),
                now,
                EventKind::Ignored {
                    method: observation.method,
                    reason: format!(
                        "{} result not counted ({}): {}",
                        observation.outcome.label(),
                        if next.manual_hold { "held by a manual failure" } else { "unknown" },
                        observation.outcome.reason()
                    ),
                    node: observation.node.clone(),
                },
            ));
        }
        entry.state = next.clone();
        Step { state: next, events, firings, monitor_name: entry.monitor.name.clone() }
    })?;

    let must_persist = !step.events.is_empty() || !step.firings.is_empty();
    let mut persisted = true;
    if must_persist {
        // Persist before acting: a transition and the firings it causes are durable first.
        if let Err(err) = args.store.record(id, &step.state, &step.events).await {
            persisted = false;
            args.metrics.store_errors.get_or_create(&OpLabel { op: "record" }).inc();
            error!(monitor_id = %id, error = %err, "could not persist a transition");
            router.dirty.insert(id.clone());
        } else {
            router.dirty.remove(id);
        }
    } else {
        router.dirty.insert(id.clone());
    }

    for (reaction, firing) in step.firings {
        if !persisted && reaction.runner.effect() == Effect::Destructive {
            warn!(monitor_id = %id, reaction_id = %reaction.def.id,
                "destructive reaction held: its firing could not be persisted");
            continue;
        }
        let incident = Incident {
            monitor_id: id.clone(),
            monitor_name: step.monitor_name.clone(),
            reaction_id: reaction.def.id.clone(),
            reaction_name: reaction.def.name.clone(),
            status: step.state.status,
            episode: firing.episode,
            reason: observation.outcome.reason().to_owned(),
            method: observation.method,
            at: now,
            idempotency_key: firing.key(id, &reaction.def.id),
            node: observation.node.clone(),
        };
        args.firing.spawn(reaction, incident);
    }
    Some(step.state)
}

async fn flush(router: &mut RouterState) {
    if router.dirty.is_empty() {
        return;
    }
    let ids: Vec<MonitorId> = router.dirty.drain().collect();
    let states = router.args.board.states_of(&ids);
    if let Err(err) = router.args.store.put_states(&states).await {
        router.args.metrics.store_errors.get_or_create(&OpLabel { op: "put_states" }).inc();
        error!(error = %err, count = states.len(), "could not flush monitor states; will retry");
        router.dirty.extend(ids);
    }
}
