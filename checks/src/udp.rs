//! `udp`: sends one datagram to `host:port`; healthy when a reply arrives within `timeout_ms`
//! (and contains `expect`, when given).
//!
//! The payload is text (`send`) or hex (`send_hex`), exactly one of them; the expectation
//! likewise (`expect` or `expect_hex`, at most one). The socket is connected to the target, so
//! on Linux an ICMP port unreachable surfaces as a refused receive: `port unreachable`. Only the
//! first reply is judged. Name resolution counts against the timeout.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::UdpSocket;

use crate::support::{
    contains_bytes, default_timeout_ms, io_error_outcome, quote_received, socket_target,
    unbracketed_host, validate_host, validate_timeout_ms,
};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// The largest UDP payload over IPv4 (65535 − 8 byte UDP header − 20 byte IP header).
pub const MAX_DATAGRAM_BYTES: usize = 65_507;

/// How many bytes of a binary reply a reason shows in hex.
const QUOTED_HEX_BYTES: usize = 32;

/// Config of a `udp` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address to send to (e.g. `ntp.internal`, `10.0.0.5`, `::1`).
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// UDP port, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Payload as text (e.g. `"PING\n"`); give this or `send_hex`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 65507))]
    pub send: Option<String>,
    /// Payload as hex digits (e.g. `"1b0000000000"`, spaces allowed); give this or `send`.
    #[serde(default)]
    #[schemars(length(min = 2))]
    pub send_hex: Option<String>,
    /// Text the reply must contain (case-sensitive); any reply is healthy when neither this nor
    /// `expect_hex` is given.
    #[serde(default)]
    #[schemars(length(min = 1, max = 65507))]
    pub expect: Option<String>,
    /// Bytes the reply must contain, as hex digits (spaces allowed); instead of `expect`.
    #[serde(default)]
    #[schemars(length(min = 2))]
    pub expect_hex: Option<String>,
    /// Milliseconds to wait for the reply, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

/// A payload or expectation in bytes, and whether it was given as hex (reasons then show hex).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bytes {
    bytes: Vec<u8>,
    hex: bool,
}

impl CheckType for Config {
    const NAME: &'static str = "udp";
    const DESCRIPTION: &'static str =
        "send a datagram to host:port; healthy when a reply (containing `expect`) arrives in time";

    /// Checks every field: a plausible host, a non-zero port, exactly one payload and at most
    /// one expectation (each non-empty, hex ones well-formed, at most 65507 bytes), the
    /// timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`host`, `port`, `send`, `send_hex`,
    /// `expect`, `expect_hex`, `timeout_ms`).
    fn validate(&self) -> Result<(), ConfigError> {
        validate_host(&self.host)?;
        if self.port == 0 {
            return Err(ConfigError::invalid("port", "must be between 1 and 65535"));
        }
        let payload = one_of(("send", &self.send), ("send_hex", &self.send_hex))?;
        if payload.is_none() {
            return Err(ConfigError::invalid("send", "give the payload as send or send_hex"));
        }
        one_of(("expect", &self.expect), ("expect_hex", &self.expect_hex))?;
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        crate::egress::refuse_denied_literal(&context.egress, "host", &self.host, self.port)?;
        Ok(Some(Box::new(UdpCheck::new(self)?.with_egress(&context.egress))))
    }
}

/// Returns the bytes of whichever of a text field and its hex twin is given; an error when
/// both are, or when the given one is empty, too long or (hex) malformed.
fn one_of(
    (text_field, text): (&str, &Option<String>),
    (hex_field, hex): (&str, &Option<String>),
) -> Result<Option<Bytes>, ConfigError> {
    let bytes = match (text, hex) {
        (Some(_), Some(_)) => {
            let message = format!("give either {text_field} or {hex_field}, not both");
            return Err(ConfigError::invalid(hex_field, message));
        }
        (None, None) => return Ok(None),
        (Some(text), None) => Bytes { bytes: text.as_bytes().to_vec(), hex: false },
        (None, Some(hex)) => Bytes {
            bytes: decode_hex(hex).map_err(|message| ConfigError::invalid(hex_field, message))?,
            hex: true,
        },
    };
    let field = if bytes.hex { hex_field } else { text_field };
    if bytes.bytes.is_empty() {
        return Err(ConfigError::invalid(field, "must not be empty"));
    }
    if bytes.bytes.len() > MAX_DATAGRAM_BYTES {
        let message = format!("must be at most {MAX_DATAGRAM_BYTES} bytes");
        return Err(ConfigError::invalid(field, message));
    }
    Ok(Some(bytes))
}

/// Decodes hex digit pairs (either case), ignoring ASCII whitespace between them.
///
/// # Errors
/// Names the first character that is not a hex digit, or an odd count of digits.
fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut digits = Vec::with_capacity(text.len());
    for (position, c) in text.char_indices() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let digit = c
            .to_digit(16)
            .ok_or_else(|| format!("{c:?} at position {position} is not a hex digit"))?;
        digits.push(u8::try_from(digit).unwrap_or_default());
    }
    if digits.len() % 2 == 1 {
        return Err(format!("has {} hex digits, expected pairs", digits.len()));
    }
    Ok(digits.chunks_exact(2).map(|pair| pair[0] << 4 | pair[1]).collect())
}

/// Returns bytes as a reason shows them in hex: `hex 0a ff`, cut after 32 bytes.
fn quote_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing".to_owned();
    }
    let mut quoted = String::from("hex");
    for byte in bytes.iter().take(QUOTED_HEX_BYTES) {
        let _ = write!(quoted, " {byte:02x}");
    }
    if bytes.len() > QUOTED_HEX_BYTES {
        let _ = write!(quoted, " … ({} bytes)", bytes.len());
    }
    quoted
}

/// A runnable `udp` check.
#[derive(Debug)]
pub struct UdpCheck {
    egress: Arc<Egress>,
    host: String,
    port: u16,
    target: String,
    payload: Vec<u8>,
    expect: Option<Bytes>,
    timeout: Duration,
    timeout_ms: u64,
}

impl UdpCheck {
    /// Returns the check connecting only where `egress` allows (a check built with `new`
    /// has the built-in policy: no private, loopback or metadata addresses).
    #[must_use]
    pub fn with_egress(mut self, egress: &Arc<Egress>) -> Self {
        self.egress = Arc::clone(egress);
        self
    }

    /// Validates `config`, decodes its hex fields and builds the check; resolves nothing yet.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let payload = one_of(("send", &config.send), ("send_hex", &config.send_hex))?
            .ok_or_else(|| ConfigError::invalid("send", "give the payload as send or send_hex"))?;
        Ok(Self {
            egress: Arc::new(Egress::default()),
            host: unbracketed_host(&config.host).to_owned(),
            port: config.port,
            target: socket_target(&config.host, config.port),
            payload: payload.bytes,
            expect: one_of(("expect", &config.expect), ("expect_hex", &config.expect_hex))?,
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Resolves, sends the payload and waits for one reply until `deadline`.
    async fn exchange(&self, deadline: tokio::time::Instant) -> Result<Vec<u8>, CheckOutcome> {
        let no_reply =
            || CheckOutcome::Failed { reason: format!("no reply within {} ms", self.timeout_ms) };
        // Resolved once on tokio's blocking pool, checked, then connected to that address.
        let lookup = crate::egress::allowed_addrs(&self.egress, &self.host, self.port);
        let addr = match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok(addrs)) => addrs.into_iter().next().ok_or_else(|| CheckOutcome::Failed {
                reason: format!("{} resolves to no address", self.target),
            })?,
            Ok(Err(outcome)) => return Err(outcome),
            Err(_) => return Err(no_reply()),
        };
        let local: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(|error| CheckOutcome::Unknown {
            reason: format!("could not open a udp socket: {error}"),
        })?;
        socket.connect(addr).await.map_err(|error| self.socket_error_outcome(&error))?;
        socket.send(&self.payload).await.map_err(|error| self.socket_error_outcome(&error))?;
        let mut buffer = vec![0u8; 64 * 1024];
        match tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
            Ok(Ok(read)) => {
                buffer.truncate(read);
                Ok(buffer)
            }
            Ok(Err(error)) => Err(self.socket_error_outcome(&error)),
            Err(_) => Err(no_reply()),
        }
    }

    /// On a connected UDP socket an ICMP port unreachable comes back as "connection refused".
    fn socket_error_outcome(&self, error: &std::io::Error) -> CheckOutcome {
        if error.kind() == std::io::ErrorKind::ConnectionRefused {
            return CheckOutcome::Failed { reason: format!("port unreachable: {}", self.target) };
        }
        io_error_outcome(error, &self.target)
    }

    fn judge(&self, reply: &[u8], elapsed_ms: u128) -> CheckOutcome {
        let Some(expect) = &self.expect else {
            return CheckOutcome::Healthy {
                reason: format!("reply of {} bytes in {elapsed_ms} ms", reply.len()),
            };
        };
        let quote = if expect.hex { quote_hex } else { quote_received };
        let wanted = quote(&expect.bytes);
        if contains_bytes(reply, &expect.bytes) {
            return CheckOutcome::Healthy {
                reason: format!("reply contains {wanted} in {elapsed_ms} ms"),
            };
        }
        CheckOutcome::Failed {
            reason: format!(
                "reply from {} does not contain {wanted}, got {}",
                self.target,
                quote(reply)
            ),
        }
    }
}

#[async_trait::async_trait]
impl Check for UdpCheck {
    fn kind(&self) -> &'static str {
        "udp"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        match self.exchange(deadline).await {
            Ok(reply) => self.judge(&reply, started.elapsed().as_millis()),
            Err(outcome) => outcome,
        }
    }
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;
