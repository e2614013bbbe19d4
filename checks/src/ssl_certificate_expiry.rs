//! `ssl-certificate-expiry`: healthy when the certificate `host:port` presents expires in more
//! than `days` days.
//!
//! The certificate is inspected, not trusted: an expired, self-signed or wrong-name certificate
//! still completes the handshake (see the `tls_probe` module) and is judged by its `notAfter`
//! alone. Only the leaf certificate counts, not the rest of the chain.

use std::sync::Arc;
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use schemars::JsonSchema;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::support::default_timeout_ms;
use crate::tls_probe::{LeafCertificate, TlsTarget, default_tls_port};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// The largest `days` accepted: ten years.
pub const MAX_DAYS: u32 = 3650;

fn default_days() -> u32 {
    14
}

/// Config of an `ssl-certificate-expiry` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address to connect to (e.g. `example.com`, `10.0.0.5`, `::1`).
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port of the TLS service, 1 to 65535; 443 when omitted.
    #[serde(default = "default_tls_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Name to ask for in the handshake (SNI) and to name in reasons; `host` when omitted.
    #[serde(default)]
    #[schemars(length(min = 1, max = 253))]
    pub server_name: Option<String>,
    /// Healthy while the certificate expires in more than this many days, 1 to 3650.
    #[serde(default = "default_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub days: u32,
    /// Milliseconds for connecting and the TLS handshake, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl CheckType for Config {
    const NAME: &'static str = "ssl-certificate-expiry";
    const DESCRIPTION: &'static str =
        "healthy when the TLS certificate of host:port expires in more than `days` days";

    /// Checks every field: the TLS target (`host`, `port`, `server_name`), `days` in 1..=3650,
    /// the timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field.
    fn validate(&self) -> Result<(), ConfigError> {
        self.tls_target()?;
        if !(1..=MAX_DAYS).contains(&self.days) {
            return Err(ConfigError::invalid("days", format!("must be between 1 and {MAX_DAYS}")));
        }
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(SslCertificateExpiryCheck::new(self)?.with_egress(&context.egress)?)))
    }
}

impl Config {
    fn tls_target(&self) -> Result<TlsTarget, ConfigError> {
        TlsTarget::new(&self.host, self.port, self.server_name.as_deref(), self.timeout_ms)
    }
}

/// A runnable `ssl-certificate-expiry` check.
#[derive(Debug)]
pub struct SslCertificateExpiryCheck {
    target: TlsTarget,
    days: u32,
}

impl SslCertificateExpiryCheck {
    /// Returns the check connecting only where `egress` allows (a check built with `new`
    /// has the built-in policy: no private, loopback or metadata addresses).
    ///
    /// # Errors
    /// Names `host` when it is an IP literal `egress` denies.
    pub fn with_egress(mut self, egress: &Arc<Egress>) -> Result<Self, ConfigError> {
        self.target = self.target.with_egress(egress)?;
        Ok(self)
    }

    /// Validates `config` and builds the check; connects to nothing yet.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { target: config.tls_target()?, days: config.days })
    }

    /// Judges the certificate's `notAfter` against the threshold at `now`.
    fn judge(&self, leaf: &LeafCertificate, now: OffsetDateTime) -> CheckOutcome {
        let name = &self.target.name;
        let left = leaf.not_after - now;
        if left.is_negative() {
            let days_ago = (-left).whole_days();
            return CheckOutcome::Failed {
                reason: format!("certificate for {name} expired {days_ago} days ago"),
            };
        }
        let days_left = left.whole_days();
        if left > time::Duration::days(i64::from(self.days)) {
            return CheckOutcome::Healthy {
                reason: format!("certificate for {name} expires in {days_left} days"),
            };
        }
        CheckOutcome::Failed {
            reason: format!(
                "certificate for {name} expires in {days_left} days (threshold {})",
                self.days
            ),
        }
    }
}

#[async_trait::async_trait]
impl Check for SslCertificateExpiryCheck {
    fn kind(&self) -> &'static str {
        "ssl-certificate-expiry"
    }

    fn timeout(&self) -> Duration {
        self.target.timeout
    }

    async fn run(&self) -> CheckOutcome {
        match self.target.fetch_leaf_certificate().await {
            Ok(leaf) => self.judge(&leaf, OffsetDateTime::now_utc()),
            Err(outcome) => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{CertificateSpec, refused_port, serve_plain_text, serve_tls};
    use crate::{CheckConfig, check_types};

    fn check(port: u16, server_name: Option<&str>, days: u32) -> SslCertificateExpiryCheck {
        SslCertificateExpiryCheck::new(&Config {
            host: "127.0.0.1".into(),
            port,
            server_name: server_name.map(str::to_owned),
            days,
            timeout_ms: 2000,
        })
        .unwrap()
        .with_egress(&crate::test_support::loopback())
        .unwrap()
    }

    fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
        CheckConfig::parse(&serde_json::from_value(value).unwrap())
    }

    #[tokio::test]
    async fn healthy_above_the_threshold_failed_below_it() {
        let server = serve_tls(&CertificateSpec::valid_for_days(&["example.com"], 90)).await;
        let outcome = check(server.port, Some("example.com"), 14).run().await;
        let reason = "certificate for example.com expires in 89 days".to_owned();
        assert_eq!(outcome, CheckOutcome::Healthy { reason });
        let outcome = check(server.port, Some("example.com"), 120).run().await;
        let reason = "certificate for example.com expires in 89 days (threshold 120)".to_owned();
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }

    #[tokio::test]
    async fn an_expired_certificate_is_inspected_not_refused() {
        let server = serve_tls(&CertificateSpec::expired_days_ago(&["old.example.com"], 3)).await;
        let outcome = check(server.port, None, 14).run().await;
        let reason = "certificate for 127.0.0.1 expired 3 days ago".to_owned();
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_is_still_judged_by_date() {
        let server = serve_tls(&CertificateSpec::valid_for_days(&["other.example.net"], 30)).await;
        let outcome = check(server.port, Some("example.com"), 14).run().await;
        assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn refused_and_plain_text_targets_fail() {
        let port = refused_port().await;
        let outcome = check(port, None, 14).run().await;
        let reason = format!("connection refused: 127.0.0.1:{port}");
        assert_eq!(outcome, CheckOutcome::Failed { reason });
        let port = serve_plain_text(b"-ERR wrong protocol\r\n").await;
        let outcome = check(port, None, 14).run().await;
        let CheckOutcome::Failed { reason } = outcome else { panic!("{outcome:?}") };
        assert!(reason.starts_with(&format!("127.0.0.1:{port} does not speak tls")), "{reason}");
    }

    #[test]
    fn the_threshold_is_strict() {
        let check = check(443, Some("example.com"), 14);
        let now = OffsetDateTime::now_utc();
        let leaf = |not_after| LeafCertificate { not_after, names: Vec::new() };
        let at_threshold = check.judge(&leaf(now + time::Duration::days(14)), now);
        assert!(matches!(at_threshold, CheckOutcome::Failed { .. }), "{at_threshold:?}");
        let just_above = now + time::Duration::days(14) + time::Duration::minutes(1);
        let outcome = check.judge(&leaf(just_above), now);
        let reason = "certificate for example.com expires in 14 days".to_owned();
        assert_eq!(outcome, CheckOutcome::Healthy { reason });
        let outcome = check.judge(&leaf(now - time::Duration::hours(1)), now);
        let reason = "certificate for example.com expired 0 days ago".to_owned();
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }

    #[test]
    fn rejects_invalid_fields_naming_them() {
        let kind = "ssl-certificate-expiry";
        let cases = [
            (json!({"type": kind}), "host"),
            (json!({"type": kind, "host": ""}), "host"),
            (json!({"type": kind, "host": "a b"}), "host"),
            (json!({"type": kind, "host": "x", "port": 0}), "port"),
            (json!({"type": kind, "host": "x", "port": 70000}), "port"),
            (json!({"type": kind, "host": "x", "server_name": "a b"}), "server_name"),
            (json!({"type": kind, "host": "x", "server_name": ""}), "server_name"),
            (json!({"type": kind, "host": "x", "days": 0}), "days"),
            (json!({"type": kind, "host": "x", "days": 3651}), "days"),
            (json!({"type": kind, "host": "x", "days": -1}), "days"),
            (json!({"type": kind, "host": "x", "timeout_ms": 0}), "timeout_ms"),
            (json!({"type": kind, "host": "x", "bogus": 1}), "bogus"),
        ];
        for (value, field) in cases {
            let error = parse(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{value}: {error}");
            assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
        }
    }

    #[test]
    fn defaults_port_443_days_14_timeout_5000() {
        let Ok(CheckConfig::SslCertificateExpiry(config)) =
            parse(json!({"type": "ssl-certificate-expiry", "host": "example.com"}))
        else {
            panic!("expected an ssl-certificate-expiry config");
        };
        assert_eq!((config.port, config.days, config.timeout_ms), (443, 14, 5000));
        let check = SslCertificateExpiryCheck::new(&config)
            .unwrap()
            .with_egress(&crate::test_support::loopback())
            .unwrap();
        assert_eq!(check.target.name, "example.com");
        assert_eq!(check.timeout(), Duration::from_secs(5));
        assert_eq!(check.kind(), "ssl-certificate-expiry");
    }

    #[test]
    fn schema_lists_every_field() {
        let types = check_types();
        let info = types.iter().find(|t| t.name == "ssl-certificate-expiry").unwrap();
        let properties = info.schema["properties"].as_object().unwrap();
        for field in ["host", "port", "server_name", "days", "timeout_ms"] {
            assert!(properties.contains_key(field), "{field} missing from {properties:?}");
        }
        assert_eq!(properties["days"]["maximum"], json!(3650));
    }
}
