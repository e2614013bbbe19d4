//! Side-by-side benchmark: the same set of HTTP checks against the same local nginx, done by
//! CloudRoutes, by a bare tokio + reqwest client, by Prometheus blackbox exporter and by Monit,
//! one after another in one run (so machine noise mostly cancels), each at the same paced rate
//! for the same window. It prints each tool's CPU per check and the ratios; it asserts nothing.
//!
//! `cargo bench --bench compare -- [--rate 2000] [--seconds 30] [--targets 100]
//! [--tools all|cloudroutes,bare,blackbox,monit] [--rounds 1] [--state-flush-ms MS]`;
//! `scripts/bench-deps.sh` installs the Debian packages it starts (nginx-light,
//! prometheus-blackbox-exporter, monit). A missing one is named and its tool skipped; nginx is
//! required.
//!
//! - nginx: one process (`master_process off`, one worker), generated config in a temp dir,
//!   `access_log off`, keep-alive without a request limit, `/t/0` ... `/t/K-1` answering 200,
//!   `stub_status` at `/status`. Checks in a window are its request delta (the bench's own
//!   status request taken out), cross-checked with each tool's own count of healthy checks.
//! - CloudRoutes: a real node (this bench re-executed as `--role cloudroutes`: embedded store,
//!   default config, egress allowing 127.0.0.0/8) with `rate × interval` seeded
//!   `http-get-statuscode` monitors spread over the targets; the node gives each a random phase.
//!   Its CPU is the child process's (from /proc/PID/stat), which runs nothing but the node.
//! - bare client (`--role bare`): tokio multi-thread runtime, one keep-alive `reqwest::Client`,
//!   the same number of tasks each sleeping its interval from a random phase, GET + status.
//! - blackbox exporter: `http_2xx` module, `GET /probe` issued by this process at the rate with
//!   bounded concurrency (this process's CPU is not counted, the exporter's is).
//! - Monit: `set daemon 1`, `--monit-services` `check host` services (default: the rate) over
//!   the targets; it checks one after another, so its rate is what it achieves.
//!
//! CloudRoutes and the bare client warm up one interval, the others `--warmup-secs`.
//!
//! With `--rounds N` every tool runs N times, the order reversed every other round so that a
//! machine slowing down or speeding up over the run weighs on each tool alike; the table shows
//! each tool's median round (by CPU per check) and the CloudRoutes / bare ratio of each round.

#[allow(dead_code, reason = "the scale benchmark's helpers; this bench uses a few")]
mod support;

#[path = "compare/procs.rs"]
mod procs;
#[path = "compare/roles.rs"]
mod roles;
#[path = "compare/tools.rs"]
mod tools;

/// The allocator the `cloudroutes` binary uses, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tools::{Measured, Outcome, Plan};

/// Tools in the order they run.
const TOOLS: [&str; 4] = ["cloudroutes", "bare", "blackbox", "monit"];

/// CloudRoutes vs a bare client, blackbox exporter and Monit on the same checks.
#[derive(Debug, Parser)]
struct Args {
    /// Checks per second every tool is paced at.
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// Length of each tool's measurement window, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Distinct target URLs (`/t/0` ...).
    #[arg(long, default_value_t = 100)]
    targets: u32,
    /// Tools to run: `all`, or a comma-separated list of cloudroutes, bare, blackbox, monit.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    tools: Vec<String>,
    /// Seconds between two checks of one monitor (CloudRoutes and the bare client).
    #[arg(long, default_value_t = 10)]
    interval_secs: u32,
    /// Warm-up of blackbox exporter and Monit before their window, in seconds.
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Probes the blackbox exporter driver keeps in flight at most.
    #[arg(long, default_value_t = 256)]
    probe_concurrency: usize,
    /// Times every tool runs (order reversed every other round); the table shows medians.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// CloudRoutes' `engine.state_flush_ms` (default: the product's default).
    #[arg(long)]
    state_flush_ms: Option<u64>,
    /// Monit's `check host` services (default: the rate).
    #[arg(long)]
    monit_services: Option<u32>,
    /// Internal: run as a child role (`cloudroutes`, `bare`) against `--port`.
    #[arg(long, hide = true)]
    role: Option<String>,
    /// Internal: nginx's port, for a child role.
    #[arg(long, hide = true, default_value_t = 0)]
    port: u16,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Args {
    fn urls(&self, port: u16) -> Vec<String> {
        (0..self.targets.max(1)).map(|k| format!("http://127.0.0.1:{port}/t/{k}")).collect()
    }

    fn monitors(&self) -> usize {
        self.rate as usize * self.interval_secs as usize
    }

    /// The arguments a role child gets.
    fn child_args(&self, port: u16) -> Vec<String> {
        let mut args = vec![
            format!("--port={port}"),
            format!("--rate={}", self.rate),
            format!("--targets={}", self.targets),
            format!("--interval-secs={}", self.interval_secs),
        ];
        args.extend(self.state_flush_ms.map(|ms| format!("--state-flush-ms={ms}")));
        args
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    support::raise_nofile_limit()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(role) = &args.role {
        let work = roles::Workload {
            urls: args.urls(args.port),
            monitors: args.monitors(),
            interval_secs: args.interval_secs,
            state_flush_ms: args.state_flush_ms,
        };
        return runtime.block_on(roles::run(role, work));
    }
    let tools: Vec<&str> = if args.tools.iter().any(|t| t == "all") {
        TOOLS.to_vec()
    } else {
        TOOLS.into_iter().filter(|t| args.tools.iter().any(|a| a == t)).collect()
    };
    if let Some(unknown) = args.tools.iter().find(|t| *t != "all" && !TOOLS.contains(&t.as_str())) {
        bail!("--tools: unknown tool {unknown:?} (all, {})", TOOLS.join(", "));
    }
    if args.rate == 0 || args.interval_secs == 0 || args.seconds == 0 || args.rounds == 0 {
        bail!("--rate, --interval-secs, --seconds and --rounds must be positive");
    }
    runtime.block_on(compare(&args, &tools))
}

/// Starts nginx, runs each tool in turn and prints the table.
async fn compare(args: &Args, tools: &[&str]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nginx = procs::Nginx::start(&dir.path().join("nginx")).await.context("start nginx")?;
    let plan = Plan {
        rate: args.rate,
        urls: args.urls(nginx.port),
        interval_secs: args.interval_secs,
        warmup: Duration::from_secs(args.warmup_secs),
        window: Duration::from_secs(args.seconds),
        probe_concurrency: args.probe_concurrency,
        monit_services: args.monit_services.unwrap_or(args.rate),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "compare: rate={}/s window={}s targets={} interval={}s ({} monitors) on {cores} cores, \
         load average {}",
        args.rate,
        args.seconds,
        args.targets,
        args.interval_secs,
        args.monitors(),
        load_average()
    );
    let mut rounds: Vec<Vec<(&str, Outcome)>> = Vec::new();
    for round in 0..args.rounds {
        let mut order = tools.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut results = Vec::new();
        for tool in order {
            eprintln!("compare: round {} of {}: running {tool} ...", round + 1, args.rounds);
            let tool_dir = dir.path().join(format!("{tool}-{round}"));
            std::fs::create_dir_all(&tool_dir)?;
            let outcome = match tool {
                "cloudroutes" | "bare" => {
                    Ok(tools::role(tool, &plan, &nginx, &args.child_args(nginx.port)).await?)
                }
                "blackbox" => tools::blackbox(&plan, &nginx, &tool_dir).await?,
                _ => tools::monit(&plan, &nginx, &tool_dir).await?,
            };
            if let Err(reason) = &outcome {
                eprintln!("compare: skipping {tool}: {reason}");
            }
            results.push((tool, outcome));
        }
        rounds.push(results);
    }
    let medians: Vec<(&str, Outcome)> =
        tools.iter().map(|&tool| (tool, median_round(&rounds, tool))).collect();
    print_table(&medians, cores);
    if rounds.len() > 1 {
        print_round_ratios(&rounds);
    }
    Ok(())
}

/// The outcome of `tool`'s median round by CPU per check (the first failure when no round
/// measured anything).
fn median_round(rounds: &[Vec<(&str, Outcome)>], tool: &str) -> Outcome {
    let mut outcomes = rounds.iter().flatten().filter(|(t, _)| *t == tool).map(|(_, o)| o);
    let mut measured: Vec<&Measured> = outcomes.clone().filter_map(|o| o.as_ref().ok()).collect();
    if measured.is_empty() {
        return outcomes.next().cloned().unwrap_or_else(|| Err("not run".into()));
    }
    measured.sort_by(|a, b| cpu_us(a).total_cmp(&cpu_us(b)));
    Ok(measured[measured.len() / 2].clone())
}

/// Prints the CloudRoutes / bare client ratio of each round, when both ran.
fn print_round_ratios(rounds: &[Vec<(&str, Outcome)>]) {
    let ratios: Vec<String> = rounds
        .iter()
        .filter_map(|round| Some((cpu_of(round, "cloudroutes")?, cpu_of(round, "bare")?)))
        .map(|(ours, bare)| format!("{:.2}× ({ours:.0}/{bare:.0} µs)", ours / bare))
        .collect();
    if !ratios.is_empty() {
        println!("  CloudRoutes / bare client by round: {}", ratios.join(", "));
    }
}

/// The first three fields of /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn per_check(cpu: Duration, checks: u64) -> f64 {
    cpu.as_secs_f64() * 1e6 / checks.max(1) as f64
}

fn label(tool: &str) -> &'static str {
    match tool {
        "cloudroutes" => "CloudRoutes",
        "bare" => "bare client",
        "blackbox" => "blackbox exp.",
        _ => "Monit",
    }
}

/// Prints the table and the goal ratios.
fn print_table(results: &[(&str, Outcome)], cores: usize) {
    let cpu_of = |tool: &str| cpu_of(results, tool);
    let ours = cpu_of("cloudroutes");
    println!(
        "  {:<14} {:>9} {:>9} {:>10} {:>9} {:>10} {:>10} {:>8}",
        "tool", "checks", "checks/s", "CPU µs/ck", "ratio/CR", "own count", "nginx µs", "machine"
    );
    for (tool, outcome) in results {
        match outcome {
            Ok(m) => {
                let ratio = ours.map_or("-".into(), |o| format!("{:.2}×", cpu_us(m) / o));
                println!(
                    "  {:<14} {:>9} {:>9.0} {:>10.1} {:>9} {:>10} {:>10.1} {:>7.0}%",
                    label(tool),
                    m.checks,
                    m.checks as f64 / m.elapsed.as_secs_f64(),
                    cpu_us(m),
                    ratio,
                    m.own.map_or("-".into(), |n| n.to_string()),
                    per_check(m.nginx_cpu, m.checks),
                    m.machine.as_secs_f64() * 100.0 / m.elapsed.as_secs_f64(),
                );
            }
            Err(reason) => println!("  {:<14} skipped: {reason}", label(tool)),
        }
    }
    println!(
        "  (CPU µs/ck: the tool's process, user+system, per nginx request; own count: the \
         tool's healthy checks; machine: busy CPU of all {cores} cores, 100% = one core)"
    );
    let Some(ours) = ours else {
        println!("  goals: CloudRoutes was not run");
        return;
    };
    let goal = |name: &str, figure: Option<f64>, aim: &str, met: fn(f64) -> bool| match figure {
        Some(x) => {
            let verdict = if met(x) { "met" } else { "NOT met" };
            println!("  {name:<32} {x:>6.2}×  (goal {aim}: {verdict})");
        }
        None => println!("  {name:<32} {:>6}   (not run)", "-"),
    };
    goal("CloudRoutes / bare client", cpu_of("bare").map(|b| ours / b), "≤ 1.5×", |x| x <= 1.5);
    goal("blackbox exporter / CloudRoutes", cpu_of("blackbox").map(|b| b / ours), "≥ 5×", |x| {
        x >= 5.0
    });
    goal("Monit / CloudRoutes", cpu_of("monit").map(|m| m / ours), "> 1×", |x| x > 1.0);
}

/// The CPU per check of `tool` in `results`, when it was measured.
fn cpu_of(results: &[(&str, Outcome)], tool: &str) -> Option<f64> {
    results.iter().find(|(t, _)| *t == tool).and_then(|(_, o)| o.as_ref().ok()).map(cpu_us)
}

fn cpu_us(m: &Measured) -> f64 {
    per_check(m.cpu, m.checks)
}
