//! What `alertmanager-webhook` and `grafana-webhook` share: the Alertmanager-format payload
//! (`alerts[]` with per-alert `status`, `labels`, `annotations`, `fingerprint`), the rules that
//! key and filter its alerts, and [`AlertBook`], the owner node's memory of each alert.
//!
//! Each alert drives its own status: the group's `status` (firing while any alert fires) is
//! never read. The monitor is failed while any of its alerts fires and healthy when none does.
//! Resends and duplicates from HA peers change nothing and record nothing; they only refresh
//! the alert's staleness clock. A firing alert with no update for `stale_after_secs` is marked
//! unknown and recorded as such, since Alertmanager forgets alerts on restart and a resolve may
//! never come; an unknown alert keeps the monitor's status as it was until the sender speaks.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::time::Instant;

use crate::intake::{AlertUpdate, clip, json_body};
use crate::{Check, ConfigError, Delivery, Intake, IntakeRequest};

/// Default `stale_after_secs`: three times Alertmanager's default `repeat_interval` (4 h).
const DEFAULT_STALE_AFTER_SECS: u64 = 12 * 3600;
/// Largest `stale_after_secs`: 30 days.
const MAX_STALE_AFTER_SECS: u64 = 30 * 86_400;
/// Most alerts one monitor remembers; updates for further new keys are dropped.
pub const MAX_ALERTS: usize = 10_000;
/// Resolved alerts are forgotten this long after their last update.
const FORGET_RESOLVED_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Most labels in `key_labels` or `match_labels`.
const MAX_LABELS: usize = 16;

fn default_stale_after_secs() -> u64 {
    DEFAULT_STALE_AFTER_SECS
}

/// How a monitor keys and filters the alerts it receives.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct AlertRules {
    /// Labels whose values identify an alert (for example `["alertname", "instance"]`); empty
    /// (the default) keys alerts by their `fingerprint`.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub key_labels: Vec<String>,
    /// Only alerts carrying all of these labels with these values count; others are ignored.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Seconds without an update after which a firing alert is marked unknown; 0 never.
    /// Defaults to 43200 (12 hours).
    #[serde(default = "default_stale_after_secs")]
    #[schemars(range(max = 2_592_000))]
    pub stale_after_secs: u64,
}

impl AlertRules {
    /// Checks the label names and the staleness range.
    ///
    /// # Errors
    /// Names the first invalid field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.key_labels.len() > MAX_LABELS {
            return Err(ConfigError::invalid(
                "key_labels",
                format!("must list at most {MAX_LABELS} labels"),
            ));
        }
        for (i, label) in self.key_labels.iter().enumerate() {
            check_label_name(label)
                .map_err(|m| ConfigError::invalid(format!("key_labels[{i}]"), m))?;
        }
        if self.match_labels.len() > MAX_LABELS {
            return Err(ConfigError::invalid(
                "match_labels",
                format!("must have at most {MAX_LABELS} labels"),
            ));
        }
        for label in self.match_labels.keys() {
            check_label_name(label)
                .map_err(|m| ConfigError::invalid(format!("match_labels.{label}"), m))?;
        }
        if self.stale_after_secs > MAX_STALE_AFTER_SECS {
            return Err(ConfigError::invalid(
                "stale_after_secs",
                format!("must be at most {MAX_STALE_AFTER_SECS} (30 days)"),
            ));
        }
        Ok(())
    }

    /// Parses an Alertmanager-format payload into the updates this monitor takes.
    ///
    /// # Errors
    /// The body is not that format; the field names the first bad part.
    pub fn parse(&self, request: &IntakeRequest<'_>) -> Result<Intake, ConfigError> {
        let payload: Payload = json_body(request)?;
        self.updates(payload.alerts)
    }

    /// Keys and filters `alerts` (already parsed) into the updates this monitor takes.
    ///
    /// # Errors
    /// An alert's `status` is neither `firing` nor `resolved`.
    pub(crate) fn updates(&self, alerts: Vec<Alert>) -> Result<Intake, ConfigError> {
        let total = alerts.len();
        let mut updates = Vec::new();
        for (i, alert) in alerts.into_iter().enumerate() {
            let firing = match alert.status.as_str() {
                "firing" => true,
                "resolved" => false,
                other => {
                    return Err(ConfigError::invalid(
                        format!("alerts[{i}].status"),
                        format!(
                            "`{}` is not an alert status; expected firing or resolved",
                            clip(other)
                        ),
                    ));
                }
            };
            let matches =
                self.match_labels.iter().all(|(name, value)| alert.labels.get(name) == Some(value));
            if matches {
                updates.push(AlertUpdate {
                    key: self.key_of(&alert),
                    firing,
                    summary: summary(&alert),
                });
            }
        }
        if updates.is_empty() {
            return Ok(Intake::Ignore(format!("none of the {total} alerts matches this monitor")));
        }
        Ok(Intake::Deliver(Delivery::Alerts(updates)))
    }

    fn key_of(&self, alert: &Alert) -> String {
        if self.key_labels.is_empty() {
            if let Some(fingerprint) = alert.fingerprint.as_deref().filter(|f| !f.is_empty()) {
                return clip(fingerprint);
            }
            // No fingerprint (an older sender): the whole label set identifies the alert.
            let pairs: Vec<String> = alert.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return clip(&pairs.join(","));
        }
        let pairs: Vec<String> = self
            .key_labels
            .iter()
            .map(|name| format!("{name}={}", alert.labels.get(name).map_or("", String::as_str)))
            .collect();
        clip(&pairs.join(","))
    }
}

fn check_label_name(label: &str) -> Result<(), String> {
    let mut chars = label.chars();
    let valid_start = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !valid_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{}` is not a label name ([a-za-z_][a-za-z0-9_]*)", clip(label)));
    }
    Ok(())
}

/// An Alertmanager-format payload: only `alerts` is read.
#[derive(Debug, Deserialize)]
struct Payload {
    alerts: Vec<Alert>,
}

/// One alert of the payload.
#[derive(Debug, Deserialize)]
pub(crate) struct Alert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

fn summary(alert: &Alert) -> String {
    let name = alert.labels.get("alertname").map_or("alert", String::as_str);
    let detail = alert.annotations.get("summary").or_else(|| alert.annotations.get("description"));
    match detail {
        Some(detail) => clip(&format!("{name}: {detail}")),
        None => clip(name),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AlertStatus {
    Firing,
    Resolved,
    /// Firing, then silent for longer than `stale_after_secs`.
    Stale,
}

#[derive(Debug)]
struct Entry {
    status: AlertStatus,
    summary: String,
    updated: Instant,
}

/// The owner node's memory of one monitor's alerts; it runs as the monitor's check.
#[derive(Debug)]
pub struct AlertBook {
    kind: &'static str,
    stale_after: Option<Duration>,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl AlertBook {
    /// Starts an empty book for a monitor of type `kind`.
    pub fn new(kind: &'static str, rules: &AlertRules) -> Self {
        let stale_after =
            (rules.stale_after_secs > 0).then(|| Duration::from_secs(rules.stale_after_secs));
        Self { kind, stale_after, entries: Mutex::new(BTreeMap::new()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock leaves a consistent map (every write is one insert).
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Folds updates in; returns the monitor's new verdict when any alert changed status.
    fn apply(&self, updates: &[AlertUpdate], now: Instant) -> Option<CheckOutcome> {
        let mut entries = self.entries();
        let mut changed = false;
        for update in updates {
            let status = if update.firing { AlertStatus::Firing } else { AlertStatus::Resolved };
            let full = entries.len() >= MAX_ALERTS;
            match entries.get_mut(&update.key) {
                Some(entry) => {
                    changed |= entry.status != status;
                    entry.status = status;
                    entry.summary.clone_from(&update.summary);
                    entry.updated = now;
                }
                None if !full => {
                    changed = true;
                    let entry = Entry { status, summary: update.summary.clone(), updated: now };
                    entries.insert(update.key.clone(), entry);
                }
                None => tracing::warn!(kind = self.kind, "alert book full; update dropped"),
            }
        }
        changed.then(|| verdict(&entries))
    }

    /// Marks firing alerts silent for too long as stale and forgets old resolved ones; returns
    /// an unknown result naming the newly stale alerts, if any.
    fn sweep(&self, now: Instant) -> Option<CheckOutcome> {
        let mut entries = self.entries();
        entries.retain(|_, e| {
            e.status != AlertStatus::Resolved
                || now.saturating_duration_since(e.updated) < FORGET_RESOLVED_AFTER
        });
        let stale_after = self.stale_after?;
        let mut stale = Vec::new();
        for (key, entry) in entries.iter_mut() {
            if entry.status == AlertStatus::Firing
                && now.saturating_duration_since(entry.updated) >= stale_after
            {
                entry.status = AlertStatus::Stale;
                stale.push(format!("{} ({key})", entry.summary));
            }
        }
        if stale.is_empty() {
            return None;
        }
        let firing = entries.values().filter(|e| e.status == AlertStatus::Firing).count();
        Some(CheckOutcome::Unknown {
            reason: clip(&format!(
                "no update for {} s, marked unknown: {}; {firing} still firing",
                stale_after.as_secs(),
                stale.join("; ")
            )),
        })
    }
}

/// Failed while any alert fires; unknown when none fires but some went stale; else healthy.
fn verdict(entries: &BTreeMap<String, Entry>) -> CheckOutcome {
    let with = |status| -> Vec<&str> {
        entries.values().filter(|e| e.status == status).map(|e| e.summary.as_str()).collect()
    };
    let firing = with(AlertStatus::Firing);
    if !firing.is_empty() {
        let noun = if firing.len() == 1 { "alert" } else { "alerts" };
        return CheckOutcome::Failed {
            reason: clip(&format!("{} {noun} firing: {}", firing.len(), firing.join("; "))),
        };
    }
    let stale = with(AlertStatus::Stale);
    if !stale.is_empty() {
        return CheckOutcome::Unknown {
            reason: clip(&format!(
                "no alert firing; {} unknown: {}",
                stale.len(),
                stale.join("; ")
            )),
        };
    }
    CheckOutcome::Healthy { reason: format!("no alert firing ({} resolved)", entries.len()) }
}

#[async_trait::async_trait]
impl Check for AlertBook {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    async fn run(&self) -> CheckOutcome {
        verdict(&self.entries())
    }

    /// Sweeps often enough to mark an alert stale within a quarter of `stale_after_secs`.
    fn interval(&self) -> Option<Duration> {
        let every = self.stale_after.map_or(Duration::from_secs(60), |s| s / 4);
        Some(every.clamp(Duration::from_secs(1), Duration::from_secs(60)))
    }

    async fn tick(&self) -> Option<CheckOutcome> {
        self.sweep(Instant::now())
    }

    fn deliver(&self, delivery: &Delivery) -> Option<CheckOutcome> {
        match delivery {
            Delivery::Alerts(updates) => self.apply(updates, Instant::now()),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
mod tests;
