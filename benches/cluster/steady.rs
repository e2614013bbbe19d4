//! Steady state of the cluster: checks per second (the target's count, cross-checked with
//! each node's `/metrics`), CPU per check and RSS per node, redis-server's CPU, and Redis
//! operations per check (`INFO stats` `total_commands_processed`, broken down by
//! `INFO commandstats`), over one window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::Bench;
use crate::support::{machine_cpu, process_cpu, row, rss_of};

/// What one node's `/metrics` says: checks run, and the cumulative schedule-lateness
/// histogram as (upper bound in seconds, count).
#[derive(Debug, Default, Clone)]
struct NodeMetrics {
    checks: u64,
    monitors_owned: u64,
    lateness: Vec<(f64, u64)>,
}

/// Parses the Prometheus text of a node.
fn parse_metrics(text: &str) -> NodeMetrics {
    let mut metrics = NodeMetrics::default();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else { continue };
        let value: f64 = value.parse().unwrap_or(0.0);
        if name.starts_with("cloudroutes_checks_total{") {
            metrics.checks += value as u64;
        } else if name == "cloudroutes_monitors_owned" {
            metrics.monitors_owned = value as u64;
        } else if let Some(labels) =
            name.strip_prefix("cloudroutes_schedule_lateness_seconds_bucket{")
        {
            let bound = labels.split('"').nth(1).unwrap_or("+Inf");
            let bound = bound.parse().unwrap_or(f64::INFINITY);
            metrics.lateness.push((bound, value as u64));
        }
    }
    metrics
}

/// Returns node `i`'s metrics.
async fn node_metrics(bench: &Bench, i: usize) -> Result<NodeMetrics> {
    let url = bench.nodes[i].url("/metrics");
    let text = bench.client.get(url).send().await?.error_for_status()?.text().await?;
    Ok(parse_metrics(&text))
}

/// The monitors node `i` runs (its `monitors_owned` gauge).
pub async fn monitors_owned(bench: &Bench, i: usize) -> Result<u64> {
    Ok(node_metrics(bench, i).await?.monitors_owned)
}

/// Everything measured at one instant.
struct Snapshot {
    at: Instant,
    target_hits: u64,
    target_cpu: Duration,
    nodes: Vec<(NodeMetrics, Duration)>,
    redis_cpu: Duration,
    redis_commands: u64,
    redis_cmdstats: BTreeMap<String, u64>,
    machine: (Duration, Duration),
}

impl Snapshot {
    async fn take(bench: &Bench) -> Result<Self> {
        let mut nodes = Vec::new();
        for (i, node) in bench.nodes.iter().enumerate() {
            nodes.push((node_metrics(bench, i).await?, process_cpu(node.pid())?));
        }
        let stats = bench.redis.info("stats").await?;
        let redis_commands = stats
            .iter()
            .find(|(k, _)| k == "total_commands_processed")
            .and_then(|(_, v)| v.parse().ok())
            .context("no total_commands_processed")?;
        let mut redis_cmdstats = BTreeMap::new();
        for (key, value) in bench.redis.info("commandstats").await? {
            let (Some(name), Some(calls)) = (
                key.strip_prefix("cmdstat_"),
                value.split(',').find_map(|f| f.strip_prefix("calls=")),
            ) else {
                continue;
            };
            redis_cmdstats.insert(name.to_owned(), calls.parse().unwrap_or(0));
        }
        Ok(Self {
            at: Instant::now(),
            target_hits: bench.target.status().await?.hits,
            target_cpu: process_cpu(bench.target.pid())?,
            nodes,
            redis_cpu: process_cpu(bench.redis.proc.pid())?,
            redis_commands,
            redis_cmdstats,
            machine: machine_cpu()?,
        })
    }
}

/// The smallest histogram bound with at least a share `q` of the counts of `delta` (cumulative
/// buckets), as text.
fn bucket_quantile(delta: &[(f64, u64)], q: f64) -> String {
    let total = delta.last().map_or(0, |(_, n)| *n);
    if total == 0 {
        return "-".into();
    }
    let rank = (total as f64 * q).ceil() as u64;
    match delta.iter().find(|(_, n)| *n >= rank) {
        Some((bound, _)) if bound.is_finite() => format!("≤ {} ms", bound * 1e3),
        _ => "> 10 s".into(),
    }
}

/// Measures the cluster over `window` and prints the steady-state table.
pub async fn measure(bench: &Bench, window: Duration) -> Result<()> {
    let lapses = bench.lapses();
    let before = Snapshot::take(bench).await?;
    tokio::time::sleep(window).await;
    let after = Snapshot::take(bench).await?;
    let lapses = bench.lapses() - lapses;
    let secs = after.at.duration_since(before.at).as_secs_f64();
    let hits = after.target_hits - before.target_hits;
    let per_s = |n: u64| n as f64 / secs;
    let pct = |d: Duration| d.as_secs_f64() * 100.0 / secs;
    let us_per = |d: Duration, n: u64| d.as_secs_f64() * 1e6 / n.max(1) as f64;

    let expected = bench.monitors as f64 / bench.interval.as_secs_f64();
    let nodes = after.nodes.len();
    println!("steady state: {nodes} node(s), window {secs:.0} s");
    let node_checks: Vec<u64> =
        after.nodes.iter().zip(&before.nodes).map(|(a, b)| a.0.checks - b.0.checks).collect();
    let metrics_total: u64 = node_checks.iter().sum();
    row(
        "checks/s",
        format!(
            "{:.0} (expected {expected:.0}); target counted {hits}, nodes' /metrics {metrics_total}",
            per_s(hits)
        ),
    );
    let mut nodes_cpu = Duration::ZERO;
    let mut lateness: Vec<(f64, u64)> = Vec::new();
    for (i, node) in bench.nodes.iter().enumerate() {
        let ((m_after, cpu_after), (m_before, cpu_before)) = (&after.nodes[i], &before.nodes[i]);
        let cpu = cpu_after.saturating_sub(*cpu_before);
        nodes_cpu += cpu;
        let checks = node_checks[i];
        row(
            &node.id,
            format!(
                "{:.0} checks/s, CPU {:.0} µs/check ({:.0}% of a core), RSS {} MiB, {} monitors",
                per_s(checks),
                us_per(cpu, checks),
                pct(cpu),
                rss_of(node.pid())? >> 20,
                bench.monitors_on(i).await.unwrap_or(0),
            ),
        );
        for (j, (bound, count)) in m_after.lateness.iter().enumerate() {
            let earlier = m_before.lateness.get(j).map_or(0, |(_, n)| *n);
            match lateness.get_mut(j) {
                Some(slot) => slot.1 += count - earlier,
                None => lateness.push((*bound, count - earlier)),
            }
        }
    }
    row(
        "all nodes",
        format!(
            "CPU {:.0} µs/check ({:.0}% of a core)",
            us_per(nodes_cpu, metrics_total),
            pct(nodes_cpu)
        ),
    );
    row(
        "lateness p50 / p99",
        format!(
            "{} / {} (histogram buckets, all nodes)",
            bucket_quantile(&lateness, 0.5),
            bucket_quantile(&lateness, 0.99)
        ),
    );
    row("lease lapses (node logs)", format!("{lapses} (a lapse reloads the node's partitions)"));
    let commands = after.redis_commands - before.redis_commands;
    let redis_cpu = after.redis_cpu.saturating_sub(before.redis_cpu);
    row(
        "redis ops per check",
        format!("{:.2} ({:.0} ops/s)", commands as f64 / hits.max(1) as f64, per_s(commands)),
    );
    let mut by_command: Vec<(u64, &String)> = after
        .redis_cmdstats
        .iter()
        .map(|(name, calls)| (calls - before.redis_cmdstats.get(name).copied().unwrap_or(0), name))
        .filter(|(calls, _)| *calls > 0)
        .collect();
    by_command.sort_by(|a, b| b.cmp(a));
    let top: Vec<String> = by_command
        .iter()
        .take(6)
        .map(|(calls, name)| format!("{name} {:.2}", *calls as f64 / hits.max(1) as f64))
        .collect();
    row("  per check, by command", top.join(", "));
    row(
        "redis-server",
        format!(
            "CPU {:.1} µs/check ({:.0}% of a core), RSS {} MiB",
            us_per(redis_cpu, hits),
            pct(redis_cpu),
            rss_of(bench.redis.proc.pid())? >> 20
        ),
    );
    let target_cpu = after.target_cpu.saturating_sub(before.target_cpu);
    row("target (not counted)", format!("CPU {:.1} µs/check", us_per(target_cpu, hits)));
    let busy = after.machine.0.saturating_sub(before.machine.0);
    let steal = after.machine.1.saturating_sub(before.machine.1);
    row(
        "machine CPU (% of a core)",
        format!(
            "{:.0}% busy of {}00%: nodes {:.0}, redis {:.0}, target {:.0}, other {:.0}, steal {:.0}",
            pct(busy),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            pct(nodes_cpu),
            pct(redis_cpu),
            pct(target_cpu),
            pct(busy.saturating_sub(nodes_cpu + redis_cpu + target_cpu)),
            pct(steal)
        ),
    );
    Ok(())
}
