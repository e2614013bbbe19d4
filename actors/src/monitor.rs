//! One actor per monitor: it owns its schedule, runs its check inside the node-wide
//! concurrency limit and reports to its reaction router.
//!
//! The schedule is a grid: tick `k` is due at `first_due + k * interval`. A [`Ticker`] task
//! walks the grid and sends each tick; one long-lived timer per monitor costs less CPU than a
//! task spawned per tick. A tick that starts late is measured (schedule lateness) and the next
//! one stays on the grid; a check that runs past whole intervals skips them rather than
//! bursting (the ticker sends no tick while one is waiting or running). A generation number
//! makes stale ticks harmless after a reconfigure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cloudroutes_checks::{Check, Delivery};
use cloudroutes_engine::gate::Observation;
use cloudroutes_engine::{CheckOutcome, Method, MonitorId};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::gate::Gate;
use crate::metrics::{Metrics, TypeLabel, TypeOutcome};
use crate::router::{RouterMsg, Routers};

/// Extra time granted past a check's own timeout before the actor gives up on it.
const CHECK_DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// Messages a monitor actor handles (local only: never advertised to peers).
#[derive(RactorMessage)]
pub enum MonitorMsg {
    /// Time to run the tick of this generation due at this instant; ignored unless the
    /// generation matches.
    Tick(u64, Instant),
    /// Replace the check and interval; the schedule restarts at a random phase.
    Reconfigure {
        /// The new check.
        check: Arc<dyn Check>,
        /// The new interval.
        interval: Duration,
    },
    /// Run the check now (outside the schedule), report it, and reply with the outcome.
    RunNow(RpcReplyPort<CheckOutcome>),
    /// Hand a webhook delivery to the check's memory (heartbeat pings, alert updates); report
    /// the result it yields, if any, and reply with it.
    Deliver(Delivery, RpcReplyPort<Option<CheckOutcome>>),
}

/// What every monitor actor on a node shares.
#[derive(Debug)]
pub struct MonitorShared {
    /// Where results go.
    pub routers: Arc<Routers>,
    /// The node-wide limit on checks running at once.
    pub check_limiter: Arc<Semaphore>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// This node's id.
    pub node_id: Arc<str>,
}

/// Arguments to start a monitor actor.
pub struct MonitorArgs {
    /// The monitor.
    pub id: MonitorId,
    /// Its runnable check.
    pub check: Arc<dyn Check>,
    /// Time between checks.
    pub interval: Duration,
    /// Delay before the first check (a random phase, so monitors spread out).
    pub first_delay: Duration,
    /// The gate holding the first check back, if any (see [`Gate`]).
    pub gate: Option<Arc<Gate>>,
    /// Node-wide shared parts.
    pub shared: Arc<MonitorShared>,
}

/// A monitor actor's state.
pub struct MonitorActorState {
    id: MonitorId,
    check: Arc<dyn Check>,
    generation: u64,
    ticker: Ticker,
    /// Kept for the schedules a reconfigure starts: they wait behind it too.
    gate: Option<Arc<Gate>>,
    shared: Arc<MonitorShared>,
}

/// The task that sends a monitor its ticks, one per grid point, while none is in flight;
/// aborted when dropped (a reconfigure starts another, and the actor's end drops it).
struct Ticker {
    task: JoinHandle<()>,
    /// True from a tick's send until its check has run.
    in_flight: Arc<AtomicBool>,
}

impl Ticker {
    /// Starts the ticks of `generation` at `first_due`, then every `interval`; behind `gate`,
    /// only once it is open.
    fn start(
        monitor: ActorRef<MonitorMsg>,
        generation: u64,
        (first_due, interval): (Instant, Duration),
        gate: Option<Arc<Gate>>,
    ) -> Self {
        let in_flight = Arc::new(AtomicBool::new(false));
        let busy = Arc::clone(&in_flight);
        let task = tokio::spawn(async move {
            let mut due = first_due;
            if let Some(gate) = gate {
                // Boxed, so that the waiting does not enlarge every ticker's task for good.
                due = Box::pin(gate.pass(due, interval)).await;
            }
            let sleep = tokio::time::sleep_until(due);
            tokio::pin!(sleep);
            loop {
                sleep.as_mut().await;
                if !busy.swap(true, Ordering::AcqRel)
                    && monitor.cast(MonitorMsg::Tick(generation, due)).is_err()
                {
                    return; // the actor is gone
                }
                due += interval;
                let now = Instant::now();
                if due <= now {
                    // Fell behind (a stalled runtime): the next grid point still ahead.
                    let behind = now.duration_since(due).as_nanos();
                    let skipped = behind / interval.as_nanos().max(1) + 1;
                    due += interval * u32::try_from(skipped).unwrap_or(u32::MAX);
                }
                sleep.as_mut().reset(due);
            }
        });
        Self { task, in_flight }
    }

    /// Marks the tick in flight as done, so that the next grid point sends one again.
    fn done(&self) {
        self.in_flight.store(false, Ordering::Release);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The monitor actor.
pub struct MonitorActor;

impl Actor for MonitorActor {
    type Msg = MonitorMsg;
    type State = MonitorActorState;
    type Arguments = MonitorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MonitorMsg>,
        args: MonitorArgs,
    ) -> Result<MonitorActorState, ActorProcessingErr> {
        let first_due = Instant::now() + args.first_delay;
        Ok(MonitorActorState {
            id: args.id,
            check: args.check,
            generation: 0,
            ticker: Ticker::start(myself, 0, (first_due, args.interval), args.gate.clone()),
            gate: args.gate,
            shared: args.shared,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<MonitorMsg>,
        message: MonitorMsg,
        state: &mut MonitorActorState,
    ) -> Result<(), ActorProcessingErr> {
        // Boxed: an actor's task is as large as the largest future it awaits, so awaiting a
        // check in place would make every idle actor carry a check's future (about 0.4 KiB
        // each). One short-lived allocation per message costs less than that held a million
        // times.
        Box::pin(handle_message(myself, message, state)).await;
        Ok(())
    }
}

/// Handles one message (see [`MonitorActor`]'s `handle`).
async fn handle_message(
    myself: ActorRef<MonitorMsg>,
    message: MonitorMsg,
    state: &mut MonitorActorState,
) {
    match message {
        MonitorMsg::Tick(generation, due) if generation == state.generation => {
            let lateness = Instant::now().saturating_duration_since(due);
            state.shared.metrics.record_lateness(lateness);
            // A watchdog (its own schedule) may have nothing to report; an ordinary check
            // runs directly, not wrapped in the watchdog path.
            let timed = if state.check.interval().is_some() {
                tick_check(state.check.as_ref(), &state.shared).await
            } else {
                Some(run_check_timed(state.check.as_ref(), &state.shared).await)
            };
            if let Some((outcome, took)) = timed {
                report(state, outcome, Method::Automatic, took);
            }
            state.ticker.done();
        }
        MonitorMsg::Tick(..) => {} // a tick from before a reconfigure
        MonitorMsg::Reconfigure { check, interval } => {
            state.check = check;
            state.generation += 1;
            let first_due = Instant::now() + random_phase(interval);
            let gate = state.gate.clone();
            state.ticker = Ticker::start(myself, state.generation, (first_due, interval), gate);
        }
        MonitorMsg::RunNow(reply) => {
            let (outcome, took) = run_check_timed(state.check.as_ref(), &state.shared).await;
            report(state, outcome.clone(), Method::Automatic, took);
            let _ = reply.send(outcome);
        }
        MonitorMsg::Deliver(delivery, reply) => {
            let outcome = state.check.deliver(&delivery);
            if let Some(outcome) = &outcome {
                report(state, outcome.clone(), Method::Webhook, None);
            }
            let _ = reply.send(outcome);
        }
    }
}

/// Sends a result to the monitor's router, with how long its check ran (the state's
/// `last_duration_ms`, set in the same board update as the result).
fn report(
    state: &MonitorActorState,
    outcome: CheckOutcome,
    method: Method,
    took: Option<Duration>,
) {
    let observation = Observation {
        outcome,
        method,
        at: OffsetDateTime::now_utc(),
        node: Arc::clone(&state.shared.node_id),
    };
    // A router that is restarting drops this one result; the next tick reports again.
    let Some(router) = state.shared.routers.for_monitor(&state.id) else { return };
    let _ =
        router.cast(RouterMsg::Observe { id: state.id.clone(), observation, took, reply: None });
}

/// Runs a check inside the node-wide limit and a deadline, and records its metrics.
pub async fn run_check(check: &dyn Check, shared: &MonitorShared) -> CheckOutcome {
    run_check_timed(check, shared).await.0
}

/// Runs a check like [`run_check`] and also returns how long it ran (none when it could not
/// start).
pub async fn run_check_timed(
    check: &dyn Check,
    shared: &MonitorShared,
) -> (CheckOutcome, Option<Duration>) {
    limited(check, shared, async { Some(check.run().await) }).await.unwrap_or_else(|| {
        (CheckOutcome::Unknown { reason: "the check reported nothing".into() }, None)
    })
}

/// Runs a scheduled tick: the check itself, or a watchdog's sweep that may report nothing.
async fn tick_check(
    check: &dyn Check,
    shared: &MonitorShared,
) -> Option<(CheckOutcome, Option<Duration>)> {
    limited(check, shared, check.tick()).await
}

/// Runs `work` for `check` inside the node-wide limit and a deadline, and records the metrics
/// of what it reports; returns it with how long it ran.
async fn limited(
    check: &dyn Check,
    shared: &MonitorShared,
    work: impl Future<Output = Option<CheckOutcome>>,
) -> Option<(CheckOutcome, Option<Duration>)> {
    let Ok(_permit) = shared.check_limiter.acquire().await else {
        return Some((CheckOutcome::Unknown { reason: "node is shutting down".into() }, None));
    };
    let started = Instant::now();
    let deadline = check.timeout() + CHECK_DEADLINE_GRACE;
    let outcome = match tokio::time::timeout(deadline, work).await {
        Ok(outcome) => outcome?,
        Err(_) => CheckOutcome::Unknown {
            reason: format!("check did not finish within {} ms", deadline.as_millis()),
        },
    };
    let kind = check.kind();
    let metrics = &shared.metrics;
    metrics.checks.get_or_create(&TypeOutcome { r#type: kind, outcome: outcome.label() }).inc();
    let took = started.elapsed();
    metrics.check_duration.get_or_create(&TypeLabel { r#type: kind }).observe(took.as_secs_f64());
    Some((outcome, Some(took)))
}

/// Returns a random delay in `[0, interval)`.
pub fn random_phase(interval: Duration) -> Duration {
    let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(rand::random_range(0..nanos))
}
