//! The processes of the comparison: finding a Debian program (or naming the package that has
//! it), a child process killed by pid when its guard drops, and the nginx check target with
//! its `stub_status` request counter.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The script that installs every program the benchmarks start.
pub const DEPS_SCRIPT: &str = "scripts/bench-deps.sh";

/// How long a started program may take to answer.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Returns the path of `program`: found on `PATH`, or at one of the `absolute` paths (Debian
/// puts some in `/usr/sbin`, which a non-root `PATH` lacks).
pub fn find_program(program: &str, absolute: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join(program)).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain(absolute.iter().map(PathBuf::from)).find(|p| p.is_file())
}

/// The message for a program that is missing: the Debian package to install and the script.
pub fn missing(program: &str, package: &str) -> String {
    format!(
        "`{program}` not found: install the Debian package `{package}` \
         (`apt-get install {package}`, or run {DEPS_SCRIPT})"
    )
}

/// Returns a port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A child process with its output in a log file; killed by pid (SIGKILL) when dropped.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Spawns `command` with stdin closed and stdout and stderr in `log`.
    pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> Result<Self> {
        let out =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone().context("clone the log file")?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {name}"))?;
        Ok(Self { name: name.to_owned(), child, log })
    }

    /// The process id (0 once it has been reaped).
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Fails, with the end of its log, when the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("try_wait")? {
            bail!("{} exited ({status}); its log ends:\n{}", self.name, self.log_tail(20));
        }
        Ok(())
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// nginx on 127.0.0.1: `/t/<k>` answers 200 with a 3-byte body, `/status` is `stub_status`.
/// One process (`master_process off`, one worker), every path in the run's temp dir.
pub struct Nginx {
    /// The process.
    pub proc: Proc,
    /// Its port.
    pub port: u16,
}

impl Nginx {
    /// Writes the config in `dir`, starts nginx and waits until `/status` answers.
    pub async fn start(dir: &Path) -> Result<Self> {
        let program = find_program("nginx", &["/usr/sbin/nginx"])
            .with_context(|| missing("nginx", "nginx-light"))?;
        let port = free_port()?;
        std::fs::create_dir_all(dir)?;
        let version = std::process::Command::new(&program)
            .arg("-V")
            .output()
            .with_context(|| format!("run {} -V", program.display()))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(dir, port, &String::from_utf8_lossy(&version.stderr)))?;
        let mut command = Command::new(&program);
        command.arg("-p").arg(dir).arg("-c").arg(&conf).arg("-e").arg(dir.join("error.log"));
        let mut nginx = Self { proc: Proc::spawn("nginx", command, dir.join("nginx.out"))?, port };
        let started = Instant::now();
        while nginx.requests().await.is_err() {
            nginx.proc.ensure_running()?;
            ensure!(started.elapsed() < READY_DEADLINE, "nginx did not answer on port {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nginx)
    }

    /// Requests nginx has handled so far (`stub_status`), this one included.
    pub async fn requests(&self) -> Result<u64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream.write_all(b"GET /status HTTP/1.0\r\nHost: bench\r\n\r\n").await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        parse_requests(&answer).with_context(|| format!("unexpected stub_status: {answer:?}"))
    }
}

/// The `requests` figure of a `stub_status` answer: the third number of the line after
/// `server accepts handled requests`.
fn parse_requests(answer: &str) -> Option<u64> {
    let mut lines = answer.lines().skip_while(|l| !l.contains("accepts handled requests"));
    lines.nth(1)?.split_whitespace().nth(2)?.parse().ok()
}

/// The nginx config: every temp path the build knows (`nginx -V`) goes into `dir`.
fn config(dir: &Path, port: u16, version: &str) -> String {
    let dir = dir.display();
    let temp_paths: String = ["client-body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .filter(|name| version.contains(&format!("--http-{name}-temp-path")))
        .filter(|name| !version.contains(&format!("--without-http_{name}_module")))
        .map(|name| format!("    {}_temp_path {dir}/{name};\n", name.replace('-', "_")))
        .collect();
    format!(
        "daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
{temp_paths}    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /t/ {{ default_type text/plain; return 200 \"ok\\n\"; }}
        location = /status {{ stub_status; }}
    }}
}}
"
    )
}
