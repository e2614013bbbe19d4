//! Prometheus metrics of the node. Labels are bounded sets (type names, outcomes), never URLs
//! or error text.
//!
//! Besides the Prometheus histogram, schedule lateness also goes into a [`LatenessRecorder`]:
//! fine-grained, lock-free buckets that give precise percentiles (for benchmarks and
//! diagnostics), which the histogram's coarse buckets cannot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

/// Labels for destructive firings the blast-radius brake held.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrakeLabel {
    /// `suspect` (this node's view) or `budget` (the cluster's budget is spent).
    pub reason: &'static str,
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
    /// Monitors spawned ahead for partitions this node is about to take over from a silent
    /// peer; they run once the leases are granted here.
    pub monitors_standby: Gauge,
    /// How late a scheduled check started, in seconds.
    pub schedule_lateness: Histogram,
    /// The same lateness, with precise percentiles (not exported).
    pub lateness: LatenessRecorder,
    /// Monitor actor crashes.
    pub monitor_crashes: Counter,
    /// Store writes that failed, by operation.
    pub store_errors: Family<OpLabel, Counter>,
    /// Partitions whose lease this node holds (cluster mode).
    pub partitions_held: Gauge,
    /// Transitions the store refused because this node no longer held their partition.
    pub fenced_writes: Counter,
    /// Partitions taken over from other nodes or from expired leases.
    pub partitions_adopted: Counter,
    /// Firings not run because their write failed, was fenced or firings were held.
    pub firings_unfired: Counter,
    /// Destructive firings the blast-radius brake held back, by reason.
    pub firings_braked: Family<BrakeLabel, Counter>,
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
        let monitors_standby = Gauge::default();
        let schedule_lateness = Histogram::new([
            0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let monitor_crashes = Counter::default();
        let store_errors = Family::<OpLabel, Counter>::default();
        let (partitions_held, fenced_writes) = (Gauge::default(), Counter::default());
        let (partitions_adopted, firings_unfired) = (Counter::default(), Counter::default());
        registry.register(
            "partitions_held",
            "Partitions whose lease this node holds",
            partitions_held.clone(),
        );
        registry.register(
            "fenced_writes",
            "Transitions refused because this node no longer held their partition",
            fenced_writes.clone(),
        );
        registry.register(
            "partitions_adopted",
            "Partitions taken over",
            partitions_adopted.clone(),
        );
        registry.register(
            "firings_unfired",
            "Firings not run because their write failed, was fenced, or firings were held",
            firings_unfired.clone(),
        );
        let firings_braked = Family::<BrakeLabel, Counter>::default();
        registry.register(
            "firings_braked",
            "Destructive firings the blast-radius brake held back, by reason",
            firings_braked.clone(),
        );
        registry.register("checks", "Checks run, by type and outcome", checks.clone());
        registry.register(
            "check_duration_seconds",
            "Check duration, by type",
            check_duration.clone(),
        );
        registry.register("reactions", "Reactions run, by type and outcome", reactions.clone());
        registry.register("monitors_owned", "Monitors this node runs", monitors_owned.clone());
        registry.register(
            "monitors_standby",
            "Monitors spawned ahead for partitions this node is about to take over",
            monitors_standby.clone(),
        );
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
            monitors_standby,
            schedule_lateness,
            lateness: LatenessRecorder::new(),
            monitor_crashes,
            store_errors,
            partitions_held,
            fenced_writes,
            partitions_adopted,
            firings_unfired,
            firings_braked,
        }
    }

    /// Records how late a scheduled check started, in the histogram and the recorder.
    pub fn record_lateness(&self, lateness: Duration) {
        self.schedule_lateness.observe(lateness.as_secs_f64());
        self.lateness.record(lateness);
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

/// Sub-buckets per power of two: bounds the relative error of a bucket to 1/256.
const SUB_BITS: u32 = 8;
const SUB: u64 = 1 << SUB_BITS;
/// The largest lateness told apart, in microseconds (60 s); larger ones share the last bucket
/// (the maximum stays exact).
const MAX_TRACKED_US: u64 = 60_000_000;

/// Returns the bucket of a value in microseconds: exact below 512 µs, then 256 buckets per
/// power of two (log-linear, like HdrHistogram).
fn bucket_of(us: u64) -> usize {
    let us = us.min(MAX_TRACKED_US);
    let shift = (u64::BITS - 1 - (us | 1).leading_zeros()).saturating_sub(SUB_BITS);
    // At most 17 * 256 + 511: always fits.
    usize::try_from(u64::from(shift) * SUB + (us >> shift)).unwrap_or(usize::MAX)
}

/// Returns the smallest and largest value (µs) of a bucket.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    let shift = (index / SUB).saturating_sub(1);
    let mantissa = index - shift * SUB;
    (mantissa << shift, ((mantissa + 1) << shift) - 1)
}

/// A lock-free lateness recorder with precise percentiles: 1 µs resolution below 512 µs,
/// then at most 0.4 % relative error up to 60 s, plus the exact maximum. Recording is two
/// relaxed atomic operations; it never allocates.
pub struct LatenessRecorder {
    buckets: Box<[AtomicU64]>,
    max_us: AtomicU64,
}

/// Percentiles of the lateness recorded since the last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatenessSummary {
    /// Values recorded.
    pub count: u64,
    /// Median (the middle of its bucket).
    pub p50: Duration,
    /// 99th percentile (the middle of its bucket).
    pub p99: Duration,
    /// The largest value, exact to the microsecond.
    pub max: Duration,
}

impl LatenessRecorder {
    /// Returns an empty recorder (about 39 KB of buckets).
    pub fn new() -> Self {
        let buckets = (0..=bucket_of(MAX_TRACKED_US)).map(|_| AtomicU64::new(0)).collect();
        Self { buckets, max_us: AtomicU64::new(0) }
    }

    /// Records one lateness.
    pub fn record(&self, lateness: Duration) {
        let us = u64::try_from(lateness.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = self.buckets.get(bucket_of(us)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Returns the count, median, 99th percentile and maximum since the last reset.
    pub fn snapshot(&self) -> LatenessSummary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let count: u64 = counts.iter().sum();
        let max_us = self.max_us.load(Ordering::Relaxed);
        let percentile = |q: f64| {
            // The smallest value with at least `rank` values at or below it.
            let rank = ((count as f64 * q).ceil() as u64).clamp(1, count.max(1));
            let mut seen = 0;
            for (index, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    let (low, high) = bucket_range(index);
                    return Duration::from_micros((low + (high - low) / 2).min(max_us));
                }
            }
            Duration::from_micros(max_us)
        };
        if count == 0 {
            return LatenessSummary::default();
        }
        LatenessSummary {
            count,
            p50: percentile(0.50),
            p99: percentile(0.99),
            max: Duration::from_micros(max_us),
        }
    }

    /// Forgets everything recorded. Values recorded while it runs may survive it in part.
    pub fn reset(&self) {
        for bucket in self.buckets.iter() {
            bucket.store(0, Ordering::Relaxed);
        }
        self.max_us.store(0, Ordering::Relaxed);
    }
}

impl Default for LatenessRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LatenessRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatenessRecorder").field("summary", &self.snapshot()).finish()
    }
}

#[cfg(test)]
mod lateness_tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut previous = 0;
        for us in 0..2_000_000u64 {
            let index = bucket_of(us);
            assert!(index == previous || index == previous + 1, "gap at {us} µs");
            let (low, high) = bucket_range(index);
            assert!(low <= us && us <= high, "{us} µs outside bucket {index} ({low}..={high})");
            previous = index;
        }
        let last = bucket_of(MAX_TRACKED_US);
        assert_eq!(bucket_of(u64::MAX), last);
        assert!(bucket_range(last).1 >= MAX_TRACKED_US);
    }

    #[test]
    fn buckets_keep_relative_error_small() {
        for us in [600, 1_234, 99_999, 1_000_000, 59_999_999] {
            let (low, high) = bucket_range(bucket_of(us));
            assert!((high - low) as f64 <= us as f64 / 256.0, "{us} µs: {low}..={high}");
        }
    }

    #[test]
    fn percentiles_and_max() {
        let recorder = LatenessRecorder::new();
        assert_eq!(recorder.snapshot(), LatenessSummary::default());
        for ms in 1..=100u64 {
            recorder.record(Duration::from_millis(ms));
        }
        let summary = recorder.snapshot();
        assert_eq!(summary.count, 100);
        let near = |d: Duration, ms: f64| (d.as_secs_f64() * 1e3 - ms).abs() <= ms / 256.0 + 0.001;
        assert!(near(summary.p50, 50.0), "p50 {:?}", summary.p50);
        assert!(near(summary.p99, 99.0), "p99 {:?}", summary.p99);
        assert_eq!(summary.max, Duration::from_millis(100));
        recorder.record(Duration::from_secs(3_600));
        assert_eq!(recorder.snapshot().max, Duration::from_secs(3_600));
        recorder.reset();
        assert_eq!(recorder.snapshot(), LatenessSummary::default());
    }
}
