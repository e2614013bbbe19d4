//! One failover event: SIGKILL or SIGTERM one node, then measure how long until the survivors
//! hold every partition (polling `GET /api/v1/cluster`), until every monitor of the stopped
//! node has been checked again, and the longest gap between two checks of each monitor across
//! the event (the target records every check); then restart the node and wait until the
//! partitions are balanced again.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cloudroutes_engine::cluster::Coordinator;

use crate::Bench;
use crate::support::quantile;

/// How often the cluster view and the target are polled during an event. Each view reads
/// every lease from Redis (one GET per partition), so polling is not free.
const POLL: Duration = Duration::from_millis(200);
/// How long to keep recording after every moved monitor was checked again, so that the gaps
/// of monitors moved between survivors are seen too.
const AFTER: Duration = Duration::from_secs(2);

/// The signal an event sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SIGKILL: leases expire.
    Kill,
    /// SIGTERM: the node hands over at once.
    Term,
}

impl Kind {
    fn signal(self) -> &'static str {
        match self {
            Kind::Kill => "KILL",
            Kind::Term => "TERM",
        }
    }
}

/// What one event measured. Times count from the signal; `None`: not within the deadline.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Until the stopped process had exited.
    pub exited: Option<Duration>,
    /// Whether a SIGTERMed node exited 0 (always true for SIGKILL).
    pub clean_exit: bool,
    /// Until the survivors held every partition.
    pub held: Option<Duration>,
    /// Until the survivors ran every monitor again (the sum of their `monitors_owned`
    /// gauges reached the monitor count): the takeover bound is lease + 5 s.
    pub running: Option<Duration>,
    /// Until every monitor of the stopped node had been checked again.
    pub rechecked: Option<Duration>,
    /// Median over those monitors of the time until each was checked again.
    pub recheck_p50: Duration,
    /// Monitors the stopped node ran (its partitions just before the signal).
    pub moved: usize,
    /// Of `moved`, never checked again before the deadline.
    pub missing: usize,
    /// Median and largest check gap over the moved monitors.
    pub gap_p50: Duration,
    /// Largest check gap of a moved monitor.
    pub gap_max: Duration,
    /// Largest check gap of any monitor (open gaps included).
    pub gap_max_all: Duration,
    /// Monitors whose gap exceeded the documented bound.
    pub over_bound: usize,
    /// From restarting the node until the partitions were balanced over all three again.
    pub rejoined: Option<Duration>,
    /// Lease lapses the nodes logged from the signal until the cluster had settled again.
    pub lapses: usize,
}

impl Outcome {
    /// One line for the progress log.
    pub fn brief(&self) -> String {
        let secs =
            |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()));
        format!(
            "exited {}, all held {}, all running {}, {} moved monitors rechecked {} (p50 {}), gap p50/max {} / {}, \
             rebalanced {}, lease lapses {}",
            secs(self.exited),
            secs(self.held),
            secs(self.running),
            self.moved,
            secs(self.rechecked),
            secs(Some(self.recheck_p50)),
            secs(Some(self.gap_p50)),
            secs(Some(self.gap_max)),
            secs(self.rejoined),
            self.lapses
        )
    }
}

/// Runs one event against node `victim` and restarts it afterwards.
pub async fn run(bench: &mut Bench, victim: usize, kind: Kind) -> Result<Outcome> {
    let victim_id = bench.nodes[victim].id.clone();
    let survivors: Vec<String> =
        bench.nodes.iter().map(|n| n.id.clone()).filter(|id| *id != victim_id).collect();
    let via = (victim + 1) % bench.nodes.len();
    let held_by_victim: HashSet<u32> = bench
        .store
        .holders()
        .await?
        .into_iter()
        .filter(|(_, holder, _)| *holder == victim_id)
        .map(|(partition, _, _)| partition)
        .collect();
    let watched: Vec<usize> =
        (0..bench.monitors).filter(|&i| held_by_victim.contains(&bench.partition_of[i])).collect();

    // The victim's process is watched apart from the rest of `bench`, so that its exit (every
    // 5 ms), the cluster view and the target (every `POLL`) are polled side by side.
    let mut proc = bench.nodes[victim].proc.take().context("the victim is not running")?;
    let lapses_before = bench.lapses();
    let mark = bench.target.mark(&watched).await?;
    let signalled = Instant::now();
    proc.signal(kind.signal())?;
    let deadline = signalled + bench.interval + bench.lease + bench.renew + Duration::from_secs(60);
    let shared: &Bench = bench;
    let exit = async {
        while Instant::now() < deadline {
            if let Some(status) = proc.try_exit()? {
                return Ok(Some((signalled.elapsed(), kind == Kind::Kill || status.success())));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::Ok(None)
    };
    let held = async {
        while Instant::now() < deadline {
            if survivors_hold_all(shared, via, &survivors).await {
                return Some(signalled.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
        None
    };
    let running = async {
        while Instant::now() < deadline {
            if survivors_run_all(shared, victim).await {
                return Some(signalled.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
        None
    };
    let rechecked = async {
        while Instant::now() < deadline {
            let status = shared.target.status().await?;
            if status.pending == 0 {
                let done_at = if watched.is_empty() { mark } else { status.done_at };
                return Ok(Some(Duration::from_micros(done_at.saturating_sub(mark))));
            }
            tokio::time::sleep(POLL).await;
        }
        anyhow::Ok(None)
    };
    let (exit, held, running, rechecked) = tokio::join!(exit, held, running, rechecked);
    let (exit, rechecked) = (exit?, rechecked?);
    if exit.is_none() {
        // Never leave it running; the figures say it did not exit.
        proc.signal("KILL")?;
        proc.wait_exit().await?;
    }
    drop(proc);
    let (exited, clean_exit) = match exit {
        Some((after, clean)) => (Some(after), clean),
        None => (None, false),
    };
    tokio::time::sleep(AFTER).await;
    let dump = bench.target.dump().await?;

    let bound = bench.interval + bench.lease + bench.renew + Duration::from_secs(1);
    let gap_of = |i: usize| {
        let record = dump.records[i];
        let open = if record.last == 0 { 0 } else { dump.now.saturating_sub(record.last) };
        Duration::from_micros(record.max_gap.max(open))
    };
    let mut gaps: Vec<Duration> = watched.iter().map(|&i| gap_of(i)).collect();
    gaps.sort();
    let all: Vec<Duration> = (0..bench.monitors).map(gap_of).collect();
    let mut rechecks: Vec<Duration> = watched
        .iter()
        .map(|&i| dump.records[i].first)
        .filter(|&first| first > 0)
        .map(|first| Duration::from_micros(first.saturating_sub(dump.mark)))
        .collect();
    rechecks.sort();
    let missing = watched.len() - rechecks.len();

    let restarted = Instant::now();
    bench.nodes[victim].spawn(&bench.env)?;
    let client = bench.client.clone();
    bench.nodes[victim].wait_ready(&bench.env, &client).await?;
    let rejoined = wait_balanced(bench, via, Duration::from_secs(120)).await?;
    let rejoined = rejoined.then(|| restarted.elapsed());
    // Let every monitor that moved back run once at its normal cadence before the next event.
    tokio::time::sleep(bench.interval + Duration::from_secs(1)).await;

    Ok(Outcome {
        exited,
        clean_exit,
        held,
        running,
        rechecked,
        recheck_p50: quantile(&rechecks, 0.5),
        moved: watched.len(),
        missing,
        gap_p50: quantile(&gaps, 0.5),
        gap_max: quantile(&gaps, 1.0),
        gap_max_all: all.iter().copied().max().unwrap_or_default(),
        over_bound: all.iter().filter(|gap| **gap > bound).count(),
        rejoined,
        lapses: bench.lapses() - lapses_before,
    })
}

/// Whether the nodes other than `victim` run every monitor between them, by their
/// `monitors_owned` gauges.
async fn survivors_run_all(bench: &Bench, victim: usize) -> bool {
    let mut running = 0;
    for i in (0..bench.nodes.len()).filter(|&i| i != victim) {
        match crate::steady::monitors_owned(bench, i).await {
            Ok(owned) => running += owned,
            Err(_) => return false,
        }
    }
    running >= bench.monitors as u64
}

/// Whether, seen through node `via`, the live nodes in `survivors` hold every partition.
async fn survivors_hold_all(bench: &Bench, via: usize, survivors: &[String]) -> bool {
    let Ok(view) = bench.view(via).await else { return false };
    let held: u64 = view["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter(|n| n["alive"] == true)
                .filter(|n| n["id"].as_str().is_some_and(|id| survivors.iter().any(|s| s == id)))
                .filter_map(|n| n["partitions"].as_u64())
                .sum()
        })
        .unwrap_or(0);
    held == u64::from(bench.partitions)
}

/// Waits until, seen through node `via`, every node is alive and holds exactly the share the
/// assignment over all nodes gives it; returns false on timeout.
pub async fn wait_balanced(bench: &Bench, via: usize, timeout: Duration) -> Result<bool> {
    let ids: Vec<String> = bench.nodes.iter().map(|n| n.id.clone()).collect();
    let expected = cloudroutes_engine::partition::Assignment::compute(&ids, bench.partitions);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(view) = bench.view(via).await {
            let nodes = view["nodes"].as_array().context("nodes")?;
            let balanced = ids.iter().all(|id| {
                let want = expected.partitions_of(id).len() as u64;
                nodes.iter().any(|n| {
                    n["id"] == id.as_str() && n["alive"] == true && n["partitions"] == want
                })
            });
            if balanced {
                return Ok(true);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(false)
}
