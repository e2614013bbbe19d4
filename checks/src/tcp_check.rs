//! `tcp-check`: healthy when a TCP connection to `host:port` opens within `timeout_ms`.
//!
//! The connection is closed at once; nothing is sent. Name resolution counts against the timeout.

use std::time::{Duration, Instant};

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::TcpStream;

use crate::support::{default_timeout_ms, io_error_outcome, no_answer_within, validate_timeout_ms};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// Longest accepted host name (RFC 1035's limit for a DNS name).
const MAX_HOST_LEN: usize = 253;

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
    /// Milliseconds to wait for the connection to open, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl CheckType for Config {
    const NAME: &'static str = "tcp-check";
    const DESCRIPTION: &'static str = "healthy when a TCP connection to host:port opens in time";

    /// Checks every field: a plausible host, a non-zero port, the timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`host`, `port`, `timeout_ms`).
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
        if self.port == 0 {
            return Err(ConfigError::invalid("port", "must be between 1 and 65535"));
        }
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, _context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(TcpCheck::new(self)?)))
    }
}

/// A runnable `tcp-check`.
#[derive(Debug)]
pub struct TcpCheck {
    host: String,
    port: u16,
    target: String,
    timeout: Duration,
    timeout_ms: u64,
}

impl TcpCheck {
    /// Validates `config` and builds the check; resolves nothing yet.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let host = config.host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let target = if host.contains(':') {
            format!("[{host}]:{}", config.port)
        } else {
            format!("{host}:{}", config.port)
        };
        Ok(Self {
            host,
            port: config.port,
            target,
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
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
        // tokio resolves names on its blocking pool, so a slow resolver never stalls the runtime.
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(stream)) => {
                drop(stream);
                let elapsed_ms = started.elapsed().as_millis();
                CheckOutcome::Healthy { reason: format!("connected in {elapsed_ms} ms") }
            }
            Ok(Err(error)) => io_error_outcome(&error, &self.target),
            Err(_) => no_answer_within(self.timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::net::TcpListener;

    use super::*;
    use crate::test_support::refused_port;
    use crate::{CheckConfig, check_types};

    fn check(host: &str, port: u16, timeout_ms: u64) -> TcpCheck {
        TcpCheck::new(&Config { host: host.into(), port, timeout_ms }).unwrap()
    }

    fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
        CheckConfig::parse(&serde_json::from_value(value).unwrap())
    }

    #[tokio::test]
    async fn healthy_when_the_port_listens() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let outcome = check("127.0.0.1", port, 2000).run().await;
        let CheckOutcome::Healthy { reason } = outcome else { panic!("{outcome:?}") };
        assert!(reason.starts_with("connected in ") && reason.ends_with(" ms"), "{reason}");
    }

    #[tokio::test]
    async fn resolves_host_names() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let outcome = check("localhost", port, 2000).run().await;
        assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn failed_when_the_connection_is_refused() {
        let port = refused_port().await;
        let outcome = check("127.0.0.1", port, 2000).run().await;
        let reason = format!("connection refused: 127.0.0.1:{port}");
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }

    /// A listener whose accept queue is full drops new SYNs (Linux), so connecting hangs.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn failed_in_time_when_the_connection_never_opens() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        for _ in 0..16 {
            let attempt = TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(200), attempt).await {
                Ok(stream) => queued.push(stream.unwrap()),
                Err(_) => break, // the queue is full
            }
        }
        let started = Instant::now();
        let outcome = check("127.0.0.1", addr.port(), 300).run().await;
        assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
        assert_eq!(outcome, CheckOutcome::Failed { reason: "no answer within 300 ms".into() });
        drop((listener, queued));
    }

    #[test]
    fn rejects_invalid_fields_naming_them() {
        let cases = [
            (json!({"type": "tcp-check", "host": "x", "port": 0}), "port"),
            (json!({"type": "tcp-check", "host": "x", "port": 65536}), "port"),
            (json!({"type": "tcp-check", "host": "x", "port": "eighty"}), "port"),
            (json!({"type": "tcp-check", "host": "", "port": 80}), "host"),
            (json!({"type": "tcp-check", "host": "a b", "port": 80}), "host"),
            (json!({"type": "tcp-check", "port": 80}), "host"),
            (json!({"type": "tcp-check", "host": "x", "port": 80, "timeout_ms": 0}), "timeout_ms"),
            (json!({"type": "tcp-check", "host": "x", "port": 80, "bogus": true}), "bogus"),
        ];
        for (value, field) in cases {
            let error = parse(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{value}: {error}");
            assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
        }
    }

    #[test]
    fn timeout_defaults_to_5000_ms() {
        let Ok(CheckConfig::TcpCheck(config)) =
            parse(json!({"type": "tcp-check", "host": "db", "port": 5432}))
        else {
            panic!("expected a tcp-check config");
        };
        assert_eq!(config.timeout_ms, 5000);
        assert_eq!(TcpCheck::new(&config).unwrap().timeout(), Duration::from_secs(5));
    }

    #[test]
    fn ipv6_targets_are_bracketed_in_reasons() {
        assert_eq!(check("::1", 80, 1000).target, "[::1]:80");
        assert_eq!(check("[::1]", 80, 1000).target, "[::1]:80");
    }

    #[test]
    fn schema_lists_every_field() {
        let types = check_types();
        let info = types.iter().find(|t| t.name == "tcp-check").unwrap();
        let properties = info.schema["properties"].as_object().unwrap();
        for field in ["host", "port", "timeout_ms"] {
            assert!(properties.contains_key(field), "{field} missing from {properties:?}");
        }
        assert_eq!(properties["port"]["minimum"], json!(1));
    }
}
