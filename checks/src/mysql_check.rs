//! `mysql`: healthy when MySQL or MariaDB accepts a login (`user`, `password`, optional
//! `database`) and answers `SELECT 1` within `timeout_ms`.
//!
//! Like the original product's `mysql-check`, it can also watch one `SHOW GLOBAL STATUS`
//! variable (`status_variable`, e.g. `Threads_connected`) against `max` and/or `min`: above
//! `max` or below `min` fails (`Threads_connected is 57, above 50`). A variable the server does
//! not have, or one that is not a number, is unknown: the check could not judge.
//!
//! One connection per run, closed (`COM_QUIT`) when the run ends. TLS is not supported yet (the
//! connection is plain TCP). The password never appears in `Debug` output or in reasons.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use cloudroutes_engine::secret::Secret;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, OptsBuilder};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::db_support::{host_port, probe_within, validate_host, validate_name, validate_password};
use crate::support::{default_timeout_ms, find_source, io_error_outcome, validate_timeout_ms};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["password"];

/// Longest accepted status variable name (MySQL's limit for a variable name).
const MAX_VARIABLE_LEN: usize = 64;

fn default_port() -> u16 {
    3306
}

/// Config of a `mysql` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address of the server (e.g. `db.internal`, `10.0.0.5`); not a socket path.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port, 1 to 65535; 3306 when omitted.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// User to log in as; one without any privilege is enough for `SELECT 1` and the status.
    #[schemars(length(min = 1, max = 255))]
    pub user: String,
    /// Password of `user`, write-only. Omit it only for a user without a password.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub password: Option<Secret>,
    /// Database to select on login; none when omitted.
    #[serde(default)]
    #[schemars(length(min = 1, max = 255))]
    pub database: Option<String>,
    /// A `SHOW GLOBAL STATUS` variable to compare with `max` and/or `min`, e.g.
    /// `Threads_connected` (letters and `_` only).
    #[serde(default)]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z_]+$"))]
    pub status_variable: Option<String>,
    /// Fail when `status_variable` is above this number.
    #[serde(default)]
    pub max: Option<f64>,
    /// Fail when `status_variable` is below this number.
    #[serde(default)]
    pub min: Option<f64>,
    /// Milliseconds for logging in and every query together, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl Config {
    fn validate_status(&self) -> Result<(), ConfigError> {
        let Some(name) = &self.status_variable else {
            for (field, value) in [("max", self.max), ("min", self.min)] {
                if value.is_some() {
                    return Err(ConfigError::invalid(field, "needs `status_variable`"));
                }
            }
            return Ok(());
        };
        let invalid = |message: &str| ConfigError::invalid("status_variable", message);
        if name.is_empty() || name.len() > MAX_VARIABLE_LEN {
            return Err(invalid("must be 1 to 64 characters"));
        }
        if !name.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            return Err(invalid("must be letters and `_` only, e.g. `threads_connected`"));
        }
        match (self.min, self.max) {
            (None, None) => Err(invalid("needs `max` or `min` to compare with")),
            (Some(min), Some(max)) if min > max => {
                Err(ConfigError::invalid("min", format!("must not be above `max` ({max})")))
            }
            _ => Ok(()),
        }
    }
}

impl CheckType for Config {
    const NAME: &'static str = "mysql";
    const DESCRIPTION: &'static str = "healthy when MySQL accepts a login and answers SELECT 1 \
        (optionally: a SHOW GLOBAL STATUS variable within min/max)";
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    /// Checks every field: host, port, user, password, database, the status variable and its
    /// thresholds, the timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field; messages never quote the password.
    fn validate(&self) -> Result<(), ConfigError> {
        validate_host("host", &self.host)?;
        if self.port == 0 {
            return Err(ConfigError::invalid("port", "must be between 1 and 65535"));
        }
        validate_name("user", &self.user)?;
        if let Some(password) = &self.password {
            validate_password("password", password)?;
        }
        if let Some(database) = &self.database {
            validate_name("database", database)?;
        }
        self.validate_status()?;
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        crate::egress::refuse_denied_literal(&context.egress, "host", &self.host, self.port)?;
        Ok(Some(Box::new(MysqlCheck::new(self)?.with_egress(&context.egress))))
    }
}

/// A `SHOW GLOBAL STATUS` variable and the range it must stay in.
#[derive(Debug, Clone)]
struct StatusRule {
    name: String,
    min: Option<f64>,
    max: Option<f64>,
}

impl StatusRule {
    /// Judges the server's `value` of the variable.
    fn outcome(&self, value: &str) -> CheckOutcome {
        let name = &self.name;
        let Ok(number) = value.trim().parse::<f64>() else {
            return CheckOutcome::Unknown {
                reason: format!("{name} is `{value}`, not a number to compare"),
            };
        };
        if let Some(max) = self.max.filter(|max| number > *max) {
            return CheckOutcome::Failed { reason: format!("{name} is {value}, above {max}") };
        }
        if let Some(min) = self.min.filter(|min| number < *min) {
            return CheckOutcome::Failed { reason: format!("{name} is {value}, below {min}") };
        }
        let range = match (self.min, self.max) {
            (Some(min), Some(max)) => format!("min {min}, max {max}"),
            (Some(min), None) => format!("min {min}"),
            (None, Some(max)) => format!("max {max}"),
            (None, None) => "no limits".to_owned(),
        };
        CheckOutcome::Healthy { reason: format!("{name} is {value} ({range})") }
    }
}

/// A runnable `mysql` check.
#[derive(Debug)]
pub struct MysqlCheck {
    egress: Arc<Egress>,
    host: String,
    port: u16,
    target: String,
    user: String,
    password: Option<Secret>,
    database: Option<String>,
    status: Option<StatusRule>,
    timeout: Duration,
    timeout_ms: u64,
}

impl MysqlCheck {
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
        config.validate()?;
        let host = config.host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let status = config.status_variable.as_ref().map(|name| StatusRule {
            name: name.clone(),
            min: config.min,
            max: config.max,
        });
        Ok(Self {
            egress: Arc::new(Egress::default()),
            target: host_port(&host, config.port),
            host,
            port: config.port,
            user: config.user.clone(),
            password: config.password.clone(),
            database: config.database.clone(),
            status,
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Logs in, runs the queries, logs out.
    async fn probe(&self, started: Instant) -> CheckOutcome {
        // Resolved once and checked; the client connects to that address, not to the name.
        let addrs = match crate::egress::allowed_addrs(&self.egress, &self.host, self.port).await {
            Ok(addrs) => addrs,
            Err(outcome) => return outcome,
        };
        let Some(addr) = addrs.first() else {
            return CheckOutcome::Failed { reason: format!("{} has no address", self.host) };
        };
        let opts = OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(self.port)
            .user(Some(self.user.as_str()))
            .pass(self.password.as_ref().map(Secret::expose))
            .db_name(self.database.as_deref())
            // Talk over TCP only: never switch to a unix socket the server names.
            .prefer_socket(false);
        let mut conn = match Conn::new(opts).await {
            Ok(conn) => conn,
            Err(error) => return self.error_outcome(&error, "could not log in to"),
        };
        let outcome = self.queries(&mut conn, started).await;
        let _ = conn.disconnect().await;
        outcome
    }

    async fn queries(&self, conn: &mut Conn, started: Instant) -> CheckOutcome {
        match conn.query_first::<i64, _>("SELECT 1").await {
            Ok(Some(1)) => {}
            Ok(other) => {
                let reason = format!("{} answered SELECT 1 with {other:?}", self.target);
                return CheckOutcome::Failed { reason };
            }
            Err(error) => return self.error_outcome(&error, "query failed on"),
        }
        let Some(rule) = &self.status else {
            let elapsed_ms = started.elapsed().as_millis();
            return CheckOutcome::Healthy {
                reason: format!("SELECT 1 answered in {elapsed_ms} ms"),
            };
        };
        // The name is letters and `_` only (validated), so it cannot break out of the quotes;
        // `=` rather than `LIKE`, where `_` would match any character.
        let query = format!("SHOW GLOBAL STATUS WHERE Variable_name = '{}'", rule.name);
        match conn.query_first::<(String, String), _>(query).await {
            Ok(Some((_, value))) => rule.outcome(&value),
            Ok(None) => CheckOutcome::Unknown {
                reason: format!("{} has no status variable {}", self.target, rule.name),
            },
            Err(error) => self.error_outcome(&error, "SHOW GLOBAL STATUS failed on"),
        }
    }

    fn error_outcome(&self, error: &mysql_async::Error, doing: &str) -> CheckOutcome {
        let target = &self.target;
        let reason = match error {
            mysql_async::Error::Server(server) => format!("{doing} {target}: {}", server.message),
            mysql_async::Error::Driver(DriverError::ConnectionClosed) => {
                format!("{target} closed the connection")
            }
            _ => {
                if let Some(io_error) = find_source::<io::Error>(error) {
                    return io_error_outcome(io_error, target);
                }
                format!("{doing} {target}: {error}")
            }
        };
        CheckOutcome::Failed { reason }
    }
}

#[async_trait::async_trait]
impl Check for MysqlCheck {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        probe_within(
            self.timeout,
            self.timeout_ms,
            self.password.as_ref().map(Secret::expose),
            self.probe(started),
        )
        .await
    }
}

#[cfg(test)]
#[path = "mysql_check_tests.rs"]
mod tests;
