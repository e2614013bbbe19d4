//! The reaction router: folds results into monitor state, persists transitions before acting,
//! asks the gate which reactions fire, and starts them. Routine counters are written in
//! batches every `engine.state_flush_ms`.
//!
//! Routers are sharded by monitor id (see [`Board::shard_of`]); router `i` is the only writer
//! of board shard `i`'s states, so one monitor's results are handled strictly in order.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloudroutes_engine::gate::{self, Applied, Decision, Firing, Observation};
use cloudroutes_engine::store::{Claim, Transition};
use cloudroutes_engine::{
    Event, EventKind, Method, MonitorId, MonitorState, ReactionId, ReactionMemory, Store,
};
use cloudroutes_reactions::{Effect, Incident};
use foldhash::HashSet;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;

use crate::board::Board;
use crate::firing::{FiringContext, LoadedReaction, ReactionBook};
use crate::metrics::Metrics;

mod writer;

use writer::{Job, Pending, PendingFiring, Writer, WriterParts};

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
        /// How long the check run took, kept as the state's `last_duration_ms` (none for
        /// results from outside: webhooks and manual changes keep the last run's value).
        took: Option<std::time::Duration>,
        /// Optional reply with the resulting state.
        reply: Option<RpcReplyPort<Option<MonitorState>>>,
    },
    /// Write pending counters now; replies when done.
    Flush(RpcReplyPort<()>),
    /// Periodic flush (self-scheduled).
    FlushTick,
    /// Forget pending writes for a monitor being deleted; replies when done.
    Forget(MonitorId, RpcReplyPort<()>),
    /// Forget pending writes for many monitors (their partition moved away); replies when done.
    ForgetMany(Vec<MonitorId>, RpcReplyPort<()>),
    /// Hand the transitions queued since the last commit to the writer as one group, which
    /// writes them in one transaction before firing their reactions (self-sent: it runs after
    /// every message already in the mailbox).
    Commit,
    /// The writer could not write these monitors' states: write them with the next flush.
    Redirty(Vec<MonitorId>),
    /// Reactions were newly attached to a monitor: prepare their memory ([`gate::attach`]).
    Attach(MonitorId, Vec<ReactionId>, RpcReplyPort<()>),
    /// These firings were decided but never ran (their transition was not persisted, was
    /// fenced, or firings were held): forget that they fired, so the next result decides
    /// again.
    Unfired(Vec<Unfired>),
}

/// A firing to take back: the reaction memory it replaced, and the memory it set.
#[derive(Debug, Clone)]
pub struct Unfired {
    /// The monitor.
    pub id: MonitorId,
    /// The reaction.
    pub reaction_id: ReactionId,
    /// Its memory before the firing (`None`: it had none).
    pub before: Option<ReactionMemory>,
    /// Its memory after the firing; the rollback applies only while it is unchanged.
    pub after: ReactionMemory,
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
    /// Transitions waiting for the next group commit.
    pending: Vec<Pending>,
    writer: Writer,
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
        let writer = Writer::spawn(WriterParts {
            store: Arc::clone(&args.store),
            firing: Arc::clone(&args.firing),
            metrics: Arc::clone(&args.metrics),
            router: myself.clone(),
        });
        Ok(RouterState { args, dirty, pending: Vec::new(), writer })
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        message: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RouterMsg::Observe { id, observation, took, reply } => {
                let Some(step) = observe(state, &id, &observation, took, reply.is_some()) else {
                    if let Some(reply) = reply {
                        let _ = reply.send(None);
                    }
                    return Ok(());
                };
                match step.transition {
                    Some((new_state, events)) => {
                        // Persist before acting. Queue it; the first queued transition schedules
                        // the commit behind whatever is already in the mailbox, so a burst shares
                        // one write.
                        let firings = incidents(&id, &observation, &step.firings, &new_state);
                        let claims = firings
                            .iter()
                            .map(|(reaction, incident)| claim_of(reaction, incident))
                            .collect();
                        let firings = firings
                            .into_iter()
                            .zip(step.unfired)
                            .map(|((reaction, incident), unfired)| PendingFiring {
                                reaction,
                                incident,
                                unfired,
                            })
                            .collect();
                        let transition = Transition { id, state: new_state, events, claims };
                        state.pending.push(Pending { transition, firings, reply });
                        if state.pending.len() == 1 {
                            myself.cast(RouterMsg::Commit)?;
                        }
                    }
                    None => {
                        // A routine counter change: written with the next batch.
                        state.dirty.insert(id);
                        if let Some(reply) = reply {
                            let _ = reply.send(step.state);
                        }
                    }
                }
            }
            RouterMsg::Commit => commit(state),
            RouterMsg::Flush(reply) => {
                commit(state);
                flush(state);
                let (done, written) = tokio::sync::oneshot::channel();
                state.writer.send(Job::Barrier(done));
                tokio::spawn(async move {
                    let _ = written.await;
                    let _ = reply.send(());
                });
            }
            RouterMsg::FlushTick => {
                if !state.writer.flush_backlogged() {
                    flush(state);
                }
                myself.send_after(state.args.flush_every, || RouterMsg::FlushTick);
            }
            RouterMsg::Redirty(ids) => state.dirty.extend(ids),
            RouterMsg::Unfired(unfired) => {
                for firing in unfired {
                    let rolled_back = state.args.board.update(&firing.id, |entry| {
                        let memory = &mut entry.state.reactions;
                        if memory.get(&firing.reaction_id) != Some(&firing.after) {
                            return false;
                        }
                        match firing.before {
                            Some(before) => memory.insert(firing.reaction_id, before),
                            None => memory.remove(&firing.reaction_id),
                        };
                        true
                    });
                    if rolled_back == Some(true) {
                        state.dirty.insert(firing.id);
                    }
                }
            }
            RouterMsg::Forget(id, reply) => {
                state.dirty.remove(&id);
                let _ = reply.send(());
            }
            RouterMsg::ForgetMany(ids, reply) => {
                for id in &ids {
                    state.dirty.remove(id);
                }
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
        commit(state);
        flush(state);
        let (done, written) = tokio::sync::oneshot::channel();
        state.writer.send(Job::Barrier(done));
        let _ = tokio::time::timeout(Duration::from_secs(10), written).await;
        Ok(())
    }
}

/// What one result decided, computed under the board lock.
struct Step {
    /// The new state and its events, when they must be made durable before anything acts:
    /// a status change, an ignored non-automatic result, or a firing.
    transition: Option<(MonitorState, Vec<Event>)>,
    /// The new state of a routine result, only when a caller asked for it.
    state: Option<MonitorState>,
    /// What fires, with the monitor's name for the incidents.
    firings: Vec<(Arc<LoadedReaction>, Firing, String)>,
    /// How to take each firing back if it cannot run (same order as `firings`).
    unfired: Vec<Unfired>,
}

/// Folds one result into a monitor's state under its board lock and decides its firings.
/// This runs for every check result: the new state moves into the board, and is copied only
/// when it must be written at once or `want_state` asks for it.
fn observe(
    router: &RouterState,
    id: &MonitorId,
    observation: &Observation,
    took: Option<std::time::Duration>,
    want_state: bool,
) -> Option<Step> {
    let args = &router.args;
    let now = observation.at;
    args.board.update(id, |entry| {
        let applied = gate::observe(&entry.state, observation);
        let no_memory = ReactionMemory::default();
        let mut firings = Vec::new();
        for reaction_id in &entry.monitor.reactions {
            let Some(reaction) = args.book.get(reaction_id) else { continue };
            let memory = applied.state.reactions.get(reaction_id).unwrap_or(&no_memory);
            if let Decision::Fire(firing) = gate::decide(&reaction.rule, memory, &applied, now) {
                firings.push((reaction, firing, entry.monitor.name.clone()));
            }
        }
        let events = events_of(id, observation, &applied);
        let mut next = applied.state;
        if let Some(took) = took {
            next.last_duration_ms = Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
        }
        next.reactions.retain(|reaction_id, _| entry.monitor.reactions.contains(reaction_id));
        let mut unfired = Vec::with_capacity(firings.len());
        for (reaction, firing, _) in &firings {
            let before = next.reactions.get(&reaction.def.id).cloned();
            let memory = next.reactions.entry(reaction.def.id.clone()).or_default();
            gate::remember(memory, firing, now);
            unfired.push(Unfired {
                id: id.clone(),
                reaction_id: reaction.def.id.clone(),
                before,
                after: memory.clone(),
            });
        }
        let durable = !events.is_empty() || !firings.is_empty();
        let transition = durable.then(|| (next.clone(), events));
        let state = (!durable && want_state).then(|| next.clone());
        entry.state = next;
        Step { transition, state, firings, unfired }
    })
}

/// Returns the history events of one applied result: its status change, or the record of a
/// manual or webhook result that was not counted.
fn events_of(id: &MonitorId, observation: &Observation, applied: &Applied) -> Vec<Event> {
    let state = &applied.state;
    let kind = if let Some(change) = applied.change {
        EventKind::StatusChange {
            status: change.new,
            prev_status: change.prev,
            streak: state.streak,
            episode: state.episode,
            method: observation.method,
            node: observation.node.to_string(),
            reason: observation.outcome.reason().to_owned(),
        }
    } else if !applied.counted && observation.method != Method::Automatic {
        EventKind::Ignored {
            method: observation.method,
            reason: format!(
                "{} result not counted ({}): {}",
                observation.outcome.label(),
                if state.manual_hold { "held by a manual failure" } else { "unknown" },
                observation.outcome.reason()
            ),
            node: observation.node.to_string(),
        }
    } else {
        return Vec::new();
    };
    vec![Event::new(id.clone(), observation.at, kind)]
}

/// Builds the incident each firing answers.
fn incidents(
    id: &MonitorId,
    observation: &Observation,
    firings: &[(Arc<LoadedReaction>, Firing, String)],
    state: &MonitorState,
) -> Vec<(Arc<LoadedReaction>, Incident)> {
    firings
        .iter()
        .map(|(reaction, firing, monitor_name)| {
            let incident = Incident {
                monitor_id: id.clone(),
                monitor_name: monitor_name.clone(),
                reaction_id: reaction.def.id.clone(),
                reaction_name: reaction.def.name.clone(),
                status: state.status,
                episode: firing.episode,
                reason: observation.outcome.reason().to_owned(),
                method: observation.method,
                at: observation.at,
                idempotency_key: firing.key(id, &reaction.def.id),
                node: observation.node.to_string(),
            };
            (Arc::clone(reaction), incident)
        })
        .collect()
}

/// Returns the claim a firing takes in the same write as its transition.
fn claim_of(reaction: &LoadedReaction, incident: &Incident) -> Claim {
    Claim {
        key: incident.idempotency_key.clone(),
        reaction_id: incident.reaction_id.clone(),
        episode: incident.episode,
        destructive: reaction.runner.effect() == Effect::Destructive,
    }
}

/// Hands the queued transitions to the writer as one group.
fn commit(router: &mut RouterState) {
    if router.pending.is_empty() {
        return;
    }
    let pending = std::mem::take(&mut router.pending);
    // Each carries the monitor's latest state; if the write fails the writer says so.
    for p in &pending {
        router.dirty.remove(&p.transition.id);
    }
    router.writer.send(Job::Commit(pending));
}

/// Hands the states of monitors whose counters changed to the writer.
fn flush(router: &mut RouterState) {
    if router.dirty.is_empty() {
        return;
    }
    let ids: Vec<MonitorId> = router.dirty.drain().collect();
    let states = router.args.board.states_of(&ids);
    router.writer.send(Job::Flush(states));
}
