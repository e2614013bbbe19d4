//! Running reactions: the loaded reaction book, and the task that runs one firing with a
//! node-wide concurrency limit, a deadline, retries where safe, and a history record.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cloudroutes_engine::gate::GateRule;
use cloudroutes_engine::{
    Event, EventKind, MonitorId, Reaction, ReactionId, ReactionOutcome, Store, Timestamp,
};
use cloudroutes_reactions::{Effect, Fired, Incident};
use futures::FutureExt;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::metrics::{Metrics, OpLabel, TypeOutcome};

/// Attempts per firing for idempotent reactions whose error is retryable.
const MAX_ATTEMPTS: u32 = 3;

/// A reaction definition with its runnable form.
#[derive(Debug)]
pub struct LoadedReaction {
    /// The definition as stored.
    pub def: Reaction,
    /// The gating parameters.
    pub rule: GateRule,
    /// The runnable reaction.
    pub runner: Arc<dyn cloudroutes_reactions::Reaction>,
    last_run_at: Mutex<Option<Timestamp>>,
}

impl LoadedReaction {
    /// Wraps a definition and its runnable form.
    pub fn new(def: Reaction, runner: Arc<dyn cloudroutes_reactions::Reaction>) -> Self {
        let rule = GateRule {
            trigger: def.trigger,
            frequency_secs: def.frequency_secs,
            call_on: def.call_on,
        };
        Self { def, rule, runner, last_run_at: Mutex::new(None) }
    }

    /// Returns when this reaction last ran on this node.
    pub fn last_run_at(&self) -> Option<Timestamp> {
        *self.last_run_at.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records a run at `at`, keeping the latest one.
    pub(crate) fn set_last_run_at(&self, at: Timestamp) {
        let mut last = self.last_run_at.lock().unwrap_or_else(|poison| poison.into_inner());
        if last.is_none_or(|last| last < at) {
            *last = Some(at);
        }
    }
}

/// The reactions loaded on this node, by id.
#[derive(Debug, Default)]
pub struct ReactionBook {
    reactions: RwLock<HashMap<ReactionId, Arc<LoadedReaction>>>,
}

impl ReactionBook {
    /// Returns one loaded reaction.
    pub fn get(&self, id: &ReactionId) -> Option<Arc<LoadedReaction>> {
        self.reactions.read().unwrap_or_else(|poison| poison.into_inner()).get(id).cloned()
    }

    /// Inserts or replaces a reaction, keeping its last run time.
    pub fn insert(&self, reaction: LoadedReaction) {
        let mut map = self.reactions.write().unwrap_or_else(|poison| poison.into_inner());
        if let Some(at) = map.get(&reaction.def.id).and_then(|previous| previous.last_run_at()) {
            reaction.set_last_run_at(at);
        }
        map.insert(reaction.def.id.clone(), Arc::new(reaction));
    }

    /// Returns the ids of every loaded reaction.
    pub fn ids(&self) -> Vec<ReactionId> {
        self.reactions.read().unwrap_or_else(|poison| poison.into_inner()).keys().cloned().collect()
    }

    /// Removes a reaction; returns whether it was there.
    pub fn remove(&self, id: &ReactionId) -> bool {
        self.reactions.write().unwrap_or_else(|poison| poison.into_inner()).remove(id).is_some()
    }
}

/// What reaction runs share on a node.
pub struct FiringContext {
    /// Where outcomes are recorded.
    pub store: Arc<dyn Store>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The node-wide limit on reactions running at once.
    pub limiter: Arc<Semaphore>,
    /// Upper bound on one firing, retries included.
    pub timeout: Duration,
    /// Tracks running firings so shutdown can wait for them.
    pub tasks: tokio_util::task::TaskTracker,
    /// Firings decided before this instant do not run (quarantine after the store restarted).
    pub hold_until: Mutex<Option<Instant>>,
    /// Monitors with a firing running, and how many.
    pub in_flight: Mutex<HashMap<MonitorId, usize>>,
    /// The blast-radius brake on destructive reactions.
    pub brake: crate::brake::Brake,
}

impl FiringContext {
    /// Holds every firing for `hold` from now (the store restarted and may have lost writes).
    pub fn hold_for(&self, hold: Duration) {
        let mut until = self.hold_until.lock().unwrap_or_else(|poison| poison.into_inner());
        *until = Some(Instant::now() + hold);
    }

    /// Returns whether firings are held now.
    pub fn held(&self) -> bool {
        let until = self.hold_until.lock().unwrap_or_else(|poison| poison.into_inner());
        until.is_some_and(|until| Instant::now() < until)
    }

    /// Runs one firing in its own task: a slow target never blocks a router.
    pub fn spawn(self: &Arc<Self>, reaction: Arc<LoadedReaction>, incident: Incident) {
        let context = Arc::clone(self);
        let monitor = incident.monitor_id.clone();
        *self.lock_in_flight().entry(monitor.clone()).or_insert(0) += 1;
        self.tasks.spawn(async move {
            context.run(reaction, incident).await;
            let mut in_flight = context.lock_in_flight();
            if let Some(count) = in_flight.get_mut(&monitor) {
                *count -= 1;
                if *count == 0 {
                    in_flight.remove(&monitor);
                }
            }
        });
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<MonitorId, usize>> {
        self.in_flight.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Returns the monitors with a firing still running (its outcome not yet recorded).
    pub fn in_flight_monitors(&self) -> Vec<MonitorId> {
        self.lock_in_flight().keys().cloned().collect()
    }

    async fn run(&self, reaction: Arc<LoadedReaction>, incident: Incident) {
        let Ok(_permit) = self.limiter.acquire().await else { return };
        let (outcome, detail) = self.attempt(&reaction, &incident).await;
        let now = OffsetDateTime::now_utc();
        // The firing time, which the monitor's state also remembers across restarts.
        reaction.set_last_run_at(incident.at);
        let kind = reaction.runner.kind();
        self.metrics
            .reactions
            .get_or_create(&TypeOutcome { r#type: kind, outcome: outcome.as_str() })
            .inc();
        match outcome {
            ReactionOutcome::Failed => warn!(monitor_id = %incident.monitor_id,
                reaction_id = %incident.reaction_id, reaction_type = kind, detail = %detail,
                "reaction failed"),
            _ => info!(monitor_id = %incident.monitor_id, reaction_id = %incident.reaction_id,
                reaction_type = kind, outcome = outcome.as_str(), detail = %detail, "reaction ran"),
        }
        let event = Event::new(
            incident.monitor_id.clone(),
            now,
            EventKind::Reaction {
                reaction_id: incident.reaction_id.clone(),
                reaction_type: kind.to_owned(),
                outcome,
                episode: incident.episode,
                detail,
                node: incident.node.clone(),
                // The firing key is the claim key: recording the outcome closes the claim.
                claim: Some(incident.idempotency_key.clone()),
            },
        );
        if let Err(err) = self.store.append_events(&[event]).await {
            self.metrics.store_errors.get_or_create(&OpLabel { op: "append_events" }).inc();
            error!(monitor_id = %incident.monitor_id, error = %err, "could not record a reaction outcome");
        }
    }

    /// Runs the reaction, retrying idempotent ones on retryable errors, within the deadline.
    async fn attempt(
        &self,
        reaction: &LoadedReaction,
        incident: &Incident,
    ) -> (ReactionOutcome, String) {
        let deadline = Instant::now() + self.timeout;
        let retry_allowed = reaction.runner.effect() == Effect::Idempotent;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let run = AssertUnwindSafe(reaction.runner.fire(incident)).catch_unwind();
            let error = match tokio::time::timeout(remaining, run).await {
                Ok(Ok(Ok(Fired::Executed(detail)))) => {
                    return (ReactionOutcome::Executed, with_attempts(detail, attempt));
                }
                Ok(Ok(Ok(Fired::Skipped(reason)))) => return (ReactionOutcome::Skipped, reason),
                Ok(Ok(Err(error)))
                    if retry_allowed && error.is_retryable() && attempt < MAX_ATTEMPTS =>
                {
                    let backoff = Duration::from_millis(500 * 2u64.pow(attempt - 1));
                    if Instant::now() + backoff >= deadline {
                        error.to_string()
                    } else {
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                }
                Ok(Ok(Err(error))) => error.to_string(),
                Ok(Err(_panic)) => "reaction panicked".to_owned(),
                Err(_) => format!("no result within {} ms", self.timeout.as_millis()),
            };
            return (ReactionOutcome::Failed, with_attempts(error, attempt));
        }
    }
}

fn with_attempts(detail: String, attempts: u32) -> String {
    if attempts == 1 { detail } else { format!("{detail} (after {attempts} attempts)") }
}
