//! `tcp-check`: healthy when a TCP connection to `host:port` opens within `timeout_ms`, and,
//! with a banner exchange, when the server's answer contains `expect`.
//!
//! Without `send` and `expect` the connection is closed at once and nothing is sent. With them,
//! `send` is written after connecting and up to 64 KiB of the answer is read until `expect`
//! appears. Name resolution, connecting and the exchange share the one `timeout_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    contains_bytes, default_timeout_ms, io_error_outcome, no_answer_within, quote_received,
    socket_target, unbracketed_host, validate_host, validate_timeout_ms,
};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// The most a banner exchange reads from the server (and the longest `send` or `expect`).
pub const MAX_EXCHANGE_BYTES: usize = 64 * 1024;

/// Config of a `tcp-check`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address to connect to (e.g. `db.internal`, `10.0.0.5`, `::1`).
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Text to write once connected (e.g. `"PING\r\n"`); nothing is sent when omitted.
    #[serde(default)]
    #[schemars(length(min = 1, max = 65536))]
    pub send: Option<String>,
    /// Text the server's answer must contain (case-sensitive), searched in its first 64 KiB;
    /// the answer is not read when omitted.
    #[serde(default)]
    #[schemars(length(min = 1, max = 65536))]
    pub expect: Option<String>,
    /// Milliseconds for connecting and the whole exchange, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl CheckType for Config {
    const NAME: &'static str = "tcp-check";
    const DESCRIPTION: &'static str = "healthy when a TCP connection to host:port opens in time \
        (and, optionally, the answer to `send` contains `expect`)";

    /// Checks every field: a plausible host, a non-zero port, non-empty `send` and `expect` of
    /// at most 64 KiB, the timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`host`, `port`, `send`, `expect`,
    /// `timeout_ms`).
    fn validate(&self) -> Result<(), ConfigError> {
        validate_host(&self.host)?;
        if self.port == 0 {
            return Err(ConfigError::invalid("port", "must be between 1 and 65535"));
        }
        for (field, text) in [("send", &self.send), ("expect", &self.expect)] {
            match text {
                Some(text) if text.is_empty() => {
                    return Err(ConfigError::invalid(field, "must not be empty"));
                }
                Some(text) if text.len() > MAX_EXCHANGE_BYTES => {
                    return Err(ConfigError::invalid(
                        field,
                        format!("must be at most {MAX_EXCHANGE_BYTES} bytes"),
                    ));
                }
                _ => {}
            }
        }
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        crate::egress::refuse_denied_literal(&context.egress, "host", &self.host, self.port)?;
        Ok(Some(Box::new(TcpCheck::new(self)?.with_egress(&context.egress))))
    }
}

/// A runnable `tcp-check`.
#[derive(Debug)]
pub struct TcpCheck {
    host: String,
    port: u16,
    target: String,
    send: Option<Vec<u8>>,
    expect: Option<Vec<u8>>,
    timeout: Duration,
    timeout_ms: u64,
    egress: Arc<Egress>,
}

/// How reading the server's answer ended.
enum AnswerEnd {
    /// `expect` arrived.
    Found,
    /// The server closed the connection first.
    Closed,
    /// [`MAX_EXCHANGE_BYTES`] arrived without `expect`.
    LimitReached,
    /// The deadline passed first.
    TimedOut,
    /// Reading failed (e.g. the connection was reset).
    Failed(std::io::Error),
}

impl TcpCheck {
    /// Validates `config` and builds the check under the built-in egress policy (see
    /// [`TcpCheck::with_egress`]); resolves nothing yet.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            egress: Arc::new(Egress::default()),
            host: unbracketed_host(&config.host).to_owned(),
            port: config.port,
            target: socket_target(&config.host, config.port),
            send: config.send.as_ref().map(|text| text.as_bytes().to_vec()),
            expect: config.expect.as_ref().map(|text| text.as_bytes().to_vec()),
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Returns the check connecting only where `egress` allows.
    #[must_use]
    pub fn with_egress(mut self, egress: &Arc<Egress>) -> Self {
        self.egress = Arc::clone(egress);
        self
    }

    /// Sends `send`, if any, then judges the answer against `expect`, if any.
    async fn exchange(
        &self,
        mut stream: TcpStream,
        deadline: tokio::time::Instant,
        connected: String,
    ) -> CheckOutcome {
        if let Some(send) = &self.send {
            match tokio::time::timeout_at(deadline, stream.write_all(send)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return io_error_outcome(&error, &self.target),
                Err(_) => return no_answer_within(self.timeout_ms),
            }
        }
        let Some(expect) = &self.expect else {
            return match &self.send {
                Some(send) => CheckOutcome::Healthy {
                    reason: format!("{connected}, sent {} bytes", send.len()),
                },
                None => CheckOutcome::Healthy { reason: connected },
            };
        };
        let mut answer = Vec::new();
        let end = read_until_found(&mut stream, expect, deadline, &mut answer).await;
        let (wanted, target, got) = (quote_received(expect), &self.target, quote_received(&answer));
        let reason = match end {
            AnswerEnd::Found => {
                return CheckOutcome::Healthy {
                    reason: format!("{connected}, answer contains {wanted}"),
                };
            }
            AnswerEnd::Failed(error) => return io_error_outcome(&error, target),
            AnswerEnd::Closed => {
                format!("{target} closed the connection without sending {wanted}, got {got}")
            }
            AnswerEnd::LimitReached => {
                format!(
                    "no {wanted} in the first {MAX_EXCHANGE_BYTES} bytes from {target}, got {got}"
                )
            }
            AnswerEnd::TimedOut => {
                format!("no {wanted} from {target} within {} ms, got {got}", self.timeout_ms)
            }
        };
        CheckOutcome::Failed { reason }
    }
}

/// Reads into `answer` until it contains `expect`, the server closes, [`MAX_EXCHANGE_BYTES`]
/// arrived or `deadline` passes.
async fn read_until_found(
    stream: &mut TcpStream,
    expect: &[u8],
    deadline: tokio::time::Instant,
    answer: &mut Vec<u8>,
) -> AnswerEnd {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let room = (MAX_EXCHANGE_BYTES - answer.len()).min(buffer.len());
        let read = match tokio::time::timeout_at(deadline, stream.read(&mut buffer[..room])).await {
            Ok(Ok(0)) => return AnswerEnd::Closed,
            Ok(Ok(read)) => read,
            Ok(Err(error)) => return AnswerEnd::Failed(error),
            Err(_) => return AnswerEnd::TimedOut,
        };
        // Only the new bytes and the tail that could start a match need searching again.
        let search_from = answer.len().saturating_sub(expect.len().saturating_sub(1));
        answer.extend_from_slice(&buffer[..read]);
        if contains_bytes(&answer[search_from..], expect) {
            return AnswerEnd::Found;
        }
        if answer.len() >= MAX_EXCHANGE_BYTES {
            return AnswerEnd::LimitReached;
        }
    }
}

#[async_trait::async_trait]
impl Check for TcpCheck {
    fn kind(&self) -> &'static str {
        "tcp-check"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        // Resolved once on tokio's blocking pool, checked, then connected to that address.
        let connect = crate::egress::connect_tcp(&self.egress, &self.host, self.port, &self.target);
        match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(stream)) => {
                let connected = format!("connected in {} ms", started.elapsed().as_millis());
                if self.send.is_none() && self.expect.is_none() {
                    drop(stream);
                    return CheckOutcome::Healthy { reason: connected };
                }
                self.exchange(stream, deadline, connected).await
            }
            Ok(Err(outcome)) => outcome,
            Err(_) => no_answer_within(self.timeout_ms),
        }
    }
}

#[cfg(test)]
#[path = "tcp_check_tests.rs"]
mod tests;
