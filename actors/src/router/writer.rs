//! The store writer of one router: a task that performs the router's writes in order, so the
//! router never waits on the disk.
//!
//! Whatever has queued since its last write (group commits of transitions, batches of routine
//! counters) goes into one `record_many` transaction, in the order it was queued; only then do
//! the firings of those transitions start and their callers get an answer (persist before
//! acting). A failed write is reported back to the router, which writes those states again with
//! its next counter flush. A firing runs only when its transition (and, in cluster mode, its
//! claim) was written: when the write failed, was fenced off, or firings are held, the firing
//! is taken back ([`RouterMsg::Unfired`]) so that the next result decides again. So is a
//! destructive firing the blast-radius brake holds back (`brake.rs`), before it is claimed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloudroutes_engine::store::{Recorded, Transition};
use cloudroutes_engine::{Event, EventKind, MonitorId, MonitorState, ReactionOutcome, Store};
use cloudroutes_reactions::{Effect, Incident};
use foldhash::HashSet;
use ractor::{ActorRef, RpcReplyPort};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use super::{RouterMsg, Unfired};
use crate::brake::Hold;
use crate::firing::{FiringContext, LoadedReaction};
use crate::metrics::{BrakeLabel, Metrics, OpLabel};

/// A firing that waits for its transition to be durable.
pub(super) struct PendingFiring {
    /// The reaction.
    pub reaction: Arc<LoadedReaction>,
    /// What it answers.
    pub incident: Incident,
    /// How to take it back if it cannot run.
    pub unfired: Unfired,
}

/// A transition waiting to be made durable, with what waits on it.
pub(super) struct Pending {
    /// The monitor's new state, its events and the claims of its firings.
    pub transition: Transition,
    /// Firings to start once it is durable.
    pub firings: Vec<PendingFiring>,
    /// A caller waiting for the new state.
    pub reply: Option<RpcReplyPort<Option<MonitorState>>>,
}

/// One unit of work for the writer.
pub(super) enum Job {
    /// Transitions to make durable before their firings start.
    Commit(Vec<Pending>),
    /// Routine counters.
    Flush(Vec<(MonitorId, MonitorState)>),
    /// Answered once every job queued before it is written.
    Barrier(oneshot::Sender<()>),
}

/// The router's handle on its writer.
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    flushes_queued: Arc<AtomicUsize>,
}

/// What the writer task needs.
pub(super) struct WriterParts {
    pub store: Arc<dyn Store>,
    pub firing: Arc<FiringContext>,
    pub metrics: Arc<Metrics>,
    pub router: ActorRef<RouterMsg>,
}

impl Writer {
    /// Starts the writer task; it ends when the router drops this handle.
    pub fn spawn(parts: WriterParts) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let flushes_queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(queue, parts, Arc::clone(&flushes_queued)));
        Self { jobs, flushes_queued }
    }

    /// Queues a job. The writer lives as long as this handle, so sending cannot fail.
    pub fn send(&self, job: Job) {
        if matches!(job, Job::Flush(_)) {
            self.flushes_queued.fetch_add(1, Ordering::SeqCst);
        }
        let _ = self.jobs.send(job);
    }

    /// Returns whether a counter flush is still waiting to be written: the next one can wait
    /// and carry everything (the dirty set dedups), instead of queueing copies behind a slow
    /// disk.
    pub fn flush_backlogged(&self) -> bool {
        self.flushes_queued.load(Ordering::SeqCst) > 0
    }
}

async fn run(
    mut queue: mpsc::UnboundedReceiver<Job>,
    parts: WriterParts,
    flushes: Arc<AtomicUsize>,
) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while let Ok(job) = queue.try_recv() {
            jobs.push(job);
        }
        write(jobs, &parts, &flushes).await;
    }
}

/// What to do once a batch is written (or not).
enum After {
    Fire(Vec<PendingFiring>, Option<(RpcReplyPort<Option<MonitorState>>, MonitorState)>),
    Barrier(oneshot::Sender<()>),
}

async fn write(jobs: Vec<Job>, parts: &WriterParts, flushes: &AtomicUsize) {
    let mut transitions = Vec::new();
    let mut after = Vec::new();
    for job in jobs {
        match job {
            Job::Commit(pending) => {
                for Pending { transition, firings, reply } in pending {
                    let reply = reply.map(|reply| (reply, transition.state.clone()));
                    after.push(After::Fire(firings, reply));
                    transitions.push(transition);
                }
            }
            Job::Flush(states) => {
                flushes.fetch_sub(1, Ordering::SeqCst);
                transitions.extend(
                    states.into_iter().map(|(id, state)| Transition::new(id, state, Vec::new())),
                );
            }
            Job::Barrier(done) => after.push(After::Barrier(done)),
        }
    }
    // While firings are held nothing is claimed: a claim is taken only for a firing that runs.
    let held = parts.firing.held();
    if held {
        for transition in &mut transitions {
            transition.claims.clear();
        }
    }
    // Destructive firings the blast-radius brake holds back are not claimed either.
    let (braked, hold) =
        if held { (HashSet::default(), None) } else { screen(&after, parts).await };
    if !braked.is_empty() {
        for transition in &mut transitions {
            transition.claims.retain(|claim| !braked.contains(&claim.key));
        }
    }
    let recorded = if transitions.is_empty() {
        Some(Recorded::default())
    } else {
        match parts.store.record_many(&transitions).await {
            Ok(recorded) => {
                if !recorded.fenced.is_empty() {
                    parts.metrics.fenced_writes.inc_by(recorded.fenced.len() as u64);
                    warn!(
                        count = recorded.fenced.len(),
                        "monitor states not written: this node no longer holds their partition"
                    );
                }
                Some(recorded)
            }
            Err(err) => {
                parts.metrics.store_errors.get_or_create(&OpLabel { op: "record" }).inc();
                error!(count = transitions.len(), error = %err, "could not write monitor states; will retry");
                let ids = transitions.into_iter().map(|t| t.id).collect();
                let _ = parts.router.cast(RouterMsg::Redirty(ids));
                None
            }
        }
    };
    let mut unfired = Vec::new();
    let mut notes = Vec::new();
    for step in after {
        match step {
            After::Fire(firings, reply) => {
                for PendingFiring { reaction, incident, unfired: undo } in firings {
                    let Some(recorded) = &recorded else {
                        warn!(monitor_id = %incident.monitor_id, reaction_id = %incident.reaction_id,
                            "reaction not run: its firing could not be persisted; the next result decides again");
                        unfired.push(undo);
                        continue;
                    };
                    if recorded.fenced.contains(&incident.monitor_id) {
                        unfired.push(undo);
                        continue;
                    }
                    if recorded.already_claimed.contains(&incident.idempotency_key) {
                        warn!(key = %incident.idempotency_key, "reaction not run: another node claimed this firing");
                        continue;
                    }
                    if held {
                        warn!(monitor_id = %incident.monitor_id, reaction_id = %incident.reaction_id,
                            "reaction held: the store restarted moments ago; the next result decides again");
                        unfired.push(undo);
                        continue;
                    }
                    if braked.contains(&incident.idempotency_key) {
                        if let Some(hold) = hold
                            && parts.firing.brake.first_hold(&incident.idempotency_key)
                        {
                            notes.push(held_note(&reaction, &incident, hold, parts));
                        }
                        unfired.push(undo);
                        continue;
                    }
                    parts.firing.spawn(reaction, incident);
                }
                if let Some((reply, state)) = reply {
                    let _ = reply.send(Some(state));
                }
            }
            After::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
    if !notes.is_empty()
        && let Err(err) = parts.store.append_events(&notes).await
    {
        parts.metrics.store_errors.get_or_create(&OpLabel { op: "append_events" }).inc();
        warn!(count = notes.len(), error = %err, "could not note held reactions in their history");
    }
    if !unfired.is_empty() {
        parts.metrics.firings_unfired.inc_by(unfired.len() as u64);
        let _ = parts.router.cast(RouterMsg::Unfired(unfired));
    }
}

/// The history event that says a destructive firing waits, and why. It names no claim: the
/// firing was not claimed, and runs later under the same key.
fn held_note(
    reaction: &LoadedReaction,
    incident: &Incident,
    hold: Hold,
    parts: &WriterParts,
) -> Event {
    Event::new(
        incident.monitor_id.clone(),
        OffsetDateTime::now_utc(),
        EventKind::Reaction {
            reaction_id: incident.reaction_id.clone(),
            reaction_type: reaction.runner.kind().to_owned(),
            outcome: ReactionOutcome::Skipped,
            episode: incident.episode,
            detail: parts.firing.brake.detail(hold),
            node: incident.node.clone(),
            claim: None,
        },
    )
}

/// Asks the blast-radius brake which destructive firings of this batch may run; returns the
/// firing keys of those that wait (see `brake.rs`), and why they wait.
async fn screen(after: &[After], parts: &WriterParts) -> (HashSet<String>, Option<Hold>) {
    let destructive: Vec<&str> = after
        .iter()
        .filter_map(|step| match step {
            After::Fire(firings, _) => Some(firings),
            After::Barrier(_) => None,
        })
        .flatten()
        .filter(|firing| firing.reaction.runner.effect() == Effect::Destructive)
        .map(|firing| firing.incident.idempotency_key.as_str())
        .collect();
    let wanted = u32::try_from(destructive.len()).unwrap_or(u32::MAX);
    let (granted, hold) = parts.firing.brake.admit(parts.store.as_ref(), wanted).await;
    let Some(hold) = hold else { return (HashSet::default(), None) };
    let waiting =
        &destructive[usize::try_from(granted).unwrap_or(usize::MAX).min(destructive.len())..];
    parts
        .metrics
        .firings_braked
        .get_or_create(&BrakeLabel { reason: hold.as_str() })
        .inc_by(waiting.len() as u64);
    (waiting.iter().map(|key| (*key).to_owned()).collect(), Some(hold))
}
