//! The child roles this bench re-executes itself into, so each one's CPU is a process's own:
//! `cloudroutes` (a real node on an embedded store, its monitors seeded) and `bare` (tokio +
//! one keep-alive `reqwest::Client`, nothing else). Both print `ready` once every monitor
//! runs, then answer each line on stdin with their count of healthy checks, and exit when
//! stdin closes.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cloudroutes_actors::Node;
use cloudroutes_actors::metrics::TypeOutcome;
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::{Monitor, MonitorId};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::support;

/// Monitors per `put_monitors` transaction when seeding.
const SEED_CHUNK: usize = 10_000;
/// How long a role may take to seed and start its monitors.
const START_DEADLINE: Duration = Duration::from_secs(600);
/// The bare client's request timeout: the check's default `timeout_ms`, so both arm a timer.
const BARE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a role child checks: `monitors` paced checks every `interval`, spread over `urls`.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Target URLs; monitor `i` checks `urls[i % len]`.
    pub urls: Vec<String>,
    /// Monitors (checks per interval).
    pub monitors: usize,
    /// Seconds between two checks of one monitor.
    pub interval_secs: u32,
    /// CloudRoutes' `engine.state_flush_ms`, when not the default.
    pub state_flush_ms: Option<u64>,
}

/// Runs role `role` in this process until stdin closes.
pub async fn run(role: &str, work: Workload) -> Result<()> {
    ensure!(!work.urls.is_empty(), "no target URLs");
    match role {
        "cloudroutes" => cloudroutes(work).await,
        "bare" => bare(work).await,
        other => bail!("unknown role {other:?}: cloudroutes or bare"),
    }
}

/// A real node: embedded store in a temp dir, default config but egress to 127.0.0.0/8,
/// `http-get-statuscode` monitors seeded into the store before it starts (it gives each a
/// random phase).
async fn cloudroutes(work: Workload) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = NodeConfig::default();
    config.node.data_dir = dir.path().to_owned();
    config.egress.allow = vec!["127.0.0.0/8".into()];
    if let Some(ms) = work.state_flush_ms {
        config.engine.state_flush_ms = ms;
    }
    let store = support::open_store(&config)?;
    for first in (0..work.monitors).step_by(SEED_CHUNK) {
        let chunk: Vec<Monitor> = (first..work.monitors.min(first + SEED_CHUNK))
            .map(|i| monitor(i, &work.urls[i % work.urls.len()], work.interval_secs))
            .collect();
        store.put_monitors(&chunk).await.context("seed monitors")?;
    }
    let node = Node::start(config, "compare".into(), store).await?;
    let metrics = node.metrics();
    let started = Instant::now();
    while metrics.monitors_owned.get() < i64::try_from(work.monitors)? {
        ensure!(started.elapsed() < START_DEADLINE, "the monitors did not all start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let healthy = TypeOutcome { r#type: "http-get-statuscode", outcome: "healthy" };
    serve_counts(|| metrics.checks.get_or_create(&healthy).get()).await?;
    node.shutdown().await;
    Ok(())
}

/// Monitor `i`: `http-get-statuscode` of `url` (default codes and timeout).
fn monitor(i: usize, url: &str, interval_secs: u32) -> Monitor {
    let key: [u8; 24] = rand::random();
    Monitor {
        id: MonitorId::generate(),
        name: format!("compare monitor {i}"),
        check: support::spec(json!({"type": "http-get-statuscode", "url": url})),
        interval_secs: Some(interval_secs),
        reactions: Vec::new(),
        enabled: true,
        tags: Vec::new(),
        webhook_key: key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The bare client: one task per monitor, a random first phase, then every interval a GET with
/// the shared keep-alive client, the body read, the status compared with 200.
async fn bare(work: Workload) -> Result<()> {
    let client = reqwest::Client::builder().build().context("build the client")?;
    let healthy = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs(u64::from(work.interval_secs));
    let interval_ms = u64::from(work.interval_secs) * 1_000;
    for i in 0..work.monitors {
        let (client, healthy) = (client.clone(), Arc::clone(&healthy));
        let url = work.urls[i % work.urls.len()].clone();
        let phase = Duration::from_millis(rand::random_range(0..interval_ms.max(1)));
        tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + phase;
            loop {
                tokio::time::sleep_until(next).await;
                next += interval;
                let Ok(response) = client.get(&url).timeout(BARE_TIMEOUT).send().await else {
                    continue;
                };
                let ok = response.status() == reqwest::StatusCode::OK;
                if response.bytes().await.is_ok() && ok {
                    healthy.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    serve_counts(|| healthy.load(Ordering::Relaxed)).await
}

/// Prints `ready`, then answers each line on stdin with `count()`, until stdin closes.
async fn serve_counts(count: impl Fn() -> u64) -> Result<()> {
    let say = |line: String| -> Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        Ok(out.flush()?)
    };
    say("ready".into())?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while lines.next_line().await?.is_some() {
        say(count().to_string())?;
    }
    Ok(())
}

/// A role child seen from the parent: killed by pid when dropped.
pub struct RoleChild {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl RoleChild {
    /// Re-executes this bench as `--role ROLE` with `args`, and waits for its `ready`.
    pub async fn start(role: &str, args: &[String]) -> Result<Self> {
        let exe = std::env::current_exe().context("current_exe")?;
        let mut child = Command::new(exe)
            .args(["--role", role])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn the {role} child"))?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?).lines();
        let mut this = Self { child, stdin, stdout };
        let line = tokio::time::timeout(START_DEADLINE, this.stdout.next_line()).await;
        match line.context("the child did not get ready in time")? {
            Ok(Some(line)) if line == "ready" => Ok(this),
            other => bail!("the {role} child did not get ready: {other:?}"),
        }
    }

    /// The process id (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Asks the child for its count of healthy checks.
    pub async fn count(&mut self) -> Result<u64> {
        self.stdin.write_all(b"count\n").await.context("ask the child")?;
        self.stdin.flush().await?;
        let line = self.stdout.next_line().await?.context("the child exited")?;
        line.trim().parse().with_context(|| format!("the child answered {line:?}"))
    }
}
