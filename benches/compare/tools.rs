//! Each compared tool, run against the same nginx at the same paced rate, and the window
//! measurement they share: checks (nginx's request delta), the tool's own count of healthy
//! checks, the tool process's CPU, nginx's CPU and the whole machine's.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tokio::process::Command;

use crate::procs::{Nginx, Proc, find_program, free_port, missing};
use crate::roles::RoleChild;
use crate::support;

/// What one tool did in the window.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Requests nginx handled in the window (the bench's own status request taken out).
    pub checks: u64,
    /// The tool's own count of healthy checks in the window, where it has one.
    pub own: Option<u64>,
    /// Length of the window.
    pub elapsed: Duration,
    /// CPU (user + system) of the tool's process.
    pub cpu: Duration,
    /// CPU of nginx.
    pub nginx_cpu: Duration,
    /// CPU the whole machine spent busy (all cores).
    pub machine: Duration,
}

/// A tool's result: measured, or skipped with the reason (a missing package).
pub type Outcome = std::result::Result<Measured, String>;

/// Where the tool's own count comes from.
pub enum Own<'a> {
    /// It has none (Monit).
    None,
    /// A role child answers on its stdin.
    Child(&'a mut RoleChild),
    /// The bench's own driver counts (blackbox exporter's `probe_success 1`).
    Driver(&'a AtomicU64),
}

impl Own<'_> {
    async fn read(&mut self) -> Result<Option<u64>> {
        Ok(match self {
            Self::None => None,
            Self::Child(child) => Some(child.count().await?),
            Self::Driver(count) => Some(count.load(Ordering::Relaxed)),
        })
    }
}

/// Samples at a window's edge.
struct Sample {
    requests: u64,
    own: Option<u64>,
    cpu: Duration,
    nginx_cpu: Duration,
    machine: Duration,
    at: Instant,
}

async fn sample(nginx: &Nginx, pid: u32, own: &mut Own<'_>) -> Result<Sample> {
    let requests = nginx.requests().await?;
    Ok(Sample {
        requests,
        own: own.read().await?,
        cpu: support::process_cpu(pid)?,
        nginx_cpu: support::process_cpu(nginx.proc.pid())?,
        machine: support::machine_cpu()?.0,
        at: Instant::now(),
    })
}

/// Measures tool process `pid` for `window`.
pub async fn measure(
    nginx: &Nginx,
    pid: u32,
    window: Duration,
    mut own: Own<'_>,
) -> Result<Measured> {
    let before = sample(nginx, pid, &mut own).await?;
    tokio::time::sleep(window).await;
    let after = sample(nginx, pid, &mut own).await?;
    Ok(Measured {
        // The second status request counts itself.
        checks: after.requests.saturating_sub(before.requests + 1),
        own: after.own.zip(before.own).map(|(a, b)| a.saturating_sub(b)),
        elapsed: after.at - before.at,
        cpu: after.cpu.saturating_sub(before.cpu),
        nginx_cpu: after.nginx_cpu.saturating_sub(before.nginx_cpu),
        machine: after.machine.saturating_sub(before.machine),
    })
}

/// The paced load every tool gets.
pub struct Plan {
    /// Checks per second.
    pub rate: u32,
    /// Target URLs (`/t/0` ...).
    pub urls: Vec<String>,
    /// Seconds between checks of one monitor (CloudRoutes and the bare client).
    pub interval_secs: u32,
    /// Warm-up before the window of blackbox exporter and Monit.
    pub warmup: Duration,
    /// The measurement window.
    pub window: Duration,
    /// Probes the blackbox driver keeps in flight at most.
    pub probe_concurrency: usize,
    /// Monit's `check host` services.
    pub monit_services: u32,
}

/// CloudRoutes or the bare client, as a role child: `rate × interval` monitors, one interval
/// of warm-up (each monitor has started its cycle), then the window.
pub async fn role(role: &str, plan: &Plan, nginx: &Nginx, args: &[String]) -> Result<Measured> {
    let mut child = RoleChild::start(role, args).await?;
    tokio::time::sleep(Duration::from_secs(u64::from(plan.interval_secs))).await;
    let pid = child.pid();
    measure(nginx, pid, plan.window, Own::Child(&mut child)).await
}

/// Prometheus blackbox exporter, `http_2xx` module, driven by this process at the rate.
pub async fn blackbox(plan: &Plan, nginx: &Nginx, dir: &Path) -> Result<Outcome> {
    let Some(program) = find_program("prometheus-blackbox-exporter", &[]) else {
        return Ok(Err(missing("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")));
    };
    let config = dir.join("blackbox.yml");
    std::fs::write(
        &config,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 10s\n    http:\n      \
         preferred_ip_protocol: ip4\n",
    )?;
    let port = free_port()?;
    let mut command = Command::new(program);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut exporter = Proc::spawn("blackbox exporter", command, dir.join("blackbox.log"))?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("http://127.0.0.1:{port}/-/healthy")).send().await.is_err() {
        exporter.ensure_running()?;
        ensure!(started.elapsed() < Duration::from_secs(30), "blackbox exporter did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let probes: Vec<String> = plan
        .urls
        .iter()
        .map(|url| {
            let target = url.replace(':', "%3A").replace('/', "%2F");
            format!("http://127.0.0.1:{port}/probe?module=http_2xx&target={target}")
        })
        .collect();
    let (stop, success) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let driver = tokio::spawn(drive(
        client,
        probes,
        plan.rate,
        plan.probe_concurrency,
        Arc::clone(&stop),
        Arc::clone(&success),
    ));
    tokio::time::sleep(plan.warmup).await;
    let measured = measure(nginx, exporter.pid(), plan.window, Own::Driver(&success)).await;
    stop.store(true, Ordering::Relaxed);
    driver.await.context("the probe driver")?;
    exporter.ensure_running()?;
    measured.map(Ok)
}

/// Issues the probe URLs in turn at `rate` a second (a 1 ms tick catching up with the
/// schedule), at most `concurrency` at once; counts answers saying `probe_success 1`.
async fn drive(
    client: reqwest::Client,
    probes: Vec<String>,
    rate: u32,
    concurrency: usize,
    stop: Arc<AtomicBool>,
    success: Arc<AtomicU64>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut issued = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as u64;
        while issued < due && !stop.load(Ordering::Relaxed) {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
            let probe = probes[issued as usize % probes.len()].clone();
            let (client, success) = (client.clone(), Arc::clone(&success));
            tokio::spawn(async move {
                if let Ok(response) = client.get(&probe).send().await
                    && let Ok(body) = response.text().await
                    && body.lines().any(|line| line == "probe_success 1")
                {
                    success.fetch_add(1, Ordering::Relaxed);
                }
                drop(permit);
            });
            issued += 1;
        }
    }
}

/// Monit in the foreground: `set daemon 1`, `monit_services` `check host` services spread
/// over the target URLs, each `if failed port P protocol http request "/t/K"`. Monit checks
/// one service after another, so the rate is what it achieves.
pub async fn monit(plan: &Plan, nginx: &Nginx, dir: &Path) -> Result<Outcome> {
    let Some(program) = find_program("monit", &["/usr/bin/monit"]) else {
        return Ok(Err(missing("monit", "monit")));
    };
    let d = dir.display();
    let mut rc = format!(
        "set daemon 1\nset logfile {d}/monit.log\nset idfile {d}/monit.id\n\
         set statefile {d}/monit.state\nset pidfile {d}/monit.pid\n"
    );
    for i in 0..plan.monit_services {
        let path = format!("/t/{}", i as usize % plan.urls.len());
        rc.push_str(&format!(
            "check host t{i} with address 127.0.0.1\n    if failed port {} protocol http \
             request \"{path}\" then alert\n",
            nginx.port
        ));
    }
    let file = dir.join("monitrc");
    std::fs::write(&file, rc)?;
    // Monit refuses a control file others can read.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    let mut command = Command::new(program);
    command.arg("-I").arg("-c").arg(&file);
    let mut monit = Proc::spawn("monit", command, dir.join("monit.out"))?;
    tokio::time::sleep(plan.warmup).await;
    monit.ensure_running()?;
    let measured = measure(nginx, monit.pid(), plan.window, Own::None).await?;
    monit.ensure_running()?;
    Ok(Ok(measured))
}
