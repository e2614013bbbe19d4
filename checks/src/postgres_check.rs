//! `postgres`: healthy when PostgreSQL accepts a login (`user`, `password`, `database`) and
//! answers one read-only query (`SELECT 1` by default) within `timeout_ms`.
//!
//! The query runs in a `BEGIN READ ONLY` transaction that is always rolled back, through the
//! extended protocol (which takes exactly one statement), so a check never writes. That is a
//! guard against mistakes, not a sandbox: give the check a role that may only read.
//! TLS is not supported yet (the connection is plain TCP); there is no `sslmode` to set.
//! The password never appears in `Debug` output or in reasons; a failure quotes the server's
//! message, e.g. `password authentication failed for user "monitor"`.

use std::error::Error;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

use crate::db_support::{host_port, probe_within, validate_host, validate_name, validate_password};
use crate::support::{default_timeout_ms, find_source, io_error_outcome, validate_timeout_ms};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// Fields whose values are write-only through the API.
pub const SECRET_FIELDS: &[&str] = &["password"];

/// Longest accepted query.
const MAX_QUERY_LEN: usize = 4096;
/// The `application_name` the check logs in with, as `pg_stat_activity` shows it.
const APPLICATION_NAME: &str = "cloudroutes-check";

fn default_port() -> u16 {
    5432
}

fn default_query() -> String {
    "SELECT 1".to_owned()
}

/// Config of a `postgres` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address of the server (e.g. `db.internal`, `10.0.0.5`); not a socket path.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port, 1 to 65535; 5432 when omitted.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// User (role) to log in as; one that may only read is enough and safest.
    #[schemars(length(min = 1, max = 255))]
    pub user: String,
    /// Password of `user` (md5 or scram-sha-256 authentication), write-only. Omit it only when
    /// the server trusts this client without one.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub password: Option<Secret>,
    /// Database to connect to.
    #[schemars(length(min = 1, max = 255))]
    pub database: String,
    /// One read-only SQL statement, `SELECT 1` when omitted; run in a read-only transaction
    /// that is rolled back. A `;` may end it but not separate two statements.
    #[serde(default = "default_query")]
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    /// Milliseconds for logging in and running the query together, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

/// Returns `query` without its trailing `;` (and spaces) when it is one statement.
fn single_statement(query: &str) -> Result<&str, ConfigError> {
    let invalid = |message: &str| ConfigError::invalid("query", message);
    if query.len() > MAX_QUERY_LEN {
        return Err(ConfigError::invalid(
            "query",
            format!("must be at most {MAX_QUERY_LEN} bytes"),
        ));
    }
    if query.contains('\0') {
        return Err(invalid("must not contain a nul byte"));
    }
    let statement = query.trim().trim_end_matches(';').trim_end();
    if statement.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if statement.contains(';') {
        return Err(invalid("must be a single statement: `;` may only end it"));
    }
    Ok(statement)
}

impl CheckType for Config {
    const NAME: &'static str = "postgres";
    const DESCRIPTION: &'static str =
        "healthy when PostgreSQL accepts a login and answers a read-only query (SELECT 1)";
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    /// Checks every field: host, port, user, password, database, the query (one statement), the
    /// timeout's range.
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
        validate_name("database", &self.database)?;
        single_statement(&self.query)?;
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        crate::egress::refuse_denied_literal(&context.egress, "host", &self.host, self.port)?;
        Ok(Some(Box::new(PostgresCheck::new(self)?.with_egress(&context.egress))))
    }
}

/// A runnable `postgres` check.
#[derive(Debug)]
pub struct PostgresCheck {
    egress: Arc<Egress>,
    host: String,
    port: u16,
    target: String,
    user: String,
    password: Option<Secret>,
    database: String,
    query: String,
    timeout: Duration,
    timeout_ms: u64,
}

impl PostgresCheck {
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
        Ok(Self {
            egress: Arc::new(Egress::default()),
            target: host_port(&host, config.port),
            host,
            port: config.port,
            user: config.user.clone(),
            password: config.password.clone(),
            database: config.database.clone(),
            query: single_statement(&config.query)?.to_owned(),
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Logs in, runs the query, logs out (the server sees a clean `Terminate`).
    async fn probe(&self, started: Instant) -> CheckOutcome {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name(APPLICATION_NAME)
            .ssl_mode(SslMode::Disable);
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        // Resolved once and checked; the client talks over the socket opened to that address.
        let connect = crate::egress::connect_tcp(&self.egress, &self.host, self.port, &self.target);
        let stream = match connect.await {
            Ok(stream) => stream,
            Err(outcome) => return outcome,
        };
        let (client, connection) = match config.connect_raw(stream, NoTls).await {
            Ok(pair) => pair,
            Err(error) => return self.error_outcome(&error, "could not log in to"),
        };
        tokio::pin!(connection);
        let outcome = tokio::select! {
            biased;
            outcome = self.query(&client, started) => outcome,
            result = &mut connection => {
                let mut reason = format!("{} closed the connection", self.target);
                if let Err(error) = result {
                    reason = format!("{reason}: {}", describe(&error));
                }
                CheckOutcome::Failed { reason }
            }
        };
        drop(client);
        let _ = connection.await;
        outcome
    }

    async fn query(&self, client: &Client, started: Instant) -> CheckOutcome {
        if let Err(error) = client.batch_execute("BEGIN READ ONLY").await {
            return self.error_outcome(&error, "could not begin a transaction on");
        }
        let rows = client.query(self.query.as_str(), &[]).await;
        // Nothing is ever kept: the transaction is rolled back whether the query worked or not.
        let rollback = client.batch_execute("ROLLBACK").await;
        match (rows, rollback) {
            (Ok(rows), Ok(())) => {
                let count = rows.len();
                let noun = if count == 1 { "row" } else { "rows" };
                let elapsed_ms = started.elapsed().as_millis();
                CheckOutcome::Healthy {
                    reason: format!("query returned {count} {noun} in {elapsed_ms} ms"),
                }
            }
            (Err(error), _) => self.error_outcome(&error, "query failed on"),
            (Ok(_), Err(error)) => self.error_outcome(&error, "could not roll back on"),
        }
    }

    fn error_outcome(&self, error: &tokio_postgres::Error, doing: &str) -> CheckOutcome {
        if let Some(db_error) = error.as_db_error() {
            return CheckOutcome::Failed {
                reason: format!("{doing} {}: {}", self.target, db_error.message()),
            };
        }
        if let Some(io_error) = find_source::<io::Error>(error) {
            return io_error_outcome(io_error, &self.target);
        }
        CheckOutcome::Failed { reason: format!("{doing} {}: {}", self.target, describe(error)) }
    }
}

/// Returns `error` with its cause: tokio-postgres puts the detail (`password missing`) there.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

#[async_trait::async_trait]
impl Check for PostgresCheck {
    fn kind(&self) -> &'static str {
        "postgres"
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
#[path = "postgres_check_tests.rs"]
mod tests;
