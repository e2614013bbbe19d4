//! `redis`: healthy when a Redis (or Valkey) server answers `PING` with `PONG` within
//! `timeout_ms`, after authenticating when a password is given; with `expect_role`, the server
//! must also report that replication role (`INFO replication`, `role:` line).
//!
//! One connection per run, closed when the run ends; nothing is written. TLS (`rediss://`) is not
//! supported yet: our Redis client is built without it, so such a URL is refused at validation.
//! The password goes in `password` (write-only through the API; a URL holding one is refused)
//! and never appears in `Debug` output or in reasons.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use cloudroutes_engine::secret::Secret;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisConnectionInfo,
    RedisError, Value,
};
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::db_support::{host_port, probe_within, validate_host, validate_password};
use crate::support::{default_timeout_ms, no_answer_within, validate_timeout_ms};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// Fields whose values are write-only through the API.
/// Write-only fields: the API shows them as `"***"`.
pub const SECRET_FIELDS: &[&str] = &["password"];

/// A `redis://` URL as configured; `Debug` shows `***` instead of a password in it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() && url.set_password(Some("***")).is_err() {
                    return f.write_str("RedisUrl(<url with a password>)");
                }
                f.debug_tuple("RedisUrl").field(&url.as_str()).finish()
            }
            Err(_) => f.write_str("RedisUrl(<not a url>)"),
        }
    }
}

/// The replication role a server reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A primary (`role:master`).
    Master,
    /// A replica (`role:slave` in `INFO`).
    Replica,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Replica => "replica",
        }
    }
}

/// Config of a `redis` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `redis://[user[:password]@]host[:port][/db]` (port 6379 and db 0 by default; `valkey://`
    /// too). TLS (`rediss://`) is not supported yet. A password belongs in `password`, not here.
    #[schemars(with = "String", length(min = 1, max = 2048))]
    pub url: RedisUrl,
    /// Password to authenticate with (`AUTH`), write-only; give it here or in `url`, not both.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub password: Option<Secret>,
    /// Role the server must report, `master` or `replica`: catches a failover that left this
    /// address on the wrong side. Any role when omitted.
    #[serde(default)]
    pub expect_role: Option<Role>,
    /// Milliseconds for connecting, authenticating and every command together, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

/// Longest accepted URL.
const MAX_URL_LEN: usize = 2048;

impl Config {
    /// Parses `url` into the address and the connection settings; applies `password`.
    fn connection(&self) -> Result<(String, u16, RedisConnectionInfo), ConfigError> {
        let invalid = |message: &str| ConfigError::invalid("url", message);
        if self.url.0.len() > MAX_URL_LEN {
            return Err(ConfigError::invalid(
                "url",
                format!("must be at most {MAX_URL_LEN} bytes"),
            ));
        }
        let url = Url::parse(&self.url.0).map_err(|error| {
            ConfigError::invalid(
                "url",
                format!("not a valid url: {}", error.to_string().to_lowercase()),
            )
        })?;
        match url.scheme() {
            "redis" | "valkey" => {}
            "rediss" | "valkeys" => {
                return Err(invalid(
                    "tls (rediss://) is not supported yet: use redis:// on a trusted network",
                ));
            }
            other => {
                return Err(ConfigError::invalid(
                    "url",
                    format!("scheme must be redis, not `{other}`"),
                ));
            }
        }
        validate_host("url", url.host_str().unwrap_or_default())
            .map_err(|_| invalid("must name a host"))?;
        if url.password().is_some() {
            // The API shows URLs to every reader; only `password` is write-only.
            return Err(invalid(
                "must not hold a password: give it in `password`, which the api never shows",
            ));
        }
        let db = url.path().trim_matches('/');
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(invalid("the path must be a database number, e.g. /0"));
        }
        // The redis crate reads the db number, user name, password (percent-decoded) and
        // `?protocol=`; its messages (`what - kind`) never quote the URL.
        let info = url.as_str().into_connection_info().map_err(|error| {
            let message = error.to_string();
            let what = message.split(" - ").next().unwrap_or_default();
            ConfigError::invalid("url", what.to_lowercase())
        })?;
        let ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
            return Err(invalid("must be a redis:// url"));
        };
        let mut settings = info.redis_settings().clone();
        if let Some(password) = &self.password {
            validate_password("password", password)?;
            settings = settings.set_password(password.expose());
        }
        Ok((host, port, settings))
    }
}

impl CheckType for Config {
    const NAME: &'static str = "redis";
    const DESCRIPTION: &'static str =
        "healthy when a Redis server answers PING (and reports the expected replication role)";
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    /// Checks every field: the URL (scheme, host, db), the password, the timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`url`, `password`, `timeout_ms`);
    /// messages never quote a password.
    fn validate(&self) -> Result<(), ConfigError> {
        self.connection()?;
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        let check = RedisCheck::new(self)?.with_egress(&context.egress);
        crate::egress::refuse_denied_literal(&context.egress, "url", &check.host, check.port)?;
        Ok(Some(Box::new(check)))
    }
}

/// A runnable `redis` check.
pub struct RedisCheck {
    egress: Arc<Egress>,
    host: String,
    port: u16,
    target: String,
    settings: RedisConnectionInfo,
    expect_role: Option<Role>,
    timeout: Duration,
    timeout_ms: u64,
}

impl fmt::Debug for RedisCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCheck")
            .field("target", &self.target)
            .field("db", &self.settings.db())
            .field("password", &self.settings.password().map(|_| "***"))
            .field("expect_role", &self.expect_role)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

impl RedisCheck {
    /// Returns the check connecting only where `egress` allows (a check built with `new`
    /// has the built-in policy: no private, loopback or metadata addresses).
    #[must_use]
    pub fn with_egress(mut self, egress: &Arc<Egress>) -> Self {
        self.egress = Arc::clone(egress);
        self
    }

    /// Validates `config` and builds the check; connects to nothing yet.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let (host, port, settings) = config.connection()?;
        Ok(Self {
            egress: Arc::new(Egress::default()),
            target: host_port(&host, port),
            host,
            port,
            settings,
            expect_role: config.expect_role,
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Connects, authenticates, sends `PING` (and `INFO replication`), then closes.
    async fn probe(&self, started: Instant) -> CheckOutcome {
        let connect = crate::egress::connect_tcp(&self.egress, &self.host, self.port, &self.target);
        let stream = match connect.await {
            Ok(stream) => stream,
            Err(outcome) => return outcome,
        };
        // The run's own deadline bounds every command; the client's default 500 ms must not.
        let config = AsyncConnectionConfig::new().set_response_timeout(None);
        let (mut connection, driver) =
            match MultiplexedConnection::new_with_config(&self.settings, stream, config).await {
                Ok(pair) => pair,
                Err(error) => return self.error_outcome(&error),
            };
        // The driver moves bytes for `connection`; both end with this run, closing the socket.
        tokio::select! {
            biased;
            outcome = self.commands(&mut connection, started) => outcome,
            () = driver => CheckOutcome::Failed {
                reason: format!("connection closed by {}", self.target),
            },
        }
    }

    async fn commands(
        &self,
        connection: &mut MultiplexedConnection,
        started: Instant,
    ) -> CheckOutcome {
        let pong = match redis::cmd("PING").query_async::<Value>(connection).await {
            Ok(value) => value,
            Err(error) => return self.error_outcome(&error),
        };
        if !matches!(&pong, Value::SimpleString(s) if s == "PONG") {
            let answer = match &pong {
                Value::SimpleString(s) => format!("`{s}`"),
                Value::Okay => "`OK`".to_owned(),
                other => format!("{other:?}"),
            };
            let reason = format!("{} answered PING with {answer}, expected PONG", self.target);
            return CheckOutcome::Failed { reason };
        }
        let elapsed_ms = started.elapsed().as_millis();
        let Some(expected) = self.expect_role else {
            return CheckOutcome::Healthy { reason: format!("PONG in {elapsed_ms} ms") };
        };
        let info =
            match redis::cmd("INFO").arg("replication").query_async::<String>(connection).await {
                Ok(info) => info,
                Err(error) => return self.error_outcome(&error),
            };
        match role_in_info(&info) {
            Some(role) if role == expected => CheckOutcome::Healthy {
                reason: format!("PONG in {elapsed_ms} ms, role {}", role.as_str()),
            },
            Some(role) => CheckOutcome::Failed {
                reason: format!(
                    "{} is a {}, expected a {}",
                    self.target,
                    role.as_str(),
                    expected.as_str()
                ),
            },
            None => CheckOutcome::Failed {
                reason: format!("{} reported no known role in INFO replication", self.target),
            },
        }
    }

    fn error_outcome(&self, error: &RedisError) -> CheckOutcome {
        let target = &self.target;
        if error.is_timeout() {
            return no_answer_within(self.timeout_ms);
        }
        let reason = if error.kind() == ErrorKind::AuthenticationFailed {
            format!("authentication failed at {target}: wrong password or user")
        } else if error.code() == Some("NOAUTH") {
            format!("authentication required by {target}: no password configured")
        } else if error.code() == Some("WRONGPASS") {
            format!("authentication failed at {target}: {error}")
        } else if error.is_io_error() {
            format!("connection to {target} failed: {error}")
        } else {
            let message = error.to_string();
            format!("{target} answered with an error: {}", error.detail().unwrap_or(&message))
        };
        CheckOutcome::Failed { reason }
    }
}

/// Returns the role in the `role:` line of `INFO replication` (`slave` is a replica).
fn role_in_info(info: &str) -> Option<Role> {
    let role = info.lines().find_map(|line| line.trim().strip_prefix("role:"))?;
    match role.trim() {
        "master" => Some(Role::Master),
        "slave" | "replica" => Some(Role::Replica),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Check for RedisCheck {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        probe_within(self.timeout, self.timeout_ms, self.settings.password(), self.probe(started))
            .await
    }
}

#[cfg(test)]
#[path = "redis_check_tests.rs"]
mod tests;
