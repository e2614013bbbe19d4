//! CloudRoutes check types.
//!
//! - [`Check`]: the trait every runnable check implements.
//! - [`CheckConfig`]: the registry, one serde variant per type name (the original product's
//!   kebab-case names); [`CheckConfig::parse`] validates a monitor's `check` object and
//!   [`CheckConfig::build`] turns it into a runnable check.
//! - [`CheckContext`]: what checks share on a node (one pooled HTTP client, the node's
//!   [`execute_shell_command::ExecPolicy`] and its egress policy, which every connection of
//!   every check goes through).
//! - [`CheckType`]: what one type's config implements; the `registry!` table lists them all.
//! - One file per type, named after it (`http-get-statuscode` lives in [`http_get_statuscode`]).
//!
//! A failed probe is data ([`CheckOutcome::Failed`]); "could not run" is
//! [`CheckOutcome::Unknown`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cloudroutes_engine::egress::Egress;
use cloudroutes_engine::{CheckOutcome, PluginSpec};
use schemars::JsonSchema;

pub mod alertmanager_webhook;
pub mod alerts;
pub mod datadog_webhook;
mod db_support;
#[cfg(test)]
mod db_test_servers;
pub mod dns;
mod egress;
pub mod error;
pub mod execute_shell_command;
pub mod grafana_webhook;
pub mod heartbeat;
pub mod http_get_statuscode;
pub mod http_keyword;
pub mod http_options;
pub mod http_post;
pub mod intake;
pub mod logentries_webhook;
pub mod mysql_check;
pub mod papertrail_webhook;
pub mod ping;
pub mod postgres_check;
pub mod redis_check;
pub mod slack_webhook;
pub mod ssl_certificate_expiry;
pub mod ssl_common_name;
mod support;
pub mod tcp_check;
#[cfg(test)]
mod test_support;
mod tls_probe;
pub mod udp;
pub mod webhook;

pub use error::ConfigError;
pub use intake::{Delivery, Intake, IntakeError, IntakeRequest};

/// The longest `timeout_ms` any check type accepts: callers waiting on a check run can bound
/// their wait by it without building the check.
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_millis(support::MAX_TIMEOUT_MS);

/// A runnable check. Implementations enforce their own `timeout_ms` and never block the runtime.
#[async_trait::async_trait]
pub trait Check: Send + Sync + fmt::Debug {
    /// Returns the type name, e.g. `tcp-check`.
    fn kind(&self) -> &'static str;
    /// Returns the longest this check may take; the caller gives up a little after it.
    fn timeout(&self) -> Duration;
    /// Runs the check once.
    async fn run(&self) -> CheckOutcome;

    /// How often the node runs [`Check::tick`] when the type keeps its own schedule (watchdogs
    /// such as `heartbeat`); `None` means the monitor's `interval_secs`.
    fn interval(&self) -> Option<Duration> {
        None
    }

    /// Runs on the schedule of a check that keeps its own ([`Check::interval`] is `Some`):
    /// by default the check itself. A watchdog returns `None` when it has nothing to report.
    /// Checks on the monitor's `interval_secs` are run with [`Check::run`] directly.
    async fn tick(&self) -> Option<CheckOutcome> {
        Some(self.run().await)
    }

    /// Takes a webhook delivery addressed to this check's own memory and returns the result to
    /// record, if any. Checks without memory ignore deliveries.
    fn deliver(&self, _delivery: &Delivery) -> Option<CheckOutcome> {
        None
    }
}

/// What every check on a node shares.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The node's one pooled HTTP client (keep-alive, no redirects followed by default).
    pub http: reqwest::Client,
    /// The same client without certificate verification, pooled apart from `http`: only for
    /// checks configured with `verify_tls: false` (self-signed internal services).
    pub http_unverified: reqwest::Client,
    /// Which programs `execute-shell-command` may run on this node (none by default).
    pub exec: Arc<execute_shell_command::ExecPolicy>,
    /// Which addresses checks may connect to: every check resolves and connects through it.
    pub egress: Arc<Egress>,
}

impl CheckContext {
    /// Builds the shared context under the egress policy `egress` (the HTTP clients resolve
    /// through it); running programs is disabled until [`CheckContext::with_exec`].
    ///
    /// # Errors
    /// Fails when the TLS backend cannot be initialised.
    pub fn new(egress: Egress) -> Result<Self, reqwest::Error> {
        let egress = Arc::new(egress);
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("CloudRoutes/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(90))
                .dns_resolver(egress::GuardedResolver::new(Arc::clone(&egress)))
        };
        Ok(Self {
            http: builder().build()?,
            http_unverified: builder().tls_danger_accept_invalid_certs(true).build()?,
            exec: Arc::new(execute_shell_command::ExecPolicy::disabled()),
            egress,
        })
    }

    /// Returns the context with `policy` deciding what `execute-shell-command` may run.
    #[must_use]
    pub fn with_exec(mut self, policy: execute_shell_command::ExecPolicy) -> Self {
        self.exec = Arc::new(policy);
        self
    }
}

/// One check type: its config struct is the type. Adding a type is one file that implements
/// this trait and one line in the `registry!` table below.
pub trait CheckType: serde::de::DeserializeOwned + JsonSchema + fmt::Debug + Clone {
    /// Type name as the API spells it, e.g. `tcp-check`.
    const NAME: &'static str;
    /// One line on what it checks, as `/api/v1/check-types` lists it.
    const DESCRIPTION: &'static str;
    /// True when results arrive through the webhook intake instead of a schedule.
    const PASSIVE: bool = false;
    /// True when the intake also takes `GET` requests (a cron job's `curl URL`).
    const PINGABLE: bool = false;
    /// Top-level config fields that are write-only: the API shows them as `"***"`.
    const SECRET_FIELDS: &'static [&'static str] = &[];

    /// Checks every field.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field, relative to the `check` object.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Builds the runnable check; `None` for passive types.
    ///
    /// # Errors
    /// Fails when the configuration cannot be turned into a check (e.g. a bad regex).
    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError>;

    /// Parses a webhook request for a monitor of this type; `None` when the type takes no
    /// webhook results.
    fn intake(&self, _request: &IntakeRequest<'_>) -> Option<Result<Intake, IntakeError>> {
        None
    }
}

/// Declares the registry: the [`CheckConfig`] enum, its parser and dispatch, and
/// [`check_types`], from one `Variant(module::Config)` line per type.
macro_rules! registry {
    ($($variant:ident($module:ident::$config:ident)),+ $(,)?) => {
        /// The registry of check types: one variant per type name.
        #[derive(Debug, Clone)]
        pub enum CheckConfig {
            $(
                #[doc = concat!("`", stringify!($module), "`.")]
                $variant($module::$config),
            )+
        }

        impl CheckConfig {
            fn from_fields(kind: &str, fields: serde_json::Value) -> Result<Self, ConfigError> {
                match kind {
                    $(<$module::$config as CheckType>::NAME => {
                        Ok(Self::$variant(error::from_json(fields)?))
                    })+
                    other => {
                        let known: Vec<_> = check_types().iter().map(|t| t.name).collect();
                        Err(ConfigError::invalid(
                            "type",
                            format!(
                                "unknown check type `{other}`, expected one of {}",
                                known.join(", ")
                            ),
                        ))
                    }
                }
            }

            fn validate(&self) -> Result<(), ConfigError> {
                match self {
                    $(Self::$variant(c) => c.validate(),)+
                }
            }

            fn secret_fields(&self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant(_) => <$module::$config as CheckType>::SECRET_FIELDS,)+
                }
            }

            /// Returns the type name, e.g. `tcp-check`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$module::$config as CheckType>::NAME,)+
                }
            }

            /// Returns whether results come from outside (webhooks) instead of a scheduled run.
            pub fn is_passive(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$module::$config as CheckType>::PASSIVE,)+
                }
            }

            /// Returns whether the intake also takes `GET` requests for this monitor.
            pub fn is_pingable(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$module::$config as CheckType>::PINGABLE,)+
                }
            }

            /// Parses a webhook request for this monitor; `None` when its type takes no
            /// webhook results.
            pub fn intake(
                &self,
                request: &IntakeRequest<'_>,
            ) -> Option<Result<Intake, IntakeError>> {
                match self {
                    $(Self::$variant(c) => c.intake(request),)+
                }
            }

            /// Builds the runnable check; `None` for passive types.
            ///
            /// # Errors
            /// Fails when the configuration cannot be turned into a check (e.g. a bad regex).
            pub fn build(
                &self,
                context: &CheckContext,
            ) -> Result<Option<Box<dyn Check>>, ConfigError> {
                match self {
                    $(Self::$variant(c) => c.build(context),)+
                }
            }
        }

        /// Returns the write-only fields of type `kind` (none for an unknown type), without
        /// building any schema.
        pub fn secret_fields_of(kind: &str) -> &'static [&'static str] {
            match kind {
                $(<$module::$config as CheckType>::NAME => <$module::$config as CheckType>::SECRET_FIELDS,)+
                _ => &[],
            }
        }

        /// Returns every check type with its JSON Schema, sorted by name.
        pub fn check_types() -> Vec<TypeInfo> {
            let mut types = vec![$(TypeInfo::of::<$module::$config>(),)+];
            types.sort_by_key(|t| t.name);
            types
        }
    };
}

registry! {
    AlertmanagerWebhook(alertmanager_webhook::Config),
    DatadogWebhook(datadog_webhook::Config),
    Dns(dns::Config),
    ExecuteShellCommand(execute_shell_command::Config),
    GrafanaWebhook(grafana_webhook::Config),
    Heartbeat(heartbeat::Config),
    HttpGetStatuscode(http_get_statuscode::Config),
    HttpKeyword(http_keyword::Config),
    HttpPost(http_post::Config),
    LogentriesWebhook(logentries_webhook::Config),
    Mysql(mysql_check::Config),
    PapertrailWebhook(papertrail_webhook::Config),
    Ping(ping::Config),
    Postgres(postgres_check::Config),
    Redis(redis_check::Config),
    SlackWebhook(slack_webhook::Config),
    SslCertificateExpiry(ssl_certificate_expiry::Config),
    SslCommonName(ssl_common_name::Config),
    TcpCheck(tcp_check::Config),
    Udp(udp::Config),
    Webhook(webhook::Config),
}

impl CheckConfig {
    /// Parses and validates a monitor's `check` object.
    ///
    /// # Errors
    /// Returns an error naming the offending field (relative to the `check` object).
    pub fn parse(spec: &PluginSpec) -> Result<Self, ConfigError> {
        let (kind, fields) = cloudroutes_engine::plugin::split_type(spec)?;
        let config = Self::from_fields(&kind, fields)?;
        cloudroutes_engine::plugin::refuse_placeholders(spec, config.secret_fields())?;
        config.validate()?;
        Ok(config)
    }
}

/// Returns a monitor's `check` object with its secret fields shown as `"***"`.
pub fn redact(spec: &PluginSpec) -> PluginSpec {
    cloudroutes_engine::plugin::redact(spec, secret_fields_of(spec.kind()))
}

/// Replaces `"***"` placeholders in `new` with the values stored in `old` (same type only), so
/// that a monitor read from the API can be written back unchanged.
pub fn restore_secrets(new: &mut PluginSpec, old: &PluginSpec) {
    cloudroutes_engine::plugin::restore(new, old, secret_fields_of(new.kind()));
}

/// A check type as `/api/v1/check-types` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TypeInfo {
    /// Type name, e.g. `tcp-check`.
    pub name: &'static str,
    /// One line on what it checks.
    pub description: &'static str,
    /// True when results arrive through the webhook intake instead of a schedule.
    pub passive: bool,
    /// Fields that are write-only (shown as `"***"`).
    pub secret_fields: &'static [&'static str],
    /// JSON Schema of the type's config object (without `type`).
    pub schema: serde_json::Value,
}

impl TypeInfo {
    fn of<T: CheckType>() -> Self {
        Self {
            name: T::NAME,
            description: T::DESCRIPTION,
            passive: T::PASSIVE,
            secret_fields: T::SECRET_FIELDS,
            schema: cloudroutes_engine::plugin::config_schema::<T>(T::NAME),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
        CheckConfig::parse(&serde_json::from_value(value).unwrap())
    }

    #[test]
    fn parse_names_the_offending_field() {
        let cases = [
            (json!({"type": "tcp-check", "host": "x", "port": "eighty"}), "port"),
            (json!({"type": "http-get-statuscode", "url": "http://x", "bogus": 1}), "bogus"),
            (json!({"type": "webhook", "url": "http://x"}), "url"),
            (json!({"type": "tcp-chek"}), "type"),
            (json!({"type": 7}), "type"),
            (json!({"host": "x", "port": 80}), "type"),
        ];
        for (value, field) in cases {
            let error = parse(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{value}: {error}");
        }
    }

    #[test]
    fn an_unknown_type_lists_the_known_ones() {
        let error = parse(json!({"type": "tcp-chek"})).unwrap_err();
        assert_eq!(error.field, "type");
        for t in check_types() {
            assert!(error.message.contains(t.name), "{} missing from {}", t.name, error.message);
        }
    }

    #[test]
    fn every_type_parses_builds_and_reports_its_kind() {
        let context = CheckContext::new(Egress::loopback_for_tests()).unwrap();
        let specs = [
            json!({"type": "http-get-statuscode", "url": "http://127.0.0.1/"}),
            json!({"type": "http-keyword", "url": "http://127.0.0.1/", "keyword": "OK"}),
            json!({"type": "tcp-check", "host": "127.0.0.1", "port": 22}),
        ];
        for spec in specs {
            let config = parse(spec.clone()).unwrap();
            assert!(!config.is_passive());
            let check = config.build(&context).unwrap().unwrap();
            assert_eq!(check.kind(), spec["type"]);
            assert_eq!(check.timeout(), Duration::from_secs(5));
        }
        let webhook = parse(json!({"type": "webhook"})).unwrap();
        assert!(webhook.is_passive());
        assert!(webhook.build(&context).unwrap().is_none());
    }

    #[test]
    fn secret_fields_are_in_the_schema_and_marked_write_only() {
        for t in check_types() {
            for field in t.secret_fields {
                let property = &t.schema["properties"][*field];
                assert_eq!(property["writeOnly"], true, "{}.{field}: {property}", t.name);
            }
        }
        let with_secrets: Vec<_> = check_types()
            .into_iter()
            .filter(|t| !t.secret_fields.is_empty())
            .map(|t| t.name)
            .collect();
        assert_eq!(with_secrets, ["mysql", "postgres", "redis", "slack-webhook"]);
    }

    #[test]
    fn check_types_give_a_titled_object_schema_per_type() {
        let types = check_types();
        let names: Vec<_> = types.iter().map(|t| t.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted by name, each once");
        for name in ["http-get-statuscode", "http-keyword", "tcp-check", "webhook"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        for t in &types {
            assert_eq!(t.schema["type"], "object", "{}", t.name);
            assert_eq!(t.schema["title"], t.name);
            assert!(t.schema["properties"].is_object(), "{}", t.name);
            let properties = t.schema["properties"].as_object().unwrap();
            for (field, property) in properties {
                assert!(property["description"].is_string(), "{}.{field} undocumented", t.name);
            }
        }
    }
}
