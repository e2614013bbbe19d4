//! The domain model: monitors, reactions, check outcomes, monitor state and history events.
//!
//! Definitions (`Monitor`, `Reaction`) carry their check and action as raw JSON objects with a
//! `type` field: the engine knows no particular check or reaction; the `checks` and `reactions`
//! crates validate and run them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A point in time, serialized as RFC 3339.
pub type Timestamp = OffsetDateTime;

/// The stable identifier of a monitor (a ULID string). Shared, not copied: a clone is a
/// reference count, so the many places that key by it (board, supervisor, router, actor) hold
/// one allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MonitorId(pub Arc<str>);

/// The stable identifier of a reaction (a ULID string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReactionId(pub Arc<str>);

macro_rules! id_impls {
    ($ty:ident) => {
        impl $ty {
            /// Returns a new, unique, time-ordered identifier.
            pub fn generate() -> Self {
                Self(ulid::Ulid::new().to_string().to_ascii_lowercase().into())
            }
            /// Returns the identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $ty {
            fn from(value: &str) -> Self {
                Self(value.into())
            }
        }
        impl From<String> for $ty {
            fn from(value: String) -> Self {
                Self(value.into())
            }
        }
    };
}
id_impls!(MonitorId);
id_impls!(ReactionId);

/// A plugin configuration: a JSON object whose `type` field names the check or reaction type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PluginSpec(pub serde_json::Map<String, serde_json::Value>);

impl PluginSpec {
    /// Returns the value of the `type` field, or `""` when it is missing or not a string.
    pub fn kind(&self) -> &str {
        self.0.get("type").and_then(serde_json::Value::as_str).unwrap_or("")
    }
}

/// A monitor definition as stored (its state is kept separately).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    /// Identifier, generated on create.
    pub id: MonitorId,
    /// Human name, unique in spirit but not enforced.
    pub name: String,
    /// The check configuration (`type` plus the type's fields).
    pub check: PluginSpec,
    /// Seconds between checks; `None` for webhook-driven monitors.
    pub interval_secs: Option<u32>,
    /// Reactions to consider on each result, in order.
    pub reactions: Vec<ReactionId>,
    /// A disabled monitor keeps its definition and state but runs no checks.
    pub enabled: bool,
    /// Free-form labels for filtering.
    pub tags: Vec<String>,
    /// Secret key that authenticates webhook results for this monitor.
    pub webhook_key: String,
}

/// Which results a reaction answers (DESIGN.md, "Reaction gating").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallOn {
    /// Failed results, once per episode or every `frequency_secs`.
    Failed,
    /// Healthy results that end a failed episode, once per recovery.
    Healthy,
    /// Both of the above.
    Both,
}

impl CallOn {
    /// Returns whether failed results are answered.
    pub fn on_failed(self) -> bool {
        matches!(self, Self::Failed | Self::Both)
    }
    /// Returns whether recoveries are answered.
    pub fn on_healthy(self) -> bool {
        matches!(self, Self::Healthy | Self::Both)
    }
}

/// A reaction definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    /// Identifier, generated on create.
    pub id: ReactionId,
    /// Human name.
    pub name: String,
    /// The action configuration (`type` plus the type's fields, secrets included).
    pub action: PluginSpec,
    /// Streak needed before firing; 0 acts as 1.
    pub trigger: u32,
    /// Minimum seconds between firings in one failed episode; 0 means once per episode.
    pub frequency_secs: u64,
    /// Which results this reaction answers.
    pub call_on: CallOn,
}

/// The result of running a check once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum CheckOutcome {
    /// The target answered as expected; `reason` says how (e.g. `HTTP 200`).
    Healthy {
        /// What was observed.
        reason: String,
    },
    /// The target did not answer as expected.
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// The check could not run; recorded, but changes neither status nor counters.
    Unknown {
        /// Why the check could not run.
        reason: String,
    },
}

impl CheckOutcome {
    /// Returns the outcome's reason text.
    pub fn reason(&self) -> &str {
        match self {
            Self::Healthy { reason } | Self::Failed { reason } | Self::Unknown { reason } => reason,
        }
    }
    /// Returns the outcome's label: `healthy`, `failed` or `unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Healthy { .. } => "healthy",
            Self::Failed { .. } => "failed",
            Self::Unknown { .. } => "unknown",
        }
    }
}

/// A monitor's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No result yet.
    #[default]
    Unknown,
    /// The last counted result was healthy.
    Healthy,
    /// The last counted result was failed.
    Failed,
}

impl Status {
    /// Returns the status label as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Failed => "failed",
        }
    }
}

/// How a result reached the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A scheduled or run-now check.
    Automatic,
    /// A person marked the monitor failed or healthy.
    Manual,
    /// An external sender posted the result.
    Webhook,
}

/// What the gate remembers about one reaction on one monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionMemory {
    /// Episode in which the reaction last fired on a failure (0: never).
    pub failed_episode: u64,
    /// When it last fired on a failure.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failed_at: Option<Timestamp>,
    /// How many times it fired in `failed_episode`.
    pub failed_firings: u32,
    /// Episode whose recovery it last answered (0: never).
    pub healthy_episode: u64,
    /// When it last fired on this monitor, failure or recovery.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_fired_at: Option<Timestamp>,
}

/// A monitor's live state: status, streak, episode, and the gate's memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorState {
    /// Current status.
    pub status: Status,
    /// Results in a row with the current status (the original's `failcount`).
    pub streak: u64,
    /// Failed episodes so far; grows by one on each change to failed.
    pub episode: u64,
    /// True while a manual failure holds the status.
    pub manual_hold: bool,
    /// When the last result (of any kind) arrived.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_check_at: Option<Timestamp>,
    /// When the status last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_change_at: Option<Timestamp>,
    /// The last result's reason.
    pub last_reason: Option<String>,
    /// The node that produced the last result.
    pub owner: Option<Arc<str>>,
    /// How long the last check run took, in milliseconds (none for results that came from
    /// outside: webhooks and manual changes keep the last run's value).
    #[serde(default)]
    pub last_duration_ms: Option<u64>,
    /// Per-reaction firing memory, keyed by reaction id.
    pub reactions: BTreeMap<ReactionId, ReactionMemory>,
}

/// What a reaction run came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReactionOutcome {
    /// The action was carried out.
    Executed,
    /// The action was attempted and failed.
    Failed,
    /// The reaction decided not to act.
    Skipped,
}

impl ReactionOutcome {
    /// Returns the outcome label as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Executed => "executed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// One entry in a monitor's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Time-ordered identifier (a ULID string); newer events sort after older ones.
    pub id: String,
    /// The monitor this event belongs to.
    pub monitor_id: MonitorId,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of history event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The monitor's status changed.
    StatusChange {
        /// New status.
        status: Status,
        /// Status before the change.
        prev_status: Status,
        /// Streak after the change (1).
        streak: u64,
        /// Episode after the change.
        episode: u64,
        /// How the result arrived.
        method: Method,
        /// Node that recorded it.
        node: String,
        /// The result's reason.
        reason: String,
    },
    /// A reaction ran (or decided not to).
    Reaction {
        /// Which reaction.
        reaction_id: ReactionId,
        /// Its type, e.g. `http-webhook`.
        reaction_type: String,
        /// What came of it.
        outcome: ReactionOutcome,
        /// The episode it answered.
        episode: u64,
        /// Detail: response code, error or skip reason.
        detail: String,
        /// Node that ran it.
        node: String,
        /// The claim this outcome settles (cluster mode: the firing key of
        /// [`crate::gate::Firing::key`]); appending the event closes the claim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim: Option<String>,
    },
    /// A result arrived that the engine recorded without counting it (unknown outcome, or an
    /// automatic result while a manual failure holds).
    Ignored {
        /// How the result arrived.
        method: Method,
        /// Why it was not counted and what it said.
        reason: String,
        /// Node that recorded it.
        node: String,
    },
    /// The monitor's actor crashed and was restarted.
    Crash {
        /// The panic or error text.
        error: String,
        /// Restart attempt number since the last stable run.
        attempt: u32,
        /// Node it crashed on.
        node: String,
    },
}

impl Event {
    /// Returns a new event with a fresh time-ordered id.
    pub fn new(monitor_id: MonitorId, at: Timestamp, kind: EventKind) -> Self {
        Self { id: new_ordered_id(), monitor_id, at, kind }
    }
}

/// Returns a fresh id (a lowercase ULID) that sorts after every id this process made before:
/// events, audit entries and API tokens list in the order they were made, even within one
/// millisecond (plain ULIDs of one millisecond sort at random).
pub fn new_ordered_id() -> String {
    use std::sync::Mutex;
    static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);
    let mut generator = GENERATOR.lock().unwrap_or_else(|poison| poison.into_inner());
    let generator = generator.get_or_insert_with(ulid::Generator::new);
    // `generate` only fails when 2^80 ids are made in one millisecond; fall back to a fresh one.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new()).to_string().to_ascii_lowercase()
}

#[cfg(test)]
mod ordered_id_tests {
    use super::new_ordered_id;

    #[test]
    fn ids_made_one_after_another_sort_in_that_order_even_within_a_millisecond() {
        let ids: Vec<String> = (0..10_000).map(|_| new_ordered_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids out of order");
        assert!(ids.iter().all(|id| id.len() == 26 && id == &id.to_ascii_lowercase()));
    }
}
