//! Scale benchmark of one node: checks per second, CPU per check, schedule lateness, resident
//! memory per monitor and startup time at N monitors, plus the latency from a failing result
//! to its reaction's HTTP request. It reports figures; it asserts nothing.
//!
//! `cargo bench --bench scale -- [--monitors N]... [--interval-secs 10] [--seconds 30]
//! [--latency-runs 1000] [--skip-scale]`, plus diagnostics that change what is measured:
//! `--checks tcp|http` (one check type only), `--state-flush-ms MS` (the routers' batched state
//! writes), `--timeline` (per-second figures and stall probes on stderr).
//!
//! Per N: seeding time (`put_monitors` in chunks), startup (from `Node::start` to every monitor
//! running, from the `monitors_owned` gauge), then after one interval of warm-up a window in
//! which it measures checks per second (`checks` counters), CPU per check (getrusage of this
//! process), schedule lateness (the node's `LatenessRecorder`, reset at the window's start),
//! how long results wait in the reaction routers (a probe through `Node::observe`), and RSS per
//! monitor (VmRSS at the window's end minus before seeding, over N). The CPU of the target
//! process and of the rest of the machine is shown too: other load on the machine shows up as
//! lateness.
//!
//! A million monitors at a 60 s interval (issue 8's target, about 16,700 checks/s) is
//! `cargo bench --bench scale -- --monitors 1000000 --interval-secs 60 --seconds 60
//! --latency-runs 0`: seeding, startup, one interval of warm-up, then the 60 s window; it
//! needs about 14 GiB of memory and several minutes. The default run (10,000 then 100,000
//! monitors at 10 s, 30 s windows, 1,000 latency runs) takes a few minutes.
//!
//! Each scale run happens in a fresh child process (this binary re-executed), so memory and CPU
//! figures are not polluted by an earlier run; the check targets run in yet another process
//! (see `support::Target`), so their CPU is not counted.

mod support;

/// The allocator the `cloudroutes` binary uses, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use cloudroutes_actors::metrics::{Metrics, TypeOutcome};
use cloudroutes_actors::{MonitorDraft, Node, ReactionDraft};
use cloudroutes_engine::config::EMBEDDED_STORE_FILE;
use cloudroutes_engine::{CallOn, CheckOutcome, EventKind, Method, Monitor};
use serde_json::json;
use support::{CpuTime, Target, ms, quantile, row, vm_rss};

/// Monitors per `put_monitors` transaction when seeding.
const SEED_CHUNK: usize = 10_000;
/// Untimed reaction runs before the measured ones (connections, caches).
const LATENCY_WARMUP: usize = 20;
/// Check types the seeded monitors use, for reading the checks counters.
const CHECK_TYPES: [&str; 2] = ["tcp-check", "http-get-statuscode"];
const OUTCOMES: [&str; 3] = ["healthy", "failed", "unknown"];

/// Scale benchmark of one node.
#[derive(Debug, Parser)]
struct Args {
    /// Monitors in a scale run; repeat for several runs (default: 10000, then 100000).
    #[arg(long = "monitors")]
    monitors: Vec<usize>,
    /// Seconds between checks of each monitor.
    #[arg(long, default_value_t = 10)]
    interval_secs: u32,
    /// Length of the measurement window, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Measured failing results in the reaction latency run (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    latency_runs: usize,
    /// Skip the scale runs (only measure reaction latency).
    #[arg(long)]
    skip_scale: bool,
    /// Run exactly one scale run in this process (how the parent runs each N).
    #[arg(long, hide = true)]
    scale_child: bool,
    /// Diagnostic: `engine.state_flush_ms` of the scale runs (default: the config's default).
    #[arg(long)]
    state_flush_ms: Option<u64>,
    /// Diagnostic: which checks the seeded monitors run: `mixed` (half each), `tcp` or `http`.
    #[arg(long, default_value = "mixed")]
    checks: String,
    /// Diagnostic: print per-second checks, lateness, CPU and stall probes during the window
    /// (the window's lateness and router queue rows then show only its last second).
    #[arg(long)]
    timeline: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    if std::env::args().any(|arg| arg == support::SERVE_TARGET) {
        return support::serve_target();
    }
    let args = Args::parse();
    support::raise_nofile_limit()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.scale_child {
        let &[monitors] = args.monitors.as_slice() else { bail!("one --monitors per child") };
        return runtime.block_on(scale(monitors, &args));
    }
    if !args.skip_scale {
        let sizes = if args.monitors.is_empty() { vec![10_000, 100_000] } else { args.monitors };
        let exe = std::env::current_exe()?;
        for n in sizes {
            let status = Command::new(&exe)
                .args(["--scale-child", "--monitors", &n.to_string()])
                .args(["--interval-secs", &args.interval_secs.to_string()])
                .args(["--seconds", &args.seconds.to_string()])
                .args(["--checks", &args.checks])
                .args(args.state_flush_ms.map(|ms| format!("--state-flush-ms={ms}")))
                .args(args.timeline.then_some("--timeline"))
                .status()
                .context("run a scale child")?;
            ensure!(status.success(), "the scale run with N={n} failed: {status}");
        }
    }
    if args.latency_runs > 0 {
        runtime.block_on(reaction_latency(args.latency_runs))?;
    }
    Ok(())
}

/// Checks run so far, by outcome (healthy, failed, unknown), over the seeded check types.
fn checks_by_outcome(metrics: &Metrics) -> [u64; 3] {
    OUTCOMES.map(|outcome| {
        CHECK_TYPES
            .iter()
            .map(|&kind| metrics.checks.get_or_create(&TypeOutcome { r#type: kind, outcome }).get())
            .sum()
    })
}

/// One scale run with `n` monitors, printed as a table.
async fn scale(n: usize, args: &Args) -> Result<()> {
    let (interval_secs, window_secs) = (args.interval_secs, args.seconds);
    let interval = Duration::from_secs(u64::from(interval_secs));
    let window = Duration::from_secs(window_secs);
    let target = Target::spawn()?;
    let dir = tempfile::tempdir()?;
    let mut config = support::bench_config(dir.path());
    if let Some(ms) = args.state_flush_ms {
        config.engine.state_flush_ms = ms;
    }
    ensure!(
        ["mixed", "tcp", "http"].contains(&args.checks.as_str()),
        "--checks: mixed, tcp or http"
    );
    let rss_before = vm_rss()?;

    let store = support::open_store(&config)?;
    let started = Instant::now();
    let mut probe_ids = Vec::new();
    for first in (0..n).step_by(SEED_CHUNK) {
        let chunk: Vec<Monitor> = (first..n.min(first + SEED_CHUNK))
            .map(|i| support::seeded_monitor(i, interval_secs, &args.checks, &target))
            .collect();
        store.put_monitors(&chunk).await?;
        probe_ids.extend(chunk.iter().step_by(SEED_CHUNK / 4).map(|m| m.id.clone()));
    }
    let seeding = started.elapsed();
    let rss_seeded = vm_rss()?;

    let started = Instant::now();
    let node = Node::start(config, "bench".into(), Arc::clone(&store)).await?;
    let loaded = started.elapsed();
    let metrics = node.metrics();
    let expected = i64::try_from(n)?;
    while metrics.monitors_owned.get() < expected {
        ensure!(started.elapsed() < Duration::from_secs(600), "monitors did not all start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let startup = started.elapsed();
    let rss_started = vm_rss()?;

    // Warm-up: one full interval, so every monitor has run at least once.
    tokio::time::sleep(interval).await;
    metrics.lateness.reset();
    let checks_before = checks_by_outcome(metrics);
    let cpu_before = CpuTime::now()?;
    let target_cpu_before = support::process_cpu(target.pid())?;
    let machine_before = support::machine_cpu()?;
    let started = Instant::now();
    let probe = support::RouterProbe::start(node.clone(), probe_ids);
    if args.timeline {
        let checks = || checks_by_outcome(metrics).iter().sum();
        support::timeline(metrics, &probe.delays, window, checks).await?;
    } else {
        tokio::time::sleep(window).await;
    }
    let router_delay = probe.delays.snapshot();
    probe.stop().await;
    let elapsed = started.elapsed();
    let cpu = CpuTime::now()?.since(cpu_before);
    let target_cpu = support::process_cpu(target.pid())?.saturating_sub(target_cpu_before);
    let machine = support::machine_cpu()?;
    let (busy, steal) = (machine.0 - machine_before.0, machine.1 - machine_before.1);
    let checks_after = checks_by_outcome(metrics);
    let lateness = metrics.lateness.snapshot();
    let rss_steady = vm_rss()?;
    let store_file = std::fs::metadata(dir.path().join(EMBEDDED_STORE_FILE))?.len();
    node.shutdown().await;
    drop(target);

    let by_outcome: Vec<u64> =
        checks_after.iter().zip(checks_before).map(|(after, before)| after - before).collect();
    let checks: u64 = by_outcome.iter().sum();
    let per_check = |d: Duration| d.as_secs_f64() * 1e6 / checks.max(1) as f64;
    let per_monitor = |rss: u64| rss.saturating_sub(rss_before) as f64 / 1024.0 / n as f64;

    println!("scale: N={n} interval={interval_secs}s window={window_secs}s");
    if args.checks != "mixed" || args.state_flush_ms.is_some() {
        let flush = args.state_flush_ms.map_or("default".into(), |ms| format!("{ms} ms"));
        println!("  (diagnostic: checks={}, state flush {flush})", args.checks);
    }
    row(&format!("seed {n} monitors"), format!("{:.1} s", seeding.as_secs_f64()));
    row(
        "startup (load + spawn)",
        format!(
            "{:.1} s (Node::start returned at {:.1} s)",
            startup.as_secs_f64(),
            loaded.as_secs_f64()
        ),
    );
    row(
        "checks/s",
        format!(
            "{:.0} (expected {:.0})",
            checks as f64 / elapsed.as_secs_f64(),
            n as f64 / interval.as_secs_f64()
        ),
    );
    row("outcomes h/f/u", format!("{} / {} / {}", by_outcome[0], by_outcome[1], by_outcome[2]));
    row(
        "CPU per check",
        format!(
            "{:.1} µs (user {:.1} + sys {:.1}; node {:.0}% of a core)",
            per_check(cpu.total()),
            per_check(cpu.user),
            per_check(cpu.sys),
            cpu.total().as_secs_f64() * 100.0 / elapsed.as_secs_f64()
        ),
    );
    row("target CPU (not counted)", format!("{:.1} µs per check", per_check(target_cpu)));
    let percent = |d: Duration| d.as_secs_f64() * 100.0 / elapsed.as_secs_f64();
    row(
        "machine CPU (% of a core)",
        format!(
            "{:.0}% busy of {}00%: node {:.0}, target {:.0}, other {:.0}, steal {:.0}",
            percent(busy),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            percent(cpu.total()),
            percent(target_cpu),
            percent(busy.saturating_sub(cpu.total() + target_cpu)),
            percent(steal)
        ),
    );
    row(
        "lateness p50/p99/max",
        format!(
            "{} / {} / {} ms ({} ticks)",
            ms(lateness.p50),
            ms(lateness.p99),
            ms(lateness.max),
            lateness.count
        ),
    );
    row(
        "router queue p50/p99/max",
        format!(
            "{} / {} / {} ms ({} probes: result -> state)",
            ms(router_delay.p50),
            ms(router_delay.p99),
            ms(router_delay.max),
            router_delay.count
        ),
    );
    row("store file after window", format!("{} MiB", store_file >> 20));
    row("RSS per monitor", format!("{:.1} KiB", per_monitor(rss_steady)));
    row(
        "  of which",
        format!(
            "seeded {:.1}, started {:.1}, steady {:.1} KiB (RSS {} -> {} MiB)",
            per_monitor(rss_seeded),
            per_monitor(rss_started),
            per_monitor(rss_steady),
            rss_before >> 20,
            rss_steady >> 20
        ),
    );
    Ok(())
}

/// Measures the time from a failing result to its reaction's HTTP request reaching a local
/// receiver, `runs` times, and prints the percentiles.
async fn reaction_latency(runs: usize) -> Result<()> {
    use warp::Filter;

    let (arrivals, mut arrived) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let route =
        warp::any().map(Instant::now).and(warp::body::bytes()).map(move |at: Instant, _body| {
            let _ = arrivals.send(at);
            warp::reply()
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver = listener.local_addr()?;
    let server = tokio::spawn(warp::serve(route).incoming(listener).run());

    let dir = tempfile::tempdir()?;
    let config = support::bench_config(dir.path());
    let store = support::open_store(&config)?;
    let node = Node::start(config, "bench".into(), store).await?;
    let reaction = node
        .create_reaction(ReactionDraft {
            name: "bench webhook".into(),
            action: support::spec(
                json!({"type": "http-webhook", "url": format!("http://{receiver}/hook")}),
            ),
            trigger: 1,
            frequency_secs: 0,
            call_on: CallOn::Failed,
        })
        .await?;
    let monitor = node
        .create_monitor(MonitorDraft {
            name: "bench webhook monitor".into(),
            check: support::spec(json!({"type": "webhook"})),
            interval_secs: None,
            reactions: vec![reaction.reaction.id.clone()],
            enabled: true,
            tags: Vec::new(),
        })
        .await?;
    let id = monitor.monitor.id;

    let mut total = Vec::with_capacity(runs);
    let mut persisted = Vec::with_capacity(runs);
    for run in 0..LATENCY_WARMUP + runs {
        let healthy = CheckOutcome::Healthy { reason: "bench: healthy".into() };
        node.observe(&id, healthy, Method::Webhook).await?;
        let failed = CheckOutcome::Failed { reason: "bench: failed".into() };
        let t0 = Instant::now();
        let state = node.observe(&id, failed, Method::Webhook).await?;
        let observed = t0.elapsed();
        let at = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
            .await
            .context("no webhook request within 10 s")?
            .context("receiver gone")?;
        if run >= LATENCY_WARMUP {
            total.push(at.saturating_duration_since(t0));
            persisted.push(observed);
        }
        // Let the firing record its outcome, so the next run starts on a quiet store.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (events, _) = node.events(&id, None, 1).await?;
            let recorded = events.first().is_some_and(|event| {
                matches!(event.kind, EventKind::Reaction { episode, .. } if episode == state.episode)
            });
            if recorded {
                break;
            }
            ensure!(Instant::now() < deadline, "the reaction outcome was not recorded");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    node.shutdown().await;
    server.abort();

    total.sort();
    persisted.sort();
    println!("reaction latency: runs={runs} (failing result -> http-webhook request at receiver)");
    row(
        "p50/p99/max",
        format!(
            "{} / {} / {} ms",
            ms(quantile(&total, 0.5)),
            ms(quantile(&total, 0.99)),
            ms(quantile(&total, 1.0))
        ),
    );
    row(
        "  of which observe p50/p99",
        format!("{} / {} ms", ms(quantile(&persisted, 0.5)), ms(quantile(&persisted, 0.99))),
    );
    println!(
        "  includes the durable (fsynced) store write of the transition: persist before acting"
    );
    Ok(())
}
