//! The reaction gating rule, as pure functions (DESIGN.md, "Domain semantics").
//!
//! [`observe`] folds one result into a monitor's state (status, streak, episode, manual hold);
//! [`decide`] says whether one reaction fires on that result; [`remember`] records a firing in
//! the reaction's memory. Nothing here reads a clock, a store or a socket: `now` is passed in.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{
    CallOn, CheckOutcome, Method, MonitorId, MonitorState, ReactionId, ReactionMemory, Status,
    Timestamp,
};

/// One result on its way into a monitor's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// What the check (or the person, or the sender) said.
    pub outcome: CheckOutcome,
    /// How it arrived.
    pub method: Method,
    /// When it arrived.
    pub at: Timestamp,
    /// The node that recorded it.
    pub node: Arc<str>,
}

/// A status change caused by one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    /// Status before the result.
    pub prev: Status,
    /// Status after the result.
    pub new: Status,
}

/// The state after one result, and what the result did to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The monitor's new state.
    pub state: MonitorState,
    /// Set when the status changed.
    pub change: Option<StatusChange>,
    /// False when the result was recorded but not counted (unknown, or held by a manual fail).
    pub counted: bool,
    /// How the result arrived.
    pub method: Method,
}

/// Folds one result into `state`.
///
/// - `Unknown` outcomes are recorded (time, reason) but change neither status nor counters.
/// - While a manual failure holds, automatic and webhook results are recorded, not counted.
/// - A manual fail sets the hold; a manual heal clears it.
/// - A status change resets the streak to 1, otherwise it grows by one; each change to failed
///   starts a new episode.
pub fn observe(state: &MonitorState, observation: &Observation) -> Applied {
    let mut next = state.clone();
    next.last_check_at = Some(observation.at);
    next.last_reason = Some(observation.outcome.reason().to_owned());
    next.owner = Some(observation.node.clone());
    let manual = observation.method == Method::Manual;
    let status = match &observation.outcome {
        CheckOutcome::Healthy { .. } => Status::Healthy,
        CheckOutcome::Failed { .. } => Status::Failed,
        CheckOutcome::Unknown { .. } => {
            return Applied {
                state: next,
                change: None,
                counted: false,
                method: observation.method,
            };
        }
    };
    if state.manual_hold && !manual {
        return Applied { state: next, change: None, counted: false, method: observation.method };
    }
    if manual {
        next.manual_hold = status == Status::Failed;
    }
    let change = if status == state.status {
        next.streak = state.streak.saturating_add(1);
        None
    } else {
        next.streak = 1;
        next.last_change_at = Some(observation.at);
        if status == Status::Failed {
            next.episode = state.episode + 1;
        }
        Some(StatusChange { prev: state.status, new: status })
    };
    next.status = status;
    Applied { state: next, change, counted: true, method: observation.method }
}

/// A reaction's gating parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateRule {
    /// Streak needed before firing; 0 acts as 1.
    pub trigger: u32,
    /// Minimum seconds between failure firings in one episode; 0 means once per episode.
    pub frequency_secs: u64,
    /// Which results the reaction answers.
    pub call_on: CallOn,
}

impl GateRule {
    fn effective_trigger(&self) -> u64 {
        u64::from(self.trigger.max(1))
    }
}

/// Which side of an episode a firing answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The monitor is failing.
    Failed,
    /// The monitor recovered from a failed episode.
    Recovery,
}

/// One firing of one reaction: the unit that claims and idempotency keys are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    /// Failure or recovery.
    pub phase: Phase,
    /// The episode answered.
    pub episode: u64,
    /// The firing's number within the episode and phase, from 1 (re-firings count up).
    pub window: u32,
}

impl Firing {
    /// Returns the key that names this firing everywhere (idempotency keys, claims):
    /// `monitor:reaction:episode:phase:window`.
    pub fn key(&self, monitor: &MonitorId, reaction: &ReactionId) -> String {
        let phase = match self.phase {
            Phase::Failed => "failed",
            Phase::Recovery => "recovery",
        };
        format!("{monitor}:{reaction}:{}:{phase}:{}", self.episode, self.window)
    }
}

/// Whether one reaction fires on one result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Fire now.
    Fire(Firing),
    /// Do not fire, and why (for traces and tests, not the history).
    Hold(String),
}

/// Decides whether a reaction with `rule` and `memory` fires on the result that produced
/// `applied`, at `now`.
///
/// - `call_on: failed` fires on a counted failed result when `streak >= trigger` and either it
///   has not fired in this episode, or `frequency_secs > 0` and that many seconds have passed
///   since it last fired. A manual fail satisfies every trigger and every latch.
/// - `call_on: healthy` fires once per recovery: on the first counted healthy result after a
///   failed episode whose streak is at least `trigger` (a manual heal satisfies the trigger). A
///   monitor that never failed fires no healthy reaction.
/// - `call_on: both` follows both rules.
pub fn decide(
    rule: &GateRule,
    memory: &ReactionMemory,
    applied: &Applied,
    now: Timestamp,
) -> Decision {
    if !applied.counted {
        return Decision::Hold("result not counted".into());
    }
    let state = &applied.state;
    let manual = applied.method == Method::Manual;
    let trigger = rule.effective_trigger();
    match state.status {
        Status::Unknown => Decision::Hold("status unknown".into()),
        Status::Failed if !rule.call_on.on_failed() => {
            Decision::Hold("reaction is for recoveries".into())
        }
        Status::Healthy if !rule.call_on.on_healthy() => {
            Decision::Hold("reaction is for failures".into())
        }
        Status::Failed => {
            let same_episode = memory.failed_episode == state.episode;
            let window = if same_episode { memory.failed_firings + 1 } else { 1 };
            let fire =
                Decision::Fire(Firing { phase: Phase::Failed, episode: state.episode, window });
            if manual {
                return fire;
            }
            if state.streak < trigger {
                return Decision::Hold(format!("streak {} below trigger {trigger}", state.streak));
            }
            if !same_episode {
                return fire;
            }
            if rule.frequency_secs == 0 {
                return Decision::Hold("already fired in this episode".into());
            }
            let Some(last) = memory.failed_at else { return fire };
            let since = (now - last).whole_seconds();
            if since >= 0 && since.unsigned_abs() >= rule.frequency_secs {
                fire
            } else {
                Decision::Hold(format!("fired {since}s ago, frequency {}s", rule.frequency_secs))
            }
        }
        Status::Healthy => {
            if state.episode == 0 {
                return Decision::Hold("monitor never failed".into());
            }
            if memory.healthy_episode >= state.episode {
                return Decision::Hold("recovery already answered".into());
            }
            let fire = Decision::Fire(Firing {
                phase: Phase::Recovery,
                episode: state.episode,
                window: 1,
            });
            // `>=`, not `==`: a recovery whose firing at `streak == trigger` was not carried
            // out (claim refused while Redis was down, crash before the claim, trigger lowered
            // mid-recovery) still fires on a later healthy result, under the same firing key;
            // `healthy_episode` keeps it to once per recovery.
            if manual || state.streak >= trigger {
                fire
            } else {
                Decision::Hold(format!("streak {} below trigger {trigger}", state.streak))
            }
        }
    }
}

/// Prepares the memory of a reaction newly attached to a monitor in `state`: when the monitor is
/// healthy after a failed episode, that recovery counts as answered, so attaching a
/// `call_on: healthy` reaction never fires for a recovery that happened before it existed.
/// A reaction that already has memory on this monitor is left alone. Failure-side memory is
/// untouched: a reaction attached to a failing monitor fires on its next failed result.
pub fn attach(state: &mut MonitorState, reaction: &ReactionId) {
    if state.reactions.contains_key(reaction) {
        return;
    }
    let memory = state.reactions.entry(reaction.clone()).or_default();
    if state.status == Status::Healthy {
        memory.healthy_episode = state.episode;
    }
}

/// Records `firing` at `now` in a reaction's memory.
pub fn remember(memory: &mut ReactionMemory, firing: &Firing, now: Timestamp) {
    memory.last_fired_at = Some(now);
    match firing.phase {
        Phase::Failed => {
            memory.failed_episode = firing.episode;
            memory.failed_at = Some(now);
            memory.failed_firings = firing.window;
        }
        Phase::Recovery => memory.healthy_episode = firing.episode,
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
