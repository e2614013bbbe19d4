//! The processes of the cluster benchmark: the node binary (built if needed, then linked into
//! the run's temp dir so a rebuild in the shared target dir cannot swap it mid-run), a
//! `redis-server` with its append-only file fsynced on every write, and the `cloudroutes node`
//! processes. Every process is signalled by pid through kill(1) (the workspace forbids
//! `unsafe`) and killed by pid when its guard is dropped, also on error paths.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// How long a process may take to become ready, or to exit after a signal.
const PROCESS_DEADLINE: Duration = Duration::from_secs(120);

/// Returns the `cloudroutes` binary to run: `cargo build --release --bin cloudroutes` first
/// (a no-op when it is fresh) unless `no_build`, then a hard link (or copy) of
/// `<target>/release/cloudroutes` in `dir`. `<target>` is the one this bench was built in.
pub fn node_binary(no_build: bool, dir: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("current_exe")?;
    // <target>/release/deps/cluster-HASH
    let release = exe.parent().and_then(Path::parent).context("bench binary location")?;
    let built = release.join("cloudroutes");
    if !no_build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("building the node binary: cargo build --release --bin cloudroutes");
        let status = Command::new(cargo)
            .args(["build", "--release", "--bin", "cloudroutes"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .context("run cargo build")?;
        ensure!(status.success(), "cargo build --release --bin cloudroutes failed: {status}");
    }
    ensure!(
        built.exists(),
        "{} is missing: run `cargo build --release --bin cloudroutes`",
        built.display()
    );
    let link = dir.join("cloudroutes");
    if std::fs::hard_link(&built, &link).is_err() {
        std::fs::copy(&built, &link).context("copy the node binary")?;
    }
    Ok(link)
}

/// Returns a port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A child process, signalled by pid and killed by pid when dropped.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> Result<Self> {
        let out = File::options().create(true).append(true).open(&log).context("open log")?;
        let err = out.try_clone().context("clone log")?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawn {name}"))?;
        Ok(Self { name: name.to_owned(), child: Some(child), log })
    }

    /// The process id (0 once it has exited).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `signal` (`KILL`, `TERM`) to the process by pid through kill(1).
    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.pid();
        ensure!(pid != 0, "{} is not running", self.name);
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .context("run kill(1)")?;
        ensure!(status.success(), "kill -{signal} {pid} ({}) failed: {status}", self.name);
        Ok(())
    }

    /// Returns the exit status once the process has exited, without waiting.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else { bail!("{} was already reaped", self.name) };
        let status = child.try_wait().context("try_wait")?;
        if status.is_some() {
            self.child = None;
        }
        Ok(status)
    }

    /// Waits (polling) until the process exits.
    pub async fn wait_exit(&mut self) -> Result<ExitStatus> {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = self.try_exit()? {
                return Ok(status);
            }
            ensure!(Instant::now() < deadline, "{} did not exit in time", self.name);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let killed = Command::new("kill")
                .arg("-KILL")
                .arg(child.id().to_string())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !killed {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// A `redis-server` on 127.0.0.1 with its own dir: append-only, `appendfsync always` (the
/// documented setting for coordination keys), no RDB snapshots.
pub struct RedisServer {
    /// The process.
    pub proc: Proc,
    /// Its port.
    pub port: u16,
}

impl RedisServer {
    /// Starts it in `dir` and waits until it answers PING.
    pub async fn start(dir: &Path) -> Result<Self> {
        let port = free_port()?;
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .current_dir(dir);
        let mut proc = Proc::spawn("redis-server", command, dir.join("redis.log"))?;
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = proc.try_exit()? {
                bail!("redis-server exited at start ({status}):\n{}", proc.log_tail(20));
            }
            if inline_command(port, "PING").await.is_ok_and(|r| r.starts_with("+PONG")) {
                return Ok(Self { proc, port });
            }
            ensure!(Instant::now() < deadline, "redis-server did not answer PING");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sends one inline command (see [`inline_command`]).
    pub async fn command(&self, inline: &str) -> Result<String> {
        inline_command(self.port, inline).await
    }

    /// `INFO SECTION` as `field → value` pairs.
    pub async fn info(&self, section: &str) -> Result<Vec<(String, String)>> {
        let text = self.command(&format!("INFO {section}")).await?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect())
    }
}

/// Sends one inline command to the Redis on 127.0.0.1:`port` and returns the reply: a status
/// line as is, a bulk string's contents (`INFO`).
async fn inline_command(port: u16, inline: &str) -> Result<String> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(format!("{inline}\r\n").as_bytes()).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let Some(len) = line.strip_prefix('$') else { return Ok(line) };
    let len: usize = len.trim().parse().context("bulk length")?;
    let mut body = vec![0; len + 2];
    stream.read_exact(&mut body).await?;
    body.truncate(len);
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// What every node of the benchmark cluster shares.
pub struct ClusterEnv {
    /// The node binary.
    pub binary: PathBuf,
    /// `CLOUDROUTES_STORE`.
    pub store_url: String,
    /// `CLOUDROUTES_ADMIN_TOKEN`.
    pub token: String,
    /// Extra environment (lease timings when overridden).
    pub extra: Vec<(String, String)>,
    /// Where data dirs and logs go.
    pub dir: PathBuf,
}

/// How many times a node is started again on fresh ports when one it was given is taken.
const PORT_RETRIES: u32 = 3;

/// One `cloudroutes node` process of the cluster; it keeps its id, ports and data dir across
/// restarts (its ports change only when another process took one meanwhile).
pub struct NodeProc {
    /// `node-N`.
    pub id: String,
    /// Its HTTP port.
    pub http_port: u16,
    cluster_port: u16,
    /// The running process, if any.
    pub proc: Option<Proc>,
}

impl NodeProc {
    /// Picks ports for node `id`; nothing runs yet.
    pub fn new(id: &str) -> Result<Self> {
        Ok(Self {
            id: id.to_owned(),
            http_port: free_port()?,
            cluster_port: free_port()?,
            proc: None,
        })
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// The running process's pid (0 when none runs).
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().map_or(0, Proc::pid)
    }

    /// Spawns the node process (no wait).
    pub fn spawn(&mut self, env: &ClusterEnv) -> Result<()> {
        ensure!(self.proc.is_none(), "{} is already running", self.id);
        let data = env.dir.join(&self.id);
        std::fs::create_dir_all(&data)?;
        let mut command = Command::new(&env.binary);
        command.arg("node").current_dir(&data);
        for (key, _) in std::env::vars_os() {
            let upper = key.to_string_lossy().to_ascii_uppercase();
            if upper.starts_with("CLOUDROUTES_") || upper.ends_with("_PROXY") {
                command.env_remove(&key);
            }
        }
        command
            .env("CLOUDROUTES_LOG", "info,warp=warn")
            .env("NO_COLOR", "1")
            .env("CLOUDROUTES_STORE", &env.store_url)
            .env("CLOUDROUTES_NODE_ID", &self.id)
            .env("CLOUDROUTES_CLUSTER_ADDR", format!("127.0.0.1:{}", self.cluster_port))
            .env("CLOUDROUTES_COOKIE", "cluster-bench-cookie-0123456789")
            // Every node of a cluster seals and opens secrets with the same key.
            .env("CLOUDROUTES_SECRETS_KEY", "Y2x1c3Rlci1iZW5jaC1zZWNyZXRzLWtleS0wMTIzNDU=")
            .env("CLOUDROUTES_ADMIN_TOKEN", &env.token)
            .env("CLOUDROUTES_HTTP_ADDR", format!("127.0.0.1:{}", self.http_port))
            .env("CLOUDROUTES_DATA_DIR", &data)
            .env("CLOUDROUTES_ENGINE_CHECK_CONCURRENCY", "4096")
            // The check target listens on loopback, which egress denies by default.
            .env("CLOUDROUTES_EGRESS_ALLOW", "127.0.0.0/8")
            .envs(env.extra.iter().map(|(k, v)| (k, v)));
        // Kept across restarts: `Bench::lapses` reads every run's lines.
        let log = env.dir.join(format!("{}.log", self.id));
        self.proc = Some(Proc::spawn(&self.id, command, log)?);
        Ok(())
    }

    /// Waits until `GET /readyz` answers 200 (the node has taken its first share). A node
    /// that could not bind its ports (another process took one since they were picked) is
    /// started again on fresh ones, up to [`PORT_RETRIES`] times.
    pub async fn wait_ready(&mut self, env: &ClusterEnv, client: &reqwest::Client) -> Result<()> {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let mut retries = PORT_RETRIES;
        loop {
            let proc = self.proc.as_mut().context("node not running")?;
            if let Some(status) = proc.try_exit()? {
                let tail = proc.log_tail(30);
                self.proc = None;
                if retries > 0 && tail.contains("already in use") {
                    retries -= 1;
                    eprintln!(
                        "  {}: a port was taken meanwhile; starting it on fresh ones",
                        self.id
                    );
                    (self.http_port, self.cluster_port) = (free_port()?, free_port()?);
                    self.spawn(env)?;
                    continue;
                }
                bail!("{} exited during startup ({status}):\n{tail}", self.id);
            }
            let ready = client.get(self.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "{} did not become ready in time", self.id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
