//! The monitor supervisor: starts, reconfigures and stops monitor actors, and restarts a
//! crashed one with exponential backoff. A crash is never silent: it is logged, counted and
//! recorded in the monitor's history.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cloudroutes_checks::Check;
use cloudroutes_engine::{Event, EventKind, MonitorId, Store};
use futures::future::join_all;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::RactorMessage;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::{error, warn};

use crate::monitor::{MonitorActor, MonitorArgs, MonitorMsg, MonitorShared, random_phase};

/// A crash this long after the last (re)start resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Most monitor actors spawned at once by one [`SupervisorMsg::Upsert`].
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
    /// When its first check runs, if it starts now; `None` picks a random phase within the
    /// interval.
    pub first_delay: Option<Duration>,
}

/// Messages the monitor supervisor handles.
#[derive(RactorMessage)]
pub enum SupervisorMsg {
    /// Start these monitors, or reconfigure those that run. New actors are spawned many at
    /// once (a page loaded at startup, a partition taken over), not one after another.
    Upsert(Vec<Start>),
    /// Stop a monitor at once; replies whether it ran.
    Remove(MonitorId, RpcReplyPort<bool>),
    /// Stop many monitors at once (a partition handed over); replies how many ran.
    RemoveMany(Vec<MonitorId>, RpcReplyPort<usize>),
    /// Returns a running monitor's actor.
    Lookup(MonitorId, RpcReplyPort<Option<ActorRef<MonitorMsg>>>),
    /// Restart a crashed monitor (self-scheduled after the backoff).
    Restart(MonitorId, u64),
    /// Returns how many monitors are supervised.
    Count(RpcReplyPort<usize>),
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
}

/// The supervisor's state.
pub struct SupervisorState {
    args: SupervisorArgs,
    children: HashMap<MonitorId, Child>,
    by_actor: HashMap<ActorId, MonitorId>,
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
        Ok(SupervisorState { args, children: HashMap::new(), by_actor: HashMap::new() })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Upsert(starts) => {
                let mut fresh = Vec::new();
                for Start { id, check, interval, first_delay } in starts {
                    if let Some(child) = state.children.get_mut(&id) {
                        child.check = Arc::clone(&check);
                        child.interval = interval;
                        if let Some(actor) = &child.actor {
                            let _ = actor.cast(MonitorMsg::Reconfigure { check, interval });
                        }
                        continue;
                    }
                    let first_delay = first_delay.unwrap_or_else(|| random_phase(interval));
                    let child = Child {
                        actor: None,
                        check,
                        interval,
                        crashes: 0,
                        started_at: Instant::now(),
                        incarnation: 0,
                    };
                    state.children.insert(id.clone(), child);
                    fresh.push((id, first_delay));
                }
                for chunk in fresh.chunks(SPAWN_AT_ONCE) {
                    start_children(&myself, state, chunk).await;
                }
                state.args.shared.metrics.monitors_owned.set(gauge_value(state.children.len()));
            }
            SupervisorMsg::Remove(id, reply) => {
                let existed = remove_child(state, &id);
                state.args.shared.metrics.monitors_owned.set(gauge_value(state.children.len()));
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
                state.args.shared.metrics.monitors_owned.set(gauge_value(state.children.len()));
                let _ = reply.send(removed);
            }
            SupervisorMsg::Lookup(id, reply) => {
                let actor = state.children.get(&id).and_then(|child| child.actor.clone());
                let _ = reply.send(actor);
            }
            SupervisorMsg::Restart(id, incarnation) => {
                let due = state
                    .children
                    .get(&id)
                    .is_some_and(|c| c.incarnation == incarnation && c.actor.is_none());
                if due {
                    start_children(&myself, state, &[(id, Duration::ZERO)]).await;
                }
            }
            SupervisorMsg::Count(reply) => {
                let _ = reply.send(state.children.len());
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

/// Spawns the actors of these supervised monitors at once, each with its first delay. (One
/// task awaits them all: spreading the spawns over a task per core measured slower, as the
/// actors' own start-up already runs on every core.)
async fn start_children(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    starts: &[(MonitorId, Duration)],
) {
    let spawns = starts.iter().filter_map(|(id, first_delay)| {
        let child = state.children.get(id)?;
        let args = MonitorArgs {
            id: id.clone(),
            check: Arc::clone(&child.check),
            interval: child.interval,
            first_delay: *first_delay,
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
    let Some(child) = state.children.remove(id) else { return false };
    if let Some(actor) = child.actor {
        state.by_actor.remove(&actor.get_id());
        actor.kill();
    }
    true
}
