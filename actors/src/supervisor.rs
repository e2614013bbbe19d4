//! The monitor supervisor: starts, reconfigures and stops monitor actors, and restarts a
//! crashed one with exponential backoff. A crash is never silent: it is logged, counted and
//! recorded in the monitor's history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cloudroutes_checks::Check;
use cloudroutes_engine::{Event, EventKind, MonitorId, Store};
use foldhash::{HashMap, HashMapExt};
use futures::future::join_all;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::RactorMessage;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::{error, warn};

use crate::gate::Gate;
use crate::monitor::{MonitorActor, MonitorArgs, MonitorMsg, MonitorShared, random_phase};

/// A crash this long after the last (re)start resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Most monitor actors spawned at once, by one [`SupervisorMsg::SpawnWaiting`].
const SPAWN_AT_ONCE: usize = 256;
/// Most monitor actors stopped before the supervisor lets other tasks run.
const STOP_AT_ONCE: usize = 1024;

/// A monitor to start, or to reconfigure if it runs.
pub struct Start {
    /// The monitor.
    pub id: MonitorId,
    /// Its check.
    pub check: Arc<dyn Check>,
    /// Its interval.
    pub interval: Duration,
    /// When its first check is due (already past: at once); `None` picks a random phase
    /// within the interval from when it is spawned. An instant, not a delay, so that a monitor
    /// waiting behind many others to be spawned keeps its schedule.
    pub first_due: Option<Instant>,
    /// The gate its first check waits behind, if any (a monitor spawned ahead of a takeover).
    pub gate: Option<Arc<Gate>>,
}

/// Messages the monitor supervisor handles.
#[derive(RactorMessage)]
pub enum SupervisorMsg {
    /// Start these monitors, or reconfigure those that run. New monitors wait in one queue,
    /// soonest due first (those without a due instant after, in arrival order), and are
    /// spawned many at once (see [`SupervisorMsg::SpawnWaiting`]).
    Upsert(Vec<Start>),
    /// Spawn the next batch of waiting monitors (self-sent, one batch per message, so that
    /// other messages, and sooner-due monitors of a later upsert, get in between).
    SpawnWaiting,
    /// Stop a monitor at once; replies whether it ran.
    Remove(MonitorId, RpcReplyPort<bool>),
    /// Stop many monitors at once (a partition handed over); replies how many ran.
    RemoveMany(Vec<MonitorId>, RpcReplyPort<usize>),
    /// Returns a running monitor's actor (spawning it now if it still waits).
    Lookup(MonitorId, RpcReplyPort<Option<ActorRef<MonitorMsg>>>),
    /// Restart a crashed monitor (self-scheduled after the backoff).
    Restart(MonitorId, u64),
    /// Returns how many monitors are supervised.
    Count(RpcReplyPort<usize>),
    /// Some gates opened: the monitors behind them now count as running.
    GatesOpened,
}

/// Arguments to start the monitor supervisor.
pub struct SupervisorArgs {
    /// What monitor actors share.
    pub shared: Arc<MonitorShared>,
    /// Where crash events are recorded.
    pub store: Arc<dyn Store>,
    /// First restart delay.
    pub backoff_initial: Duration,
    /// Longest restart delay.
    pub backoff_max: Duration,
}

struct Child {
    actor: Option<ActorRef<MonitorMsg>>,
    check: Arc<dyn Check>,
    interval: Duration,
    crashes: u32,
    started_at: Instant,
    incarnation: u64,
    /// Waiting in the queue to be spawned, with its first check's due instant.
    waiting: Option<Option<Instant>>,
    /// The gate its first check waits behind, if any.
    gate: Option<Arc<Gate>>,
    /// Spawned behind a gate that was closed, and counted in [`SupervisorState::held`].
    held: bool,
}

impl Child {
    fn behind_closed_gate(&self) -> bool {
        self.gate.as_ref().is_some_and(|gate| !gate.is_open())
    }
}

/// Where a waiting monitor stands in the queue: those with a due instant first, soonest
/// first, then the others in arrival order.
type QueueKey = (bool, Option<Instant>, u64);

/// Monitors waiting to be spawned, soonest due first.
#[derive(Default)]
struct Waiting {
    /// Waiting ids in order (keys are unique: the arrival breaks ties); an entry whose child
    /// no longer waits is stale. A B-tree rather than a binary heap: taking the first entries
    /// stays in its first leaf, where a heap walks its whole depth through cold memory for
    /// every one (hundreds of thousands wait in a takeover).
    queue: BTreeMap<QueueKey, MonitorId>,
    /// Children that wait (the queue may also hold stale entries).
    count: usize,
    arrivals: u64,
    /// A [`SupervisorMsg::SpawnWaiting`] is on its way.
    scheduled: bool,
}

impl Waiting {
    fn push(&mut self, id: MonitorId, due: Option<Instant>) {
        self.arrivals += 1;
        self.count += 1;
        self.queue.insert((due.is_none(), due, self.arrivals), id);
    }
}

/// The supervisor's state.
pub struct SupervisorState {
    args: SupervisorArgs,
    children: HashMap<MonitorId, Child>,
    by_actor: HashMap<ActorId, MonitorId>,
    waiting: Waiting,
    /// Spawned children held back by a gate (not running yet), as last counted.
    held: usize,
}

impl SupervisorState {
    /// Sets the `monitors_owned` gauge: supervised monitors that no longer wait to start,
    /// neither in the queue nor behind a closed gate.
    fn set_owned_gauge(&self) {
        let owned = self.children.len() - self.waiting.count - self.held;
        self.args.shared.metrics.monitors_owned.set(gauge_value(owned));
    }

    /// Takes up to `n` waiting monitors off the queue, soonest due first.
    fn take_waiting(&mut self, n: usize) -> Vec<(MonitorId, Option<Instant>)> {
        let mut batch = Vec::with_capacity(n.min(self.waiting.count));
        while batch.len() < n {
            let Some((_, id)) = self.waiting.queue.pop_first() else { break };
            if let Some(due) = self.stop_waiting(&id) {
                batch.push((id, due));
            }
        }
        batch
    }

    /// Marks a monitor as no longer waiting; returns its due instant if it waited. The queue
    /// entry stays behind, stale, unless nothing waits any more (then the queue is emptied).
    fn stop_waiting(&mut self, id: &MonitorId) -> Option<Option<Instant>> {
        let due = self.children.get_mut(id)?.waiting.take()?;
        self.waiting.count -= 1;
        if self.waiting.count == 0 {
            self.waiting.queue.clear();
        }
        Some(due)
    }

    /// Sends the next [`SupervisorMsg::SpawnWaiting`] unless one is on its way or none wait.
    fn schedule_spawning(&mut self, myself: &ActorRef<SupervisorMsg>) {
        if self.waiting.count > 0 && !self.waiting.scheduled {
            self.waiting.scheduled = myself.cast(SupervisorMsg::SpawnWaiting).is_ok();
        }
    }
}

/// The monitor supervisor actor.
pub struct MonitorSupervisor;

impl Actor for MonitorSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            args,
            children: HashMap::new(),
            by_actor: HashMap::new(),
            waiting: Waiting::default(),
            held: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Upsert(starts) => {
                for Start { id, check, interval, first_due, gate } in starts {
                    if let Some(child) = state.children.get_mut(&id) {
                        child.check = Arc::clone(&check);
                        child.interval = interval;
                        if let Some(actor) = &child.actor {
                            let _ = actor.cast(MonitorMsg::Reconfigure { check, interval });
                        }
                        continue;
                    }
                    let child = Child {
                        actor: None,
                        check,
                        interval,
                        crashes: 0,
                        started_at: Instant::now(),
                        incarnation: 0,
                        waiting: Some(first_due),
                        gate,
                        held: false,
                    };
                    state.children.insert(id.clone(), child);
                    state.waiting.push(id, first_due);
                }
                state.schedule_spawning(&myself);
            }
            SupervisorMsg::SpawnWaiting => {
                state.waiting.scheduled = false;
                let batch = state.take_waiting(SPAWN_AT_ONCE);
                start_children(&myself, state, &batch).await;
                state.set_owned_gauge();
                state.schedule_spawning(&myself);
            }
            SupervisorMsg::Remove(id, reply) => {
                let existed = remove_child(state, &id);
                state.set_owned_gauge();
                let _ = reply.send(existed);
            }
            SupervisorMsg::RemoveMany(ids, reply) => {
                // Stopped a chunk at a time, letting the tasks those stops wake run in between:
                // a whole partition set stopped at once would queue hundreds of thousands of
                // wake-ups ahead of everything else, the lease renewals included.
                let mut removed = 0;
                for chunk in ids.chunks(STOP_AT_ONCE) {
                    removed += chunk.iter().filter(|id| remove_child(state, id)).count();
                    tokio::task::yield_now().await;
                }
                state.set_owned_gauge();
                let _ = reply.send(removed);
            }
            SupervisorMsg::Lookup(id, reply) => {
                if let Some(due) = state.stop_waiting(&id) {
                    start_children(&myself, state, &[(id.clone(), due)]).await;
                    state.set_owned_gauge();
                }
                let actor = state.children.get(&id).and_then(|child| child.actor.clone());
                let _ = reply.send(actor);
            }
            SupervisorMsg::Restart(id, incarnation) => {
                let due = state
                    .children
                    .get(&id)
                    .is_some_and(|c| c.incarnation == incarnation && c.actor.is_none());
                if due {
                    start_children(&myself, state, &[(id, Some(Instant::now()))]).await;
                }
            }
            SupervisorMsg::Count(reply) => {
                let _ = reply.send(state.children.len());
            }
            SupervisorMsg::GatesOpened => {
                for child in state.children.values_mut() {
                    if child.held && !child.behind_closed_gate() {
                        child.held = false;
                        state.held -= 1;
                    }
                }
                state.set_owned_gauge();
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // Never the default (which stops the supervisor, and with it every monitor).
        let (cell, error) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, format!("stopped unexpectedly: {}", reason.unwrap_or_default()))
            }
            _ => return Ok(()),
        };
        // A child we removed on purpose is no longer in `by_actor`.
        let Some(id) = state.by_actor.remove(&cell.get_id()) else { return Ok(()) };
        let Some(child) = state.children.get_mut(&id) else { return Ok(()) };
        child.actor = None;
        if child.started_at.elapsed() >= STABLE_AFTER {
            child.crashes = 0;
        }
        child.crashes += 1;
        child.incarnation += 1;
        let exponent = (child.crashes - 1).min(16);
        let backoff = (state.args.backoff_initial * 2u32.pow(exponent)).min(state.args.backoff_max);
        let (attempt, incarnation) = (child.crashes, child.incarnation);
        state.args.shared.metrics.monitor_crashes.inc();
        error!(monitor_id = %id, attempt, backoff_ms = backoff.as_millis() as u64, error = %error,
            "monitor actor crashed; restarting after backoff");
        let event = Event::new(
            id.clone(),
            OffsetDateTime::now_utc(),
            EventKind::Crash { error, attempt, node: state.args.shared.node_id.to_string() },
        );
        let store = Arc::clone(&state.args.store);
        tokio::spawn(async move {
            if let Err(err) = store.append_events(&[event]).await {
                warn!(error = %err, "could not record a monitor crash");
            }
        });
        myself.send_after(backoff, move || SupervisorMsg::Restart(id, incarnation));
        Ok(())
    }
}

/// Spawns the actors of these supervised monitors at once, each with its first check's due
/// instant (`None`: a random phase from now). (One task awaits them all: spreading the spawns
/// over a task per core measured slower, as the actors' own start-up already runs on every
/// core.)
async fn start_children(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    starts: &[(MonitorId, Option<Instant>)],
) {
    let spawns = starts.iter().filter_map(|(id, first_due)| {
        let child = state.children.get(id)?;
        let first_delay = match first_due {
            Some(due) => due.saturating_duration_since(Instant::now()),
            None => random_phase(child.interval),
        };
        let args = MonitorArgs {
            id: id.clone(),
            check: Arc::clone(&child.check),
            interval: child.interval,
            first_delay,
            gate: child.gate.clone(),
            shared: Arc::clone(&state.args.shared),
        };
        let spawned = Actor::spawn_linked(None, MonitorActor, args, myself.get_cell());
        Some(async move { (id, spawned.await) })
    });
    for (id, spawned) in join_all(spawns).await {
        let Some(child) = state.children.get_mut(id) else { continue };
        match spawned {
            Ok((actor, _join)) => {
                state.by_actor.insert(actor.get_id(), id.clone());
                child.actor = Some(actor);
                child.started_at = Instant::now();
                if !child.held && child.behind_closed_gate() {
                    child.held = true;
                    state.held += 1;
                }
            }
            Err(err) => {
                // pre_start does no I/O, so this is the runtime refusing; retry like a crash.
                error!(monitor_id = %id, error = %err, "could not start monitor actor");
                child.incarnation += 1;
                let (id, incarnation) = (id.clone(), child.incarnation);
                myself.send_after(state.args.backoff_max, move || {
                    SupervisorMsg::Restart(id, incarnation)
                });
            }
        }
    }
}

fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Stops one child at once; returns whether it was supervised.
fn remove_child(state: &mut SupervisorState, id: &MonitorId) -> bool {
    state.stop_waiting(id);
    let Some(child) = state.children.remove(id) else { return false };
    if child.held {
        state.held -= 1;
    }
    if let Some(actor) = child.actor {
        state.by_actor.remove(&actor.get_id());
        actor.kill();
    }
    true
}
