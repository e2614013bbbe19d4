//! `ping`: sends `count` ICMP echo requests to `host`, one every `interval_ms`; healthy when
//! no more than `max_loss_percent` of them go unanswered and, with `max_rtt_ms`, the average
//! round trip stays within it.
//!
//! The check first opens an unprivileged ICMP socket (`SOCK_DGRAM`: Linux allows it when the
//! process's group lies within `net.ipv4.ping_group_range`, and the kernel then fills in the
//! identifier and checksum), and falls back to a raw ICMP socket (root or `CAP_NET_RAW`). When
//! neither opens, the outcome is unknown and its reason says how to allow one. Replies are
//! matched by sequence number and a token in the payload that is new for every run (on a raw
//! socket, by the identifier too). Replies are awaited until every echo has one or `timeout_ms`
//! after the start, whichever comes first; a host that answers none is failed whatever
//! `max_loss_percent` says. ICMP errors sent back by routers (destination unreachable) are not
//! told apart: their echoes count as lost. A network with no route fails at once.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use schemars::JsonSchema;
use serde::Deserialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::support::{default_timeout_ms, io_error_outcome, validate_timeout_ms};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// Longest accepted host name (RFC 1035's limit for a DNS name).
const MAX_HOST_LEN: usize = 253;
/// Most echo requests one run sends.
const MAX_COUNT: u16 = 20;
/// Accepted `interval_ms` range.
const INTERVAL_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=10_000;
/// Type, code, checksum, identifier, sequence number.
const ECHO_HEADER_LEN: usize = 8;
/// The per-run token every echo request carries as its payload.
const TOKEN_LEN: usize = 16;
/// Largest packet read: the reply to our echo is far smaller, anything longer is not ours.
const RECEIVE_BUFFER_LEN: usize = 1500;

fn default_count() -> u16 {
    3
}

fn default_interval_ms() -> u64 {
    200
}

/// Config of a `ping` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address to ping (e.g. `gw.internal`, `10.0.0.1`, `::1`).
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Echo requests to send, 1 to 20.
    #[serde(default = "default_count")]
    #[schemars(range(min = 1, max = 20))]
    pub count: u16,
    /// Milliseconds between two echo requests, 10 to 10000.
    #[serde(default = "default_interval_ms")]
    #[schemars(range(min = 10, max = 10_000))]
    pub interval_ms: u64,
    /// Largest share of echoes, in percent, that may go unanswered, 0 to 100; the default 0
    /// fails on any lost echo. A host that answers none is failed whatever this says.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub max_loss_percent: u8,
    /// Largest average round trip in milliseconds that is still healthy, 1 to 120000; no limit
    /// when omitted.
    #[serde(default)]
    #[schemars(range(min = 1, max = 120_000))]
    pub max_rtt_ms: Option<u64>,
    /// Milliseconds the whole run may take, 1 to 120000: sending every echo, then waiting for
    /// the replies still missing. Must be longer than `(count - 1) × interval_ms`.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl CheckType for Config {
    const NAME: &'static str = "ping";
    const DESCRIPTION: &'static str =
        "ICMP echo to a host; healthy when enough replies come back, fast enough";

    /// Checks every field, and that the echoes can all be sent within `timeout_ms`.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`host`, `count`, `interval_ms`,
    /// `max_loss_percent`, `max_rtt_ms`, `timeout_ms`).
    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.is_empty() {
            return Err(ConfigError::invalid("host", "must not be empty"));
        }
        if self.host.len() > MAX_HOST_LEN {
            return Err(ConfigError::invalid(
                "host",
                format!("must be at most {MAX_HOST_LEN} bytes"),
            ));
        }
        if self.host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            return Err(ConfigError::invalid("host", "must be a host name or ip address"));
        }
        if !(1..=MAX_COUNT).contains(&self.count) {
            return Err(ConfigError::invalid(
                "count",
                format!("must be between 1 and {MAX_COUNT}"),
            ));
        }
        if !INTERVAL_MS_RANGE.contains(&self.interval_ms) {
            return Err(ConfigError::invalid(
                "interval_ms",
                format!(
                    "must be between {} and {}",
                    INTERVAL_MS_RANGE.start(),
                    INTERVAL_MS_RANGE.end()
                ),
            ));
        }
        if self.max_loss_percent > 100 {
            return Err(ConfigError::invalid("max_loss_percent", "must be between 0 and 100"));
        }
        if self.max_rtt_ms.is_some_and(|ms| !(1..=120_000).contains(&ms)) {
            return Err(ConfigError::invalid("max_rtt_ms", "must be between 1 and 120000"));
        }
        validate_timeout_ms(self.timeout_ms)?;
        let sending_ms = u64::from(self.count - 1) * self.interval_ms;
        if self.timeout_ms <= sending_ms {
            return Err(ConfigError::invalid(
                "timeout_ms",
                format!(
                    "must be longer than the {sending_ms} ms it takes to send {} echoes \
                     every {} ms",
                    self.count, self.interval_ms
                ),
            ));
        }
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        crate::egress::refuse_denied_literal(&context.egress, "host", &self.host, 0)?;
        Ok(Some(Box::new(PingCheck::new(self)?.with_egress(&context.egress))))
    }
}

/// A runnable `ping` check.
#[derive(Debug)]
pub struct PingCheck {
    egress: Arc<Egress>,
    host: String,
    count: u16,
    interval: Duration,
    max_loss_percent: u8,
    max_rtt_ms: Option<u64>,
    timeout: Duration,
    timeout_ms: u64,
}

impl PingCheck {
    /// Returns the check connecting only where `egress` allows (a check built with `new`
    /// has the built-in policy: no private, loopback or metadata addresses).
    #[must_use]
    pub fn with_egress(mut self, egress: &Arc<Egress>) -> Self {
        self.egress = Arc::clone(egress);
        self
    }

    /// Validates `config` and builds the check; resolves nothing yet.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            egress: Arc::new(Egress::default()),
            host: config.host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            count: config.count,
            interval: Duration::from_millis(config.interval_ms),
            max_loss_percent: config.max_loss_percent,
            max_rtt_ms: config.max_rtt_ms,
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Resolves the host (a literal address needs no lookup) to the first address it has.
    async fn resolve(&self, deadline: Instant) -> Result<SocketAddr, CheckOutcome> {
        let host = self.host.as_str();
        // Resolved once on tokio's blocking pool and checked: the echo goes to that address.
        let lookup = crate::egress::allowed_addrs(&self.egress, host, 0);
        let failed = |reason: String| CheckOutcome::Failed { reason };
        match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok(addrs)) => {
                addrs.into_iter().next().ok_or_else(|| failed(format!("{host} has no address")))
            }
            Ok(Err(outcome)) => Err(outcome),
            Err(_) => {
                Err(failed(format!("could not resolve {host} within {} ms", self.timeout_ms)))
            }
        }
    }

    /// Returns how reasons name the target: the address, after the name when there is one.
    fn target(&self, addr: &SocketAddr) -> String {
        let ip = addr.ip().to_string();
        if self.host == ip { ip } else { format!("{} ({ip})", self.host) }
    }

    /// Sends the echoes and collects the replies; returns each echo's round trip, if any.
    async fn exchange(
        &self,
        socket: &UdpSocket,
        echo: &EchoRun,
        deadline: Instant,
    ) -> io::Result<Vec<Option<Duration>>> {
        let count = usize::from(self.count);
        let mut sent_at: Vec<Instant> = Vec::with_capacity(count);
        let mut round_trips: Vec<Option<Duration>> = vec![None; count];
        let mut next_send = Instant::now();
        let mut buffer = [0u8; RECEIVE_BUFFER_LEN];
        loop {
            let all_sent = sent_at.len() == count;
            if all_sent && round_trips.iter().all(Option::is_some) {
                return Ok(round_trips);
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return Ok(round_trips),
                () = tokio::time::sleep_until(next_send), if !all_sent => {
                    let sequence = u16::try_from(sent_at.len()).unwrap_or(u16::MAX);
                    sent_at.push(Instant::now());
                    socket.send(&echo.request(sequence)).await?;
                    next_send += self.interval;
                }
                received = socket.recv(&mut buffer) => {
                    let packet = buffer.get(..received?).unwrap_or_default();
                    let Some(index) = echo.reply_sequence(packet).map(usize::from) else {
                        continue;
                    };
                    if let (Some(slot @ None), Some(sent)) =
                        (round_trips.get_mut(index), sent_at.get(index))
                    {
                        *slot = Some(sent.elapsed());
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Check for PingCheck {
    fn kind(&self) -> &'static str {
        "ping"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        let deadline = Instant::now() + self.timeout;
        let addr = match self.resolve(deadline).await {
            Ok(addr) => addr,
            Err(outcome) => return outcome,
        };
        let target = self.target(&addr);
        let (socket, kind) = match open_echo_socket(addr.ip(), open_icmp_socket) {
            Ok(opened) => opened,
            Err(OpenError::NotPermitted) => {
                let reason = unprivileged_icmp_disabled(effective_gid().await);
                return CheckOutcome::Unknown { reason };
            }
            Err(OpenError::Failed(reason)) => return CheckOutcome::Unknown { reason },
        };
        let socket = match connect_nonblocking(socket, addr) {
            Ok(socket) => socket,
            Err(error) => return io_error_outcome(&error, &target),
        };
        let echo = EchoRun::new(kind, addr.ip());
        match self.exchange(&socket, &echo, deadline).await {
            Ok(round_trips) => {
                summarize(&target, &round_trips, self.max_loss_percent, self.max_rtt_ms)
            }
            Err(error) => io_error_outcome(&error, &target),
        }
    }
}

/// Which ICMP socket a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketKind {
    /// Unprivileged ICMP (`SOCK_DGRAM`): the kernel sets the identifier and checksum.
    Dgram,
    /// Raw ICMP (`SOCK_RAW`): needs root or `CAP_NET_RAW`; IPv4 replies come with their IP header.
    Raw,
}

/// Why no ICMP socket opened.
#[derive(Debug, PartialEq, Eq)]
enum OpenError {
    /// Neither kind is allowed for this process.
    NotPermitted,
    /// Something else went wrong (no IPv6, no file descriptors left, …): the reason.
    Failed(String),
}

/// Opens an ICMP socket of `kind` for the family of `ip`.
fn open_icmp_socket(kind: SocketKind, ip: IpAddr) -> io::Result<Socket> {
    let (domain, protocol) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let socket_type = match kind {
        SocketKind::Dgram => Type::DGRAM,
        SocketKind::Raw => Type::RAW,
    };
    Socket::new(domain, socket_type, Some(protocol))
}

/// Opens an unprivileged ICMP socket, or else a raw one, with `open`.
fn open_echo_socket(
    ip: IpAddr,
    open: impl Fn(SocketKind, IpAddr) -> io::Result<Socket>,
) -> Result<(Socket, SocketKind), OpenError> {
    let dgram_error = match open(SocketKind::Dgram, ip) {
        Ok(socket) => return Ok((socket, SocketKind::Dgram)),
        Err(error) => error,
    };
    let raw_error = match open(SocketKind::Raw, ip) {
        Ok(socket) => return Ok((socket, SocketKind::Raw)),
        Err(error) => error,
    };
    let denied = |error: &io::Error| error.kind() == io::ErrorKind::PermissionDenied;
    if denied(&dgram_error) && denied(&raw_error) {
        return Err(OpenError::NotPermitted);
    }
    Err(OpenError::Failed(format!(
        "could not open an ICMP socket: {raw_error} (unprivileged: {dgram_error})"
    )))
}

/// Returns the reason of a run that may open no ICMP socket, naming the group to allow.
fn unprivileged_icmp_disabled(gid: Option<u32>) -> String {
    let group = gid.map_or_else(|| "this process's group".to_owned(), |gid| format!("gid {gid}"));
    format!(
        "unprivileged ICMP is disabled: set net.ipv4.ping_group_range to include {group}, \
         or give the binary CAP_NET_RAW"
    )
}

/// Returns the process's effective group id (Linux: from `/proc/self/status`).
async fn effective_gid() -> Option<u32> {
    let status = tokio::fs::read_to_string("/proc/self/status").await.ok()?;
    let gids = status.lines().find_map(|line| line.strip_prefix("Gid:"))?;
    // Real, effective, saved, filesystem: the kernel checks the effective one.
    gids.split_whitespace().nth(1)?.parse().ok()
}

/// Connects `socket` to `addr` (so the kernel passes on only that host's packets), makes it
/// non-blocking and registers it with the runtime.
fn connect_nonblocking(socket: Socket, addr: SocketAddr) -> io::Result<UdpSocket> {
    socket.connect(&SockAddr::from(addr))?;
    socket.set_nonblocking(true)?;
    // An ICMP socket reads and writes whole datagrams like a UDP one: tokio's UdpSocket drives
    // it through the reactor, and `send`/`recv` on a connected socket need no address.
    UdpSocket::from_std(std::net::UdpSocket::from(socket))
}

/// Runs started by this process: part of every run's token, so concurrent runs never take
/// each other's replies.
static RUNS: AtomicU32 = AtomicU32::new(0);

/// The echo requests of one run and how their replies are recognised.
#[derive(Debug)]
struct EchoRun {
    kind: SocketKind,
    ipv6: bool,
    identifier: u16,
    token: [u8; TOKEN_LEN],
}

impl EchoRun {
    /// Returns a run with a fresh token: process id, run number and clock.
    fn new(kind: SocketKind, ip: IpAddr) -> Self {
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut token = [0u8; TOKEN_LEN];
        token[..4].copy_from_slice(&pid.to_be_bytes());
        token[4..8].copy_from_slice(&run.to_be_bytes());
        token[8..].copy_from_slice(&(nanos as u64).to_be_bytes());
        // Only raw sockets send this identifier; the kernel picks one for unprivileged sockets.
        let identifier = (pid as u16) ^ (run as u16).rotate_left(8);
        Self { kind, ipv6: ip.is_ipv6(), identifier, token }
    }

    /// Returns the echo request with sequence number `sequence`.
    fn request(&self, sequence: u16) -> Vec<u8> {
        let mut packet = Vec::with_capacity(ECHO_HEADER_LEN + TOKEN_LEN);
        packet.push(if self.ipv6 { 128 } else { 8 });
        packet.extend_from_slice(&[0, 0, 0]); // code, checksum (filled in below)
        packet.extend_from_slice(&self.identifier.to_be_bytes());
        packet.extend_from_slice(&sequence.to_be_bytes());
        packet.extend_from_slice(&self.token);
        // The kernel computes ICMPv6 checksums itself (it covers a pseudo-header of addresses
        // only the kernel knows), and that of unprivileged ICMPv4 sockets too.
        if !self.ipv6 {
            let checksum = internet_checksum(&packet);
            packet[2..4].copy_from_slice(&checksum.to_be_bytes());
        }
        packet
    }

    /// Returns the sequence number of `packet` when it answers one of this run's requests.
    fn reply_sequence(&self, packet: &[u8]) -> Option<u16> {
        let icmp = if self.kind == SocketKind::Raw && !self.ipv6 {
            // Raw IPv4 sockets deliver the IP header; its low nibble is its length in words.
            let header_len = usize::from(packet.first()? & 0x0f) * 4;
            packet.get(header_len..)?
        } else {
            packet
        };
        let reply_type = if self.ipv6 { 129 } else { 0 };
        let [kind, code, _, _, id_high, id_low, seq_high, seq_low, payload @ ..] = icmp else {
            return None;
        };
        let ours = *kind == reply_type
            && *code == 0
            && payload.starts_with(&self.token)
            && (self.kind == SocketKind::Dgram
                || u16::from_be_bytes([*id_high, *id_low]) == self.identifier);
        ours.then(|| u16::from_be_bytes([*seq_high, *seq_low]))
    }
}

/// Returns the RFC 1071 checksum of `data`: the ones' complement of its ones' complement sum.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Returns the outcome of a run from each echo's round trip (`None`: no reply).
fn summarize(
    target: &str,
    round_trips: &[Option<Duration>],
    max_loss_percent: u8,
    max_rtt_ms: Option<u64>,
) -> CheckOutcome {
    let count = round_trips.len();
    let replies: Vec<Duration> = round_trips.iter().flatten().copied().collect();
    let lost = count - replies.len();
    if lost * 100 > usize::from(max_loss_percent) * count {
        let percent = (lost * 100 + count / 2) / count.max(1);
        let reason = format!(
            "{lost} of {count} echoes to {target} lost ({percent}%, threshold {max_loss_percent}%)"
        );
        return CheckOutcome::Failed { reason };
    }
    if replies.is_empty() {
        return CheckOutcome::Failed {
            reason: format!("no reply from {target} to {count} echoes"),
        };
    }
    let total: Duration = replies.iter().sum();
    let average_ms = total.as_secs_f64() * 1000.0 / replies.len() as f64;
    let summary =
        format!("{}/{count} replies from {target}, avg {average_ms:.1} ms", replies.len());
    match max_rtt_ms {
        Some(max) if average_ms > max as f64 => {
            CheckOutcome::Failed { reason: format!("{summary}, above {max} ms") }
        }
        _ => CheckOutcome::Healthy { reason: summary },
    }
}

#[cfg(test)]
#[path = "ping_tests.rs"]
mod tests;
