//! `ssl-common-name`: healthy when the certificate `host:port` presents is for `expected_name`.
//!
//! A certificate is for a name when its subject common name or one of its DNS (or IP)
//! subjectAltNames equals it, ignoring case and a trailing dot; `*.example.com` matches exactly
//! one more label (`www.example.com`, not `example.com` nor `a.b.example.com`). The certificate
//! is inspected, not trusted (see the `tls_probe` module): its dates and issuer do not matter.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::support::{MAX_HOST_LEN, default_timeout_ms};
use crate::tls_probe::{LeafCertificate, TlsTarget, default_tls_port};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// How many of the certificate's names a failure reason lists.
const LISTED_NAMES: usize = 10;

/// Config of an `ssl-common-name` check.
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
    /// Name to ask for in the handshake (SNI); `host` when omitted.
    #[serde(default)]
    #[schemars(length(min = 1, max = 253))]
    pub server_name: Option<String>,
    /// The name the certificate must be for (e.g. `www.example.com`), matched against its
    /// subject common name and subjectAltNames; wildcards in the certificate apply.
    #[schemars(length(min = 1, max = 253))]
    pub expected_name: String,
    /// Milliseconds for connecting and the TLS handshake, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl CheckType for Config {
    const NAME: &'static str = "ssl-common-name";
    const DESCRIPTION: &'static str =
        "healthy when the TLS certificate of host:port names `expected_name` (CN or a SAN)";

    /// Checks every field: the TLS target (`host`, `port`, `server_name`), a plausible
    /// `expected_name`, the timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field.
    fn validate(&self) -> Result<(), ConfigError> {
        self.tls_target()?;
        let name = &self.expected_name;
        if name.is_empty() {
            return Err(ConfigError::invalid("expected_name", "must not be empty"));
        }
        if name.len() > MAX_HOST_LEN {
            return Err(ConfigError::invalid(
                "expected_name",
                format!("must be at most {MAX_HOST_LEN} bytes"),
            ));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            return Err(ConfigError::invalid("expected_name", "must be a host name or ip address"));
        }
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(SslCommonNameCheck::new(self)?.with_egress(&context.egress)?)))
    }
}

impl Config {
    fn tls_target(&self) -> Result<TlsTarget, ConfigError> {
        TlsTarget::new(&self.host, self.port, self.server_name.as_deref(), self.timeout_ms)
    }
}

/// A runnable `ssl-common-name` check.
#[derive(Debug)]
pub struct SslCommonNameCheck {
    target: TlsTarget,
    expected_name: String,
}

impl SslCommonNameCheck {
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
        Ok(Self { target: config.tls_target()?, expected_name: config.expected_name.clone() })
    }

    /// Judges the certificate's names against `expected_name`.
    fn judge(&self, leaf: &LeafCertificate) -> CheckOutcome {
        let (target, expected) = (&self.target.target, &self.expected_name);
        if let Some(matched) = leaf.names.iter().find(|name| name_matches(name, expected)) {
            let via = if matched == expected { String::new() } else { format!(" (as {matched})") };
            return CheckOutcome::Healthy {
                reason: format!("certificate from {target} is for {expected}{via}"),
            };
        }
        CheckOutcome::Failed {
            reason: format!(
                "certificate from {target} is not for {expected}: it names {}",
                list_names(&leaf.names)
            ),
        }
    }
}

/// Returns whether a certificate name (maybe a `*.` wildcard) covers `expected`.
fn name_matches(certificate_name: &str, expected: &str) -> bool {
    let certificate_name = certificate_name.trim_end_matches('.').to_ascii_lowercase();
    let expected = expected.trim_end_matches('.').to_ascii_lowercase();
    if certificate_name == expected {
        return true;
    }
    if let (Ok(a), Ok(b)) = (certificate_name.parse::<IpAddr>(), expected.parse::<IpAddr>()) {
        return a == b;
    }
    let Some(suffix) = certificate_name.strip_prefix("*.") else { return false };
    match expected.split_once('.') {
        Some((label, rest)) => {
            !label.is_empty() && label != "*" && !suffix.is_empty() && rest == suffix
        }
        None => false,
    }
}

/// Lists names for a reason: `a.example, b.example and 3 more`, or `no names`.
fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        return "no names".to_owned();
    }
    let listed = names[..names.len().min(LISTED_NAMES)].join(", ");
    match names.len().saturating_sub(LISTED_NAMES) {
        0 => listed,
        more => format!("{listed} and {more} more"),
    }
}

#[async_trait::async_trait]
impl Check for SslCommonNameCheck {
    fn kind(&self) -> &'static str {
        "ssl-common-name"
    }

    fn timeout(&self) -> Duration {
        self.target.timeout
    }

    async fn run(&self) -> CheckOutcome {
        match self.target.fetch_leaf_certificate().await {
            Ok(leaf) => self.judge(&leaf),
            Err(outcome) => outcome,
        }
    }
}

#[cfg(test)]
#[path = "ssl_common_name_tests.rs"]
mod tests;
