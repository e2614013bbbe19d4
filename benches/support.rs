//! Helpers of the scale benchmark: the node's config, store and seeded monitors; process limits
//! and measurements (file descriptors, CPU time, resident memory); the check-target process;
//! the router-delay probe and the `--timeline` diagnostic; percentiles and table rows.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cloudroutes_engine::config::{EMBEDDED_STORE_FILE, NodeConfig};
use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_engine::{Monitor, MonitorId, PluginSpec, Store};
use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The hidden argument that turns the bench binary into the check-target process.
pub const SERVE_TARGET: &str = "--serve-target";

/// The target's whole answer: an empty body, so the node's pooled client keeps the connection.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/// Checks that may run at once on a benchmarked node.
const CHECK_CONCURRENCY: usize = 4_096;

/// Returns a plugin spec from a JSON object (`{}` for anything else).
pub fn spec(value: serde_json::Value) -> PluginSpec {
    match value {
        serde_json::Value::Object(map) => PluginSpec(map),
        _ => PluginSpec(serde_json::Map::new()),
    }
}

/// Returns a node config for a benchmark: defaults, a high check concurrency, a temp data dir,
/// egress allowed to loopback (where the check targets listen; denied by default).
pub fn bench_config(data_dir: &Path) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.engine.check_concurrency = CHECK_CONCURRENCY;
    config.node.data_dir = data_dir.to_owned();
    config.egress.allow = vec!["127.0.0.0/8".into()];
    config
}

/// Opens a fresh embedded store in `data_dir`.
pub fn open_store(config: &NodeConfig) -> Result<Arc<dyn Store>> {
    let path = config.node.data_dir.join(EMBEDDED_STORE_FILE);
    Ok(Arc::new(EmbeddedStore::open(&path, config.engine.history_max_events)?))
}

/// Monitor `i` of a seeded set: with `checks` = `mixed`, even ones `tcp-check` and odd ones
/// `http-get-statuscode`; `tcp` or `http` makes them all one type.
pub fn seeded_monitor(i: usize, interval_secs: u32, checks: &str, target: &Target) -> Monitor {
    let tcp = match checks {
        "tcp" => true,
        "http" => false,
        _ => i.is_multiple_of(2),
    };
    let check = if tcp {
        json!({"type": "tcp-check", "host": "127.0.0.1", "port": target.tcp_port})
    } else {
        json!({"type": "http-get-statuscode", "url": format!("http://127.0.0.1:{}/", target.http_port)})
    };
    let key: [u8; 24] = rand::random();
    Monitor {
        id: MonitorId::generate(),
        name: format!("bench monitor {i}"),
        check: spec(check),
        interval_secs: Some(interval_secs),
        reactions: Vec::new(),
        enabled: true,
        tags: Vec::new(),
        webhook_key: key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Raises the soft limit on open files to the hard limit; returns the new limit.
pub fn raise_nofile_limit() -> Result<u64> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("setrlimit")?;
    Ok(hard)
}

/// CPU time this process has used so far (getrusage RUSAGE_SELF).
#[derive(Debug, Clone, Copy)]
pub struct CpuTime {
    /// User time.
    pub user: Duration,
    /// System time.
    pub sys: Duration,
}

impl CpuTime {
    /// Reads the process's CPU time now.
    pub fn now() -> Result<Self> {
        let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
        let micros = |tv: nix::sys::time::TimeVal| {
            let us = tv.tv_sec() * 1_000_000 + tv.tv_usec();
            Duration::from_micros(u64::try_from(us).unwrap_or(0))
        };
        Ok(Self { user: micros(usage.user_time()), sys: micros(usage.system_time()) })
    }

    /// Returns the CPU time used since `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.sys
    }
}

/// Returns this process's VmRSS, in bytes.
pub fn vm_rss() -> Result<u64> {
    rss_of(std::process::id())
}

/// Returns a process's VmRSS (from /proc/PID/status), in bytes.
pub fn rss_of(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .with_context(|| format!("no VmRSS in {path}"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("parse VmRSS")?;
    Ok(kib * 1024)
}

/// Returns a process's CPU time (user + system) from /proc/PID/stat, at 100 ticks a second.
pub fn process_cpu(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("read stat")?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `)`.
    let ticks: u64 =
        fields.get(11..13).context("short stat")?.iter().flat_map(|f| f.parse::<u64>()).sum();
    Ok(Duration::from_millis(ticks * 10))
}

/// CPU time the whole machine has spent busy (all cores, steal included) and stolen by the
/// hypervisor, from /proc/stat, at 100 ticks a second.
pub fn machine_cpu() -> Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    let line = stat.lines().find(|line| line.starts_with("cpu ")).context("no cpu line")?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).flat_map(str::parse).collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| ticks.get(i)).sum();
    let steal = ticks.get(7).copied().unwrap_or(0);
    Ok((Duration::from_millis(busy * 10), Duration::from_millis(steal * 10)))
}

/// The check-target process: a keep-alive HTTP server and a TCP listener that accepts and
/// closes, both on 127.0.0.1. It is killed by pid when dropped, and exits by itself when its
/// stdin (a pipe from this process) closes.
pub struct Target {
    child: Child,
    /// Port of the HTTP server.
    pub http_port: u16,
    /// Port of the accept-and-close TCP listener.
    pub tcp_port: u16,
}

impl Target {
    /// Re-executes this binary with [`SERVE_TARGET`] and reads the two ports it prints.
    pub fn spawn() -> Result<Self> {
        let exe = std::env::current_exe().context("current_exe")?;
        let mut child = Command::new(exe)
            .arg(SERVE_TARGET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawn the target process")?;
        let stdout = child.stdout.take().context("target stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).context("read the target's ports")?;
        let ports: Vec<u16> = line.split_whitespace().flat_map(str::parse).collect();
        let &[http_port, tcp_port] = ports.as_slice() else {
            let _ = child.kill();
            bail!("the target process printed {line:?}, not two ports");
        };
        Ok(Self { child, http_port, tcp_port })
    }

    /// The target's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the target process (the [`SERVE_TARGET`] mode): prints `HTTP_PORT TCP_PORT` on one
/// line, then serves until killed or until stdin closes.
pub fn serve_target() -> Result<()> {
    raise_nofile_limit()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let http = listen()?;
        let tcp = listen()?;
        println!("{} {}", http.local_addr()?.port(), tcp.local_addr()?.port());
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            std::process::exit(0);
        });
        tokio::spawn(async move {
            loop {
                match tcp.accept().await {
                    Ok((stream, _)) => drop(stream),
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        loop {
            match http.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_http(stream));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
}

fn listen() -> Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    Ok(socket.listen(4096)?)
}

/// Answers every request on a connection with [`RESPONSE`] (requests have no body).
async fn serve_http(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut pending = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            if stream.write_all(RESPONSE).await.is_err() {
                return;
            }
        }
    }
}

/// Returns the `q` quantile (nearest rank) of sorted values.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// Prints one table row: the label padded with dots, then the value.
pub fn row(label: &str, value: impl std::fmt::Display) {
    const WIDTH: usize = 29;
    let dots = ".".repeat(WIDTH.saturating_sub(label.chars().count() + 1).max(2));
    println!("  {label} {dots} {value}");
}

/// Prints one line a second for `window` (the hidden `--timeline` diagnostic): checks run,
/// lateness p99 and max of that second (it resets the recorder every second, and `router`'s
/// delays too), node CPU, the worst router delay, and
/// the worst oversleep of two 1 ms probes, one a tokio task (runtime stalls) and one an OS
/// thread (whole-process stalls: CPU starvation, page faults).
pub async fn timeline(
    metrics: &cloudroutes_actors::metrics::Metrics,
    router: &cloudroutes_actors::metrics::LatenessRecorder,
    window: Duration,
    checks: impl Fn() -> u64,
) -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let stop = Arc::new(AtomicBool::new(false));
    let tokio_worst = Arc::new(AtomicU64::new(0));
    let thread_worst = Arc::new(AtomicU64::new(0));
    let probe = {
        let (stop, worst) = (Arc::clone(&stop), Arc::clone(&tokio_worst));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = std::time::Instant::now();
                tokio::time::sleep(Duration::from_millis(1)).await;
                let over = started.elapsed().saturating_sub(Duration::from_millis(1));
                worst.fetch_max(over.as_micros() as u64, Ordering::Relaxed);
            }
        })
    };
    let thread = {
        let (stop, worst) = (Arc::clone(&stop), Arc::clone(&thread_worst));
        #[allow(clippy::disallowed_methods, reason = "a dedicated OS thread, not the runtime")]
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let started = std::time::Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                let over = started.elapsed().saturating_sub(Duration::from_millis(1));
                worst.fetch_max(over.as_micros() as u64, Ordering::Relaxed);
            }
        })
    };
    let started = std::time::Instant::now();
    let mut last_checks = checks();
    let mut last_cpu = CpuTime::now()?;
    let mut second = 0u64;
    while started.elapsed() < window {
        second += 1;
        tokio::time::sleep_until((started + Duration::from_secs(second)).into()).await;
        let late = metrics.lateness.snapshot();
        metrics.lateness.reset();
        let queued = router.snapshot();
        router.reset();
        let (now_checks, now_cpu) = (checks(), CpuTime::now()?);
        let cpu = now_cpu.since(last_cpu);
        eprintln!(
            "  t={second:>3}s checks={:>6} late p99/max={:>6}/{:>6} ms cpu={:>3.0}%+{:>3.0}% \
             probe tokio/thread={:>6}/{:>6} ms router max={:>6} ms rss={} MiB",
            now_checks - last_checks,
            ms(late.p99),
            ms(late.max),
            cpu.user.as_secs_f64() * 100.0,
            cpu.sys.as_secs_f64() * 100.0,
            ms(Duration::from_micros(tokio_worst.swap(0, Ordering::Relaxed))),
            ms(Duration::from_micros(thread_worst.swap(0, Ordering::Relaxed))),
            ms(queued.max),
            vm_rss()? >> 20,
        );
        (last_checks, last_cpu) = (now_checks, now_cpu);
    }
    stop.store(true, Ordering::Relaxed);
    probe.await?;
    let _ = thread.join();
    Ok(())
}

/// Measures how long a result waits in the reaction routers' queues: every 100 ms it sends a
/// healthy automatic result for one of a few (healthy) monitors through `Node::observe`, which
/// replies only once the router has handled everything queued before it, and records the
/// round trip. It changes nothing but those monitors' streaks.
pub struct RouterProbe {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    /// Round trips recorded so far.
    pub delays: std::sync::Arc<cloudroutes_actors::metrics::LatenessRecorder>,
}

impl RouterProbe {
    /// Starts probing with `ids` in turn.
    pub fn start(node: cloudroutes_actors::Node, ids: Vec<cloudroutes_engine::MonitorId>) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let stop = Arc::new(AtomicBool::new(false));
        let delays = Arc::new(cloudroutes_actors::metrics::LatenessRecorder::new());
        let task = {
            let (stop, delays) = (Arc::clone(&stop), Arc::clone(&delays));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                for id in ids.iter().cycle() {
                    tick.tick().await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let outcome =
                        cloudroutes_engine::CheckOutcome::Healthy { reason: "bench probe".into() };
                    let started = std::time::Instant::now();
                    let _ = node.observe(id, outcome, cloudroutes_engine::Method::Automatic).await;
                    delays.record(started.elapsed());
                }
            })
        };
        Self { stop, task, delays }
    }

    /// Stops probing.
    pub async fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.task.await;
    }
}
