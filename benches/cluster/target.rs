//! The check target of the cluster benchmark: a separate process (this bench binary run with
//! [`SERVE`]) with one keep-alive HTTP server on 127.0.0.1. `GET /m/{i}` answers an empty 200
//! and records, for monitor `i`, when it was last checked, the longest gap between two of its
//! checks since the last mark, and its first check after the mark. Recording is a handful of
//! relaxed atomic operations on a fixed array: no allocation, no lock.
//!
//! Control paths (times are microseconds on the target's monotonic clock):
//! - `POST /ctl/mark` with a body of monitor indices: forgets the gaps and first checks, and
//!   watches those monitors (counts down as each is checked again); answers the mark's time.
//! - `GET /ctl/status`: `hits unchecked pending done_at mark now` (`unchecked`: monitors never
//!   checked; `pending`: watched monitors not checked since the mark; `done_at`: when the last
//!   of them was).
//! - `GET /ctl/dump`: `now mark`, then one line per monitor: `last max_gap first`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The hidden argument that turns the bench binary into the target process; the monitor count
/// follows it.
pub const SERVE: &str = "--serve-gap-target";

/// One monitor's record; times are µs since the target started, plus one (0: never).
#[derive(Default)]
struct Slot {
    last: AtomicU64,
    max_gap: AtomicU64,
    first: AtomicU64,
    watched: AtomicBool,
}

/// Every monitor's record and the counters.
struct Board {
    started: Instant,
    slots: Box<[Slot]>,
    hits: AtomicU64,
    unchecked: AtomicU64,
    pending: AtomicU64,
    done_at: AtomicU64,
    mark: AtomicU64,
}

impl Board {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX) + 1
    }

    fn hit(&self, index: usize) {
        let Some(slot) = self.slots.get(index) else { return };
        let now = self.now();
        self.hits.fetch_add(1, Relaxed);
        match slot.last.swap(now, Relaxed) {
            0 => {
                self.unchecked.fetch_sub(1, Relaxed);
            }
            previous => {
                slot.max_gap.fetch_max(now.saturating_sub(previous), Relaxed);
            }
        }
        if slot.first.compare_exchange(0, now, Relaxed, Relaxed).is_ok()
            && slot.watched.load(Relaxed)
            && self.pending.fetch_sub(1, Relaxed) == 1
        {
            self.done_at.store(now, Relaxed);
        }
    }

    fn mark(&self, body: &[u8]) -> String {
        for slot in self.slots.iter() {
            slot.max_gap.store(0, Relaxed);
            slot.first.store(0, Relaxed);
            slot.watched.store(false, Relaxed);
        }
        let mut watched = 0;
        for index in String::from_utf8_lossy(body).split_whitespace().flat_map(str::parse::<usize>)
        {
            if let Some(slot) = self.slots.get(index)
                && !slot.watched.swap(true, Relaxed)
            {
                watched += 1;
            }
        }
        self.pending.store(watched, Relaxed);
        self.done_at.store(0, Relaxed);
        let now = self.now();
        self.mark.store(now, Relaxed);
        now.to_string()
    }

    fn status(&self) -> String {
        let [hits, unchecked, pending, done_at, mark] =
            [&self.hits, &self.unchecked, &self.pending, &self.done_at, &self.mark]
                .map(|counter| counter.load(Relaxed));
        format!("{hits} {unchecked} {pending} {done_at} {mark} {}", self.now())
    }

    fn dump(&self) -> String {
        let mut out = String::with_capacity(self.slots.len() * 32);
        out.push_str(&format!("{} {}\n", self.now(), self.mark.load(Relaxed)));
        for slot in self.slots.iter() {
            let [last, gap, first] =
                [&slot.last, &slot.max_gap, &slot.first].map(|v| v.load(Relaxed));
            out.push_str(&format!("{last} {gap} {first}\n"));
        }
        out
    }
}

/// Runs the target process: prints its port, then serves until killed or until stdin (a pipe
/// from the bench) closes.
pub fn serve(monitors: usize) -> Result<()> {
    crate::support::raise_nofile_limit()?;
    let board = Arc::new(Board {
        started: Instant::now(),
        slots: (0..monitors).map(|_| Slot::default()).collect(),
        hits: AtomicU64::new(0),
        unchecked: AtomicU64::new(u64::try_from(monitors)?),
        pending: AtomicU64::new(0),
        done_at: AtomicU64::new(0),
        mark: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(([127, 0, 0, 1], 0).into())?;
        let listener = socket.listen(4096)?;
        println!("{}", listener.local_addr()?.port());
        tokio::spawn(async {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            std::process::exit(0);
        });
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, Arc::clone(&board)));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
}

/// Serves the requests of one keep-alive connection.
async fn connection(mut stream: TcpStream, board: Arc<Board>) {
    let _ = stream.set_nodelay(true);
    let mut pending: Vec<u8> = Vec::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let length = content_length(&head);
            let total = end + 4 + length;
            if pending.len() < total {
                break;
            }
            let body = answer(&board, &head, &pending[end + 4..total]);
            out.extend_from_slice(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
            );
            out.extend_from_slice(body.as_bytes());
            pending.drain(..total);
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// The `Content-Length` of a request head (0 when absent).
fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Handles one request; returns the body of its 200 answer.
fn answer(board: &Board, head: &str, body: &[u8]) -> String {
    let path = head.split(' ').nth(1).unwrap_or("");
    if let Some(index) = path.strip_prefix("/m/") {
        if let Ok(index) = index.parse::<usize>() {
            board.hit(index);
        }
        return String::new();
    }
    match path {
        "/ctl/mark" => board.mark(body),
        "/ctl/status" => board.status(),
        "/ctl/dump" => board.dump(),
        _ => String::new(),
    }
}

/// What `/ctl/status` says.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// Checks received since the target started.
    pub hits: u64,
    /// Monitors never checked.
    pub unchecked: u64,
    /// Watched monitors not checked since the mark.
    pub pending: u64,
    /// When the last watched monitor was checked after the mark (µs; 0: not yet).
    pub done_at: u64,
    /// The mark (µs).
    pub mark: u64,
}

/// One monitor's record from `/ctl/dump`, in µs on the target's clock (0: never).
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Its last check.
    pub last: u64,
    /// The longest gap between two of its checks that ended after the mark.
    pub max_gap: u64,
    /// Its first check after the mark.
    pub first: u64,
}

/// `/ctl/dump`: the target's time, the mark, and every monitor's record.
pub struct Dump {
    /// The target's time when it answered.
    pub now: u64,
    /// The mark.
    pub mark: u64,
    /// One record per monitor, by index.
    pub records: Vec<Record>,
}

/// The target process; killed by pid when dropped, and it exits by itself when its stdin (a
/// pipe from this process) closes.
pub struct Target {
    child: Child,
    /// Its HTTP port.
    pub port: u16,
    client: reqwest::Client,
}

impl Target {
    /// Re-executes this binary with [`SERVE`] and reads the port it prints.
    pub fn spawn(monitors: usize) -> Result<Self> {
        let exe = std::env::current_exe().context("current_exe")?;
        let mut child = Command::new(exe)
            .args([SERVE, &monitors.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawn the target process")?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line).context("read the target's port")?;
        }
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the target process printed {line:?}, not a port");
        };
        Ok(Self { child, port, client: reqwest::Client::new() })
    }

    /// The target's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT/m/{index}`: monitor `index`'s check URL.
    pub fn url(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}/m/{index}", self.port)
    }

    async fn get(&self, path: &str) -> Result<String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        Ok(self.client.get(url).send().await?.error_for_status()?.text().await?)
    }

    /// Forgets gaps and first checks and watches `watched`; returns the mark.
    pub async fn mark(&self, watched: &[usize]) -> Result<u64> {
        let body: String = watched.iter().map(|i| format!("{i} ")).collect();
        let url = format!("http://127.0.0.1:{}/ctl/mark", self.port);
        let reply = self.client.post(url).body(body).send().await?.error_for_status()?;
        reply.text().await?.trim().parse().context("the mark")
    }

    /// `/ctl/status`.
    pub async fn status(&self) -> Result<Status> {
        let text = self.get("/ctl/status").await?;
        let v: Vec<u64> = text.split_whitespace().flat_map(str::parse).collect();
        let &[hits, unchecked, pending, done_at, mark, _now] = v.as_slice() else {
            bail!("bad status {text:?}");
        };
        Ok(Status { hits, unchecked, pending, done_at, mark })
    }

    /// `/ctl/dump`.
    pub async fn dump(&self) -> Result<Dump> {
        let text = self.get("/ctl/dump").await?;
        let mut lines = text.lines();
        let head: Vec<u64> =
            lines.next().unwrap_or("").split_whitespace().flat_map(str::parse).collect();
        let &[now, mark] = head.as_slice() else { bail!("bad dump header") };
        let mut records = Vec::new();
        for line in lines {
            let v: Vec<u64> = line.split_whitespace().flat_map(str::parse).collect();
            let &[last, max_gap, first] = v.as_slice() else { bail!("bad dump line {line:?}") };
            records.push(Record { last, max_gap, first });
        }
        ensure!(!records.is_empty(), "empty dump");
        Ok(Dump { now, mark, records })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
