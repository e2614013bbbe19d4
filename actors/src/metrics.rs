//! Prometheus metrics of the node. Labels are bounded sets (type names, outcomes), never URLs
//! or error text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels for per-type, per-outcome counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeOutcome {
    /// Check or reaction type name.
    pub r#type: &'static str,
    /// Outcome label.
    pub outcome: &'static str,
}

/// Labels for per-type histograms.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// Check type name.
    pub r#type: &'static str,
}

/// Labels for store failures.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    /// Store operation.
    pub op: &'static str,
}

/// Every metric the node exports, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// Checks run, by type and outcome.
    pub checks: Family<TypeOutcome, Counter>,
    /// Check duration in seconds, by type.
    pub check_duration: Family<TypeLabel, Histogram, fn() -> Histogram>,
    /// Reactions run, by type and outcome.
    pub reactions: Family<TypeOutcome, Counter>,
    /// Monitors this node runs.
    pub monitors_owned: Gauge,
    /// How late a scheduled check started, in seconds.
    pub schedule_lateness: Histogram,
    /// Monitor actor crashes.
    pub monitor_crashes: Counter,
    /// Store writes that failed, by operation.
    pub store_errors: Family<OpLabel, Counter>,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cloudroutes");
        let checks = Family::<TypeOutcome, Counter>::default();
        let check_duration =
            Family::<TypeLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        let reactions = Family::<TypeOutcome, Counter>::default();
        let monitors_owned = Gauge::default();
        let schedule_lateness = Histogram::new([
            0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let monitor_crashes = Counter::default();
        let store_errors = Family::<OpLabel, Counter>::default();
        registry.register("checks", "Checks run, by type and outcome", checks.clone());
        registry.register(
            "check_duration_seconds",
            "Check duration, by type",
            check_duration.clone(),
        );
        registry.register("reactions", "Reactions run, by type and outcome", reactions.clone());
        registry.register("monitors_owned", "Monitors this node runs", monitors_owned.clone());
        registry.register(
            "schedule_lateness_seconds",
            "How late scheduled checks started",
            schedule_lateness.clone(),
        );
        registry.register("monitor_crashes", "Monitor actor crashes", monitor_crashes.clone());
        registry.register("store_errors", "Store writes that failed", store_errors.clone());
        Self {
            registry,
            checks,
            check_duration,
            reactions,
            monitors_owned,
            schedule_lateness,
            monitor_crashes,
            store_errors,
        }
    }

    /// Returns the metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
