//! A real `redis-server` process for end-to-end tests: its own port on 127.0.0.1 and its own
//! temp dir, append-only file fsynced on every write (nothing acknowledged is lost across a
//! kill and restart), no RDB snapshots.
//!
//! Starting and stopping are async (they poll with `tokio::time::sleep`); [`RedisServer::command`]
//! is a blocking round trip on loopback, usable from any test.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// How long the server may take to answer PING after a start (replaying the append-only file
/// included) or to exit after a signal.
const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

/// How long a restart keeps retrying while its port is still taken (a socket of the previous
/// run, or another process). A first start takes another free port instead.
const BIND_RETRY: Duration = Duration::from_secs(10);

/// Read and write timeout of one [`RedisServer::command`].
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// One `redis-server` process and its data directory. Killed (by pid) when dropped; its log is
/// printed when the test is failing.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    runs: usize,
}

impl RedisServer {
    /// Starts a server on a free port and a fresh temp dir, and waits until it answers PING.
    /// Panics, naming the Debian package `redis-server`, when the binary is not installed.
    pub async fn start() -> RedisServer {
        let dir = tempfile::Builder::new().prefix("cloudroutes-redis-").tempdir().expect("tempdir");
        let mut server = RedisServer { port: free_port(), dir, child: None, runs: 0 };
        // A port free a moment ago may be taken by now: try another one at once.
        for _ in 0..3 {
            if server.launch(Duration::ZERO).await {
                return server;
            }
            server.port = free_port();
        }
        server.panic_with_logs("redis-server could not bind a free port in 3 tries")
    }

    /// The port it listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The data directory (the append-only files live in `appendonlydir/` under it).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    /// Whether the process is still alive (it may not answer yet, or any more).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Sends SIGKILL and waits for the process to be gone: whatever was acknowledged is in the
    /// append-only file, nothing else is flushed.
    pub async fn kill(&mut self) {
        self.signal("KILL");
        self.wait_exit().await;
    }

    /// Sends SIGTERM and waits for the process to exit (redis fsyncs the append-only file and
    /// exits 0).
    pub async fn stop(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit().await;
        if !status.success() {
            self.panic_with_logs(&format!("redis-server did not exit 0 after SIGTERM: {status}"));
        }
    }

    /// Starts the server again on the same port and dir, so it replays its append-only file;
    /// stops it first (SIGTERM) when it is running. Retries while the port is still taken.
    pub async fn restart(&mut self) {
        if self.is_running() {
            self.stop().await;
        }
        if !self.launch(BIND_RETRY).await {
            self.panic_with_logs(&format!("port {} still taken after {BIND_RETRY:?}", self.port));
        }
    }

    /// Sends one command (RESP array of bulk strings) and returns the reply as the server sent
    /// it, e.g. `+OK\r\n`, `$3\r\nbar\r\n`, `:2\r\n` or `$-1\r\n`. Panics when the server cannot
    /// be reached or the reply is cut short.
    pub fn command(&self, args: &[&str]) -> String {
        match self.try_command(args) {
            Ok(reply) => reply,
            Err(error) => self
                .panic_with_logs(&format!("redis {args:?} on port {} failed: {error}", self.port)),
        }
    }

    /// Whether the server answers `PING` with `+PONG` right now.
    pub fn answers_ping(&self) -> bool {
        self.try_inline_ping().unwrap_or(false)
    }

    /// Every run's log, for failure reports.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for run in 1..=self.runs {
            let text = std::fs::read_to_string(self.log_path(run)).unwrap_or_default();
            out.push_str(&format!("----- redis-server run {run} -----\n{text}\n"));
        }
        out
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("redis-run{run}.log"))
    }

    fn panic_with_logs(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.logs())
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        self.runs += 1;
        let log = File::create(self.log_path(self.runs)).expect("redis log");
        let log_err = log.try_clone().expect("redis log");
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn();
        match spawned {
            Ok(child) => self.child = Some(child),
            Err(error) if error.kind() == ErrorKind::NotFound => panic!(
                "`redis-server` is not installed (not on PATH): install the Debian package \
                 `redis-server` (apt-get install redis-server), or run ./scripts/test.sh, which \
                 installs it"
            ),
            Err(error) => panic!("could not start redis-server: {error}"),
        }
    }

    /// Spawns the server and waits until it answers PING. Returns false when it exited because
    /// the port stayed taken for `bind_retry`; panics (with the log) on any other failure.
    async fn launch(&mut self, bind_retry: Duration) -> bool {
        let bind_deadline = Instant::now() + bind_retry;
        loop {
            self.spawn();
            match self.wait_ready().await {
                Ok(()) => return true,
                Err(status) if self.last_run_could_not_bind() => {
                    if Instant::now() >= bind_deadline {
                        return false;
                    }
                    eprintln!("redis-server port {} taken ({status}), retrying", self.port);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(status) => {
                    self.panic_with_logs(&format!("redis-server exited during startup: {status}"))
                }
            }
        }
    }

    /// Waits until the server answers PING; returns the exit status if it exits first.
    async fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("wait for redis-server") {
                self.child = None;
                return Err(status);
            }
            if self.answers_ping() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.panic_with_logs("redis-server did not answer PING in time");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn last_run_could_not_bind(&self) -> bool {
        let log = std::fs::read_to_string(self.log_path(self.runs)).unwrap_or_default();
        log.contains("Address already in use") || log.contains("Could not create server TCP")
    }

    fn signal(&self, signal: &str) {
        super::send_signal(self.pid(), signal);
    }

    async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let child = self.child.as_mut().expect("redis-server is running");
            if let Some(status) = child.try_wait().expect("wait for redis-server") {
                self.child = None;
                return status;
            }
            if Instant::now() >= deadline {
                self.panic_with_logs("redis-server did not exit in time");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1))?;
        stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        stream.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        Ok(stream)
    }

    /// `PING\r\n` as an inline command; true on `+PONG`, false on another reply (`-LOADING`
    /// while the append-only file is replayed).
    fn try_inline_ping(&self) -> std::io::Result<bool> {
        let mut stream = self.connect()?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply)?;
        Ok(reply.starts_with("+PONG"))
    }

    fn try_command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        let mut stream = self.connect()?;
        stream.write_all(&request)?;
        let mut reader = BufReader::new(stream);
        let mut reply = Vec::new();
        read_reply(&mut reader, &mut reply)?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }
}

/// Reads one complete RESP2/RESP3 reply into `out`, byte for byte.
fn read_reply(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let start = out.len();
    if reader.read_until(b'\n', out)? == 0 {
        return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "connection closed"));
    }
    let line = String::from_utf8_lossy(&out[start..]).trim_end().to_owned();
    let (kind, rest) = line.split_at(1.min(line.len()));
    let number = || {
        rest.parse::<i64>().map_err(|_| {
            std::io::Error::new(ErrorKind::InvalidData, format!("bad reply line {line:?}"))
        })
    };
    match kind {
        // Bulk string, verbatim string, bulk error: length, then that many bytes and CRLF.
        "$" | "=" | "!" => {
            let len = number()?;
            if len >= 0 {
                let mut body = vec![0; usize::try_from(len).expect("length") + 2];
                reader.read_exact(&mut body)?;
                out.extend_from_slice(&body);
            }
        }
        // Array, set, push: that many replies; map: twice as many.
        "*" | "~" | ">" | "%" => {
            let count = number()?;
            let count = if kind == "%" { count * 2 } else { count };
            for _ in 0..count.max(0) {
                read_reply(reader, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // By pid, like every other signal here; never by name.
            let killed = Command::new("kill")
                .arg("-KILL")
                .arg(child.id().to_string())
                .status()
                .is_ok_and(|status| status.success());
            if !killed {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("redis-server logs (dir {}):\n{}", self.dir.path().display(), self.logs());
        }
    }
}
