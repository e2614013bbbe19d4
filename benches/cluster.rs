//! Cluster benchmark: `cloudroutes node` processes (three by default) on one `redis-server`
//! (`appendfsync always`), N `http-get-statuscode` monitors against a check target that
//! records every check, default lease timings (lease 10 s, renew 2 s).
//!
//! `cargo bench --bench cluster [-- --nodes K --monitors N --interval S --runs K --window S]`
//! builds the
//! node binary in release (`cargo build --release --bin cloudroutes`; `--no-build` skips it),
//! seeds the monitors straight into Redis with `RedisStore::put_monitors`, starts the nodes,
//! and prints:
//!
//! 1. **Steady state**: checks per second (the target's count, cross-checked with the nodes'
//!    `/metrics`), CPU per check and RSS per node, redis-server's CPU (/proc/PID/stat), Redis
//!    operations per check (`INFO stats` `total_commands_processed` over the same window) and
//!    what the machine's CPU went to.
//! 2. **Takeover after SIGKILL** of one node: time until the survivors hold every partition
//!    (polling `GET /api/v1/cluster`), until the survivors run every monitor again (their
//!    `monitors_owned` gauges), until every monitor of the dead node has been checked again, and the check gap per moved monitor (p50, max) against the documented bound,
//!    interval + lease + renew + 1 s; then the node is restarted and the cluster rebalances.
//! 3. **Handover after SIGTERM**: the same figures.
//!
//! Events repeat `--runs` times, rotating the victim; the table gives p50 / max over runs.
//! `--nodes 1 --runs 0` gives the single-node steady state that the cluster's rate is compared
//! with; `--nodes 2 --monitors 600000 --interval 300` has the survivor take over 300,000.
//! Every process (Redis, target, nodes) is killed by pid when the bench ends, also on error.

#[allow(dead_code, reason = "the scale benchmark's helpers; this bench uses a few")]
mod support;

#[path = "cluster/events.rs"]
mod events;
#[path = "cluster/procs.rs"]
mod procs;
#[path = "cluster/steady.rs"]
mod steady;
#[path = "cluster/target.rs"]
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use cloudroutes_engine::cluster::Fences;
use cloudroutes_engine::partition::{DEFAULT_PARTITIONS, partition_of};
use cloudroutes_engine::store::redis::{RedisOptions, RedisStore};
use cloudroutes_engine::{Monitor, MonitorId, Store};
use events::{Kind, Outcome};
use procs::{ClusterEnv, NodeProc, RedisServer};
use serde_json::json;
use support::row;
use target::Target;

/// Monitors per `put_monitors` call when seeding.
const SEED_CHUNK: usize = 10_000;
/// Default lease timings of `cluster.toml`, used unless overridden.
const DEFAULT_LEASE_MS: u64 = 10_000;
const DEFAULT_RENEW_MS: u64 = 2_000;

/// Cluster benchmark: 3 nodes on one Redis.
#[derive(Debug, Parser)]
struct Args {
    /// Nodes in the cluster (1 gives the single-node figure the cluster's rate is compared
    /// with; the events need at least 2).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Monitors (http-get-statuscode against the local target).
    #[arg(long, default_value_t = 30_000)]
    monitors: usize,
    /// Seconds between checks of each monitor.
    #[arg(long, default_value_t = 10)]
    interval: u32,
    /// Kill and term events, each (the victim rotates over the nodes).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Length of the steady-state window, in seconds.
    #[arg(long, default_value_t = 30)]
    window: u64,
    /// `cluster.lease_ms` (fence at 60 %, heartbeat TTL = lease, heartbeat = renew).
    #[arg(long, default_value_t = DEFAULT_LEASE_MS)]
    lease_ms: u64,
    /// `cluster.renew_ms`.
    #[arg(long, default_value_t = DEFAULT_RENEW_MS)]
    renew_ms: u64,
    /// Do not run `cargo build --release --bin cloudroutes` (use the binary as it is).
    #[arg(long)]
    no_build: bool,
    /// Keep the temp dir with the node and redis logs (it is always kept on error).
    #[arg(long)]
    keep_logs: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The running cluster and what the measurements need. Fields drop in order: nodes first,
/// the temp dir last.
pub struct Bench {
    /// The node processes, `node-1` first.
    pub nodes: Vec<NodeProc>,
    /// The check target.
    pub target: Target,
    /// A store client (reads lease holders).
    pub store: RedisStore,
    /// The shared Redis.
    pub redis: RedisServer,
    /// How nodes are started.
    pub env: ClusterEnv,
    /// HTTP client with the admin token.
    pub client: reqwest::Client,
    /// The partition of each monitor, by index.
    pub partition_of: Vec<u32>,
    /// The cluster's partition count.
    pub partitions: u32,
    /// Monitors seeded.
    pub monitors: usize,
    /// Check interval.
    pub interval: Duration,
    /// `cluster.lease_ms`.
    pub lease: Duration,
    /// `cluster.renew_ms`.
    pub renew: Duration,
    /// Data dirs and logs; removed at the end unless kept.
    dir: tempfile::TempDir,
}

impl Bench {
    /// `GET /api/v1/cluster` through node `via`.
    pub async fn view(&self, via: usize) -> Result<serde_json::Value> {
        let url = self.nodes[via].url("/api/v1/cluster");
        Ok(self.client.get(url).send().await?.error_for_status()?.json().await?)
    }

    /// Lease lapses logged by all nodes so far: lines of their logs that say a node let its
    /// leases go unrenewed past `fence_ms` (it stops writing and later reloads those
    /// partitions). A diagnostic that depends on the log message.
    pub fn lapses(&self) -> usize {
        let needle = "not renewed in time";
        self.nodes
            .iter()
            .map(|node| std::fs::read_to_string(self.env.dir.join(format!("{}.log", node.id))))
            .map(|text| text.map_or(0, |text| text.lines().filter(|l| l.contains(needle)).count()))
            .sum()
    }

    /// The monitors node `i` says it runs (cluster view through itself).
    pub async fn monitors_on(&self, i: usize) -> Result<u64> {
        let view = self.view(i).await?;
        let nodes = view["nodes"].as_array().context("nodes")?;
        let me = nodes.iter().find(|n| n["id"] == self.nodes[i].id.as_str()).context("self")?;
        me["monitors"].as_u64().context("monitors")
    }
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(at) = argv.iter().position(|a| a == target::SERVE) {
        let monitors = argv.get(at + 1).context("monitor count")?.parse()?;
        return target::serve(monitors);
    }
    let args = Args::parse();
    support::raise_nofile_limit()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    ensure!(args.monitors > 0 && args.interval > 0, "--monitors and --interval must be > 0");
    ensure!(args.nodes > 0, "--nodes must be at least 1");
    ensure!(args.nodes > 1 || args.runs == 0, "the events need --nodes 2 or more (or --runs 0)");
    ensure!(args.renew_ms * 10 < args.lease_ms * 6, "--renew-ms must be below 60 % of the lease");
    let dir = tempfile::Builder::new().prefix("cloudroutes-cluster-bench-").tempdir()?;
    let binary = procs::node_binary(args.no_build, dir.path())?;
    let redis = RedisServer::start(dir.path()).await?;
    let target = Target::spawn(args.monitors)?;
    let partitions = DEFAULT_PARTITIONS;
    let options = RedisOptions {
        node_id: "bench-seeder".into(),
        partitions,
        history_max_events: 1_000,
        response_timeout: Duration::from_secs(60),
    };
    let fences = Arc::new(Fences::new(Duration::from_secs(6)));
    let store = RedisStore::connect(&redis.url(), options, fences).await?;

    let started = Instant::now();
    let mut partition_of_monitor = Vec::with_capacity(args.monitors);
    for first in (0..args.monitors).step_by(SEED_CHUNK) {
        let chunk: Vec<Monitor> = (first..args.monitors.min(first + SEED_CHUNK))
            .map(|i| monitor(i, args.interval, &target))
            .collect();
        store.put_monitors(&chunk).await?;
        partition_of_monitor.extend(chunk.iter().map(|m| partition_of(&m.id, partitions)));
    }
    let seeded = started.elapsed();

    let mut extra = Vec::new();
    if (args.lease_ms, args.renew_ms) != (DEFAULT_LEASE_MS, DEFAULT_RENEW_MS) {
        for (key, value) in [
            ("LEASE_MS", args.lease_ms),
            ("RENEW_MS", args.renew_ms),
            ("FENCE_MS", args.lease_ms * 6 / 10),
            ("HEARTBEAT_TTL_MS", args.lease_ms),
            ("HEARTBEAT_MS", args.renew_ms),
        ] {
            extra.push((format!("CLOUDROUTES_CLUSTER_{key}"), value.to_string()));
        }
    }
    let token = "cluster-bench-admin-token-0123456789".to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()?;
    let env =
        ClusterEnv { binary, store_url: redis.url(), token, extra, dir: dir.path().to_owned() };
    let nodes =
        (1..=args.nodes).map(|i| NodeProc::new(&format!("node-{i}"))).collect::<Result<_>>()?;
    let mut bench = Bench {
        nodes,
        target,
        store,
        redis,
        env,
        client,
        partition_of: partition_of_monitor,
        partitions,
        monitors: args.monitors,
        interval: Duration::from_secs(u64::from(args.interval)),
        lease: Duration::from_millis(args.lease_ms),
        renew: Duration::from_millis(args.renew_ms),
        dir,
    };

    println!(
        "cluster: {} node(s), N={} monitors (http-get-statuscode), interval {} s, \
         {partitions} partitions, lease {} ms, renew {} ms, redis appendfsync always",
        args.nodes, args.monitors, args.interval, args.lease_ms, args.renew_ms
    );
    row(&format!("seed {} monitors", args.monitors), format!("{:.1} s", seeded.as_secs_f64()));
    let result = measure(&mut bench, &args).await;
    if result.is_err() || args.keep_logs {
        bench.dir.disable_cleanup(true);
        let dir = bench.dir.path().display();
        eprintln!("node and redis logs kept in {dir} (processes stopped)");
    }
    result
}

/// Starts the nodes, then measures the steady state and the events.
async fn measure(bench: &mut Bench, args: &Args) -> Result<()> {
    let started = Instant::now();
    for node in &mut bench.nodes {
        node.spawn(&bench.env)?;
    }
    for node in &mut bench.nodes {
        node.wait_ready(&bench.env, &bench.client).await?;
    }
    let ready = started.elapsed();
    ensure!(
        events::wait_balanced(bench, 0, Duration::from_secs(120)).await?,
        "the partitions did not balance over {} nodes",
        bench.nodes.len()
    );
    let balanced = started.elapsed();
    let deadline = started + bench.interval * 2 + Duration::from_secs(60);
    let unchecked = loop {
        let status = bench.target.status().await?;
        if status.unchecked == 0 || Instant::now() >= deadline {
            break status.unchecked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let checked = match unchecked {
        0 => format!("every monitor checked {:.1} s", started.elapsed().as_secs_f64()),
        n => format!("{n} MONITORS NEVER CHECKED in {:.0} s", started.elapsed().as_secs_f64()),
    };
    row(
        "startup",
        format!(
            "all ready {:.1} s, balanced {:.1} s, {checked}",
            ready.as_secs_f64(),
            balanced.as_secs_f64(),
        ),
    );
    // One full interval at cadence before measuring.
    tokio::time::sleep(bench.interval).await;
    steady::measure(bench, Duration::from_secs(args.window)).await?;

    let mut kills = Vec::new();
    let mut terms = Vec::new();
    for run in 0..args.runs {
        for (kind, outcomes) in [(Kind::Kill, &mut kills), (Kind::Term, &mut terms)] {
            let victim = (run + usize::from(kind == Kind::Term)) % bench.nodes.len();
            let outcome = events::run(bench, victim, kind).await?;
            let (run, signal, node) = (run + 1, kind_name(kind), victim + 1);
            eprintln!("run {run}: SIG{signal} node-{node}: {}", outcome.brief());
            outcomes.push(outcome);
        }
    }
    if args.runs > 0 {
        let bound = bench.interval + bench.lease + bench.renew + Duration::from_secs(1);
        print_events("takeover after SIGKILL", &kills, bound);
        print_events("handover after SIGTERM", &terms, bound);
    }
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Kill => "KILL",
        Kind::Term => "TERM",
    }
}

/// Monitor `i`: `http-get-statuscode` of the target's `/m/{i}`.
fn monitor(i: usize, interval_secs: u32, target: &Target) -> Monitor {
    let key: [u8; 24] = rand::random();
    Monitor {
        id: MonitorId::generate(),
        name: format!("cluster bench monitor {i}"),
        check: support::spec(json!({"type": "http-get-statuscode", "url": target.url(i)})),
        interval_secs: Some(interval_secs),
        reactions: Vec::new(),
        enabled: true,
        tags: Vec::new(),
        webhook_key: key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Seconds with one decimal, `p50 / max` over runs; `-` when a run timed out.
fn over_runs(values: &[Option<Duration>]) -> String {
    let mut known: Vec<Duration> = values.iter().flatten().copied().collect();
    known.sort();
    let missing = values.len() - known.len();
    let secs = |d: Duration| format!("{:.1}", d.as_secs_f64());
    let mut text = format!(
        "{} / {} s",
        secs(support::quantile(&known, 0.5)),
        secs(support::quantile(&known, 1.0))
    );
    if missing > 0 {
        text.push_str(&format!(" ({missing} run(s) timed out)"));
    }
    text
}

/// Prints the table of one event kind.
fn print_events(title: &str, outcomes: &[Outcome], bound: Duration) {
    let column = |f: &dyn Fn(&Outcome) -> Option<Duration>| -> String {
        over_runs(&outcomes.iter().map(f).collect::<Vec<_>>())
    };
    println!("{title} ({} runs; p50 / max over runs)", outcomes.len());
    row("process exited", column(&|o| o.exited));
    row("partitions all held", column(&|o| o.held));
    row("moved monitors running again", column(&|o| o.running));
    let moved: Vec<usize> = outcomes.iter().map(|o| o.moved).collect();
    row("moved monitors rechecked", format!("{} (moved: {moved:?})", column(&|o| o.rechecked)));
    row("  median moved monitor", column(&|o| Some(o.recheck_p50)));
    row("check gap p50, moved", column(&|o| Some(o.gap_p50)));
    row(
        "check gap max, moved",
        format!("{} (bound {:.0} s)", column(&|o| Some(o.gap_max)), bound.as_secs_f64()),
    );
    row("check gap max, any", column(&|o| Some(o.gap_max_all)));
    let over: usize = outcomes.iter().map(|o| o.over_bound).sum();
    let missing: usize = outcomes.iter().map(|o| o.missing).sum();
    let unclean = outcomes.iter().filter(|o| !o.clean_exit).count();
    row(
        "over the bound",
        format!("{over} monitor-events; never rechecked {missing}; unclean exits {unclean}"),
    );
    row("rebalanced after restart", column(&|o| o.rejoined));
    let lapses: Vec<usize> = outcomes.iter().map(|o| o.lapses).collect();
    row("lease lapses (node logs)", format!("{lapses:?} per run"));
}
