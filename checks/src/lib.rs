//! CloudRoutes check types.
//!
//! - [`Check`]: the trait every runnable check implements.
//! - [`CheckConfig`]: the registry, one serde variant per type name (the original product's
//!   kebab-case names); [`CheckConfig::parse`] validates a monitor's `check` object and
//!   [`CheckConfig::build`] turns it into a runnable check.
//! - [`CheckContext`]: what checks share on a node (one pooled HTTP client).
//! - One file per type: [`http_get_statuscode`], [`http_keyword`], [`tcp_check`], [`webhook`].
//!
//! A failed probe is data ([`CheckOutcome::Failed`]); "could not run" is
//! [`CheckOutcome::Unknown`].

use std::fmt;
use std::time::Duration;

use cloudroutes_engine::{CheckOutcome, PluginSpec};
use schemars::JsonSchema;

pub mod error;
pub mod http_get_statuscode;
pub mod http_keyword;
mod support;
pub mod tcp_check;
#[cfg(test)]
mod test_support;
pub mod webhook;

pub use error::ConfigError;

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
}

/// What every check on a node shares.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The node's one pooled HTTP client (keep-alive, no redirects followed by default).
    pub http: reqwest::Client,
}

impl CheckContext {
    /// Builds the shared context.
    ///
    /// # Errors
    /// Fails when the TLS backend cannot be initialised.
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("CloudRoutes/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(Self { http })
    }
}

/// The registry of check types: one variant per type name.
#[derive(Debug, Clone)]
pub enum CheckConfig {
    /// `http-get-statuscode`.
    HttpGetStatuscode(http_get_statuscode::Config),
    /// `http-keyword`.
    HttpKeyword(http_keyword::Config),
    /// `tcp-check`.
    TcpCheck(tcp_check::Config),
    /// `webhook` (passive: results arrive through the webhook intake).
    Webhook(webhook::Config),
}

impl CheckConfig {
    /// Parses and validates a monitor's `check` object.
    ///
    /// # Errors
    /// Returns an error naming the offending field (relative to the `check` object).
    pub fn parse(spec: &PluginSpec) -> Result<Self, ConfigError> {
        let mut fields = spec.0.clone();
        let kind = match fields.remove("type") {
            Some(serde_json::Value::String(kind)) => kind,
            Some(_) => return Err(ConfigError::invalid("type", "must be a string")),
            None => return Err(ConfigError::invalid("type", "missing field `type`")),
        };
        let fields = serde_json::Value::Object(fields);
        let config = match kind.as_str() {
            "http-get-statuscode" => Self::HttpGetStatuscode(error::from_json(fields)?),
            "http-keyword" => Self::HttpKeyword(error::from_json(fields)?),
            "tcp-check" => Self::TcpCheck(error::from_json(fields)?),
            "webhook" => Self::Webhook(error::from_json(fields)?),
            other => {
                let known: Vec<_> = check_types().iter().map(|t| t.name).collect();
                return Err(ConfigError::invalid(
                    "type",
                    format!("unknown check type `{other}`, expected one of {}", known.join(", ")),
                ));
            }
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::HttpGetStatuscode(c) => c.validate(),
            Self::HttpKeyword(c) => c.validate(),
            Self::TcpCheck(c) => c.validate(),
            Self::Webhook(c) => c.validate(),
        }
    }

    /// Returns whether results come from outside (webhooks) instead of a scheduled run.
    pub fn is_passive(&self) -> bool {
        matches!(self, Self::Webhook(_))
    }

    /// Builds the runnable check; `None` for passive types.
    ///
    /// # Errors
    /// Fails when the configuration cannot be turned into a check (e.g. a bad regex).
    pub fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(match self {
            Self::HttpGetStatuscode(c) => {
                Box::new(http_get_statuscode::HttpGetStatuscodeCheck::new(c, context)?)
            }
            Self::HttpKeyword(c) => Box::new(http_keyword::HttpKeywordCheck::new(c, context)?),
            Self::TcpCheck(c) => Box::new(tcp_check::TcpCheck::new(c)?),
            Self::Webhook(_) => return Ok(None),
        }))
    }
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
    /// JSON Schema of the type's config object (without `type`).
    pub schema: serde_json::Value,
}

/// Returns every check type with its JSON Schema, sorted by name.
pub fn check_types() -> Vec<TypeInfo> {
    fn info<T: JsonSchema>(
        name: &'static str,
        description: &'static str,
        passive: bool,
    ) -> TypeInfo {
        TypeInfo {
            name,
            description,
            passive,
            schema: cloudroutes_engine::plugin::config_schema::<T>(name),
        }
    }
    vec![
        info::<http_get_statuscode::Config>(
            "http-get-statuscode",
            "GET a URL; healthy when the status code is one of the expected codes",
            false,
        ),
        info::<http_keyword::Config>(
            "http-keyword",
            "GET a URL; healthy when the body does (or does not) contain a keyword or regex",
            false,
        ),
        info::<tcp_check::Config>(
            "tcp-check",
            "healthy when a TCP connection to host:port opens in time",
            false,
        ),
        info::<webhook::Config>(
            "webhook",
            "results are posted to the monitor's webhook URL (healthy, failed, status)",
            true,
        ),
    ]
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
        let context = CheckContext::new().unwrap();
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
    fn check_types_give_a_titled_object_schema_per_type() {
        let types = check_types();
        let names: Vec<_> = types.iter().map(|t| t.name).collect();
        assert_eq!(names, ["http-get-statuscode", "http-keyword", "tcp-check", "webhook"]);
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
