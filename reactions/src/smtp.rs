//! SMTP relay settings for `email-notification`: the node's defaults
//! ([`crate::ReactionContext::smtp`]) or a reaction's own `smtp` object, turned into a lettre
//! transport; and lettre's errors as [`ReactionError`]s.

use std::time::Duration;

use cloudroutes_engine::secret::Secret;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::api::innermost_message;
use crate::{ConfigError, REDACTED, ReactionError};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "implicit TLS" (port 465).
    Tls,
    /// No encryption at all: only for a trusted relay on the same host or network (port 25).
    None,
}

impl SmtpSecurity {
    /// Returns the usual port of this mode: 587, 465 or 25.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Starttls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

/// An SMTP relay and the sender address used with it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// The relay's host name or IP address.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// The relay's port; defaults to 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` (implicit TLS) or `none` (unencrypted; no login allowed).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Login name, when the relay wants one (give `password` too).
    #[serde(default)]
    pub username: Option<String>,
    /// Login password (write-only).
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub password: Option<Secret>,
    /// Sender address, `alerts@example.com` or `CloudRoutes <alerts@example.com>`.
    #[schemars(length(min = 3, max = 320))]
    pub from: String,
    /// Accepts any server certificate (self-signed relays, tests): the connection is encrypted
    /// but the relay is not authenticated.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// The dashboard's public address, e.g. `https://cloudroutes.example.com`: messages link
    /// to `{public_url}/#/monitors/{id}`.
    #[serde(default)]
    #[schemars(url)]
    pub public_url: Option<String>,
}

impl SmtpSettings {
    /// Checks every field; errors name it as `{prefix}.{field}` (`smtp.host`).
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let field = |name: &str| format!("{prefix}.{name}");
        let host = self.host.trim();
        if host.is_empty() || host != self.host || url::Host::parse(host).is_err() {
            return Err(ConfigError::invalid(field("host"), "must be a host name or ip address"));
        }
        if self.port == Some(0) {
            return Err(ConfigError::invalid(field("port"), "must be between 1 and 65535"));
        }
        self.sender().map_err(|message| ConfigError::invalid(field("from"), message))?;
        match (&self.username, &self.password) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(field("password"), "is required with username"));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(field("username"), "is required with password"));
            }
            (Some(username), Some(password)) => {
                if username.is_empty() || username.chars().any(char::is_control) {
                    let message = "must not be empty or contain control characters";
                    return Err(ConfigError::invalid(field("username"), message));
                }
                if password.expose() == REDACTED {
                    let message = "is the placeholder \"***\": give the value";
                    return Err(ConfigError::invalid(field("password"), message));
                }
                if self.security == SmtpSecurity::None {
                    let message = "would be sent unencrypted: use security starttls or tls";
                    return Err(ConfigError::invalid(field("password"), message));
                }
            }
            (None, None) => {}
        }
        if let Some(url) = &self.public_url {
            crate::notify::parse_public_url(&field("public_url"), url)?;
        }
        Ok(())
    }

    /// Returns the port in use: `port`, else the security mode's usual one.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.security.default_port())
    }

    /// Returns the sender mailbox.
    ///
    /// # Errors
    /// A lowercase message when `from` is not an address.
    pub(crate) fn sender(&self) -> Result<Mailbox, String> {
        self.from.parse::<Mailbox>().map_err(|_| {
            "must be an email address like `alerts@example.com` or \
             `CloudRoutes <alerts@example.com>`"
                .into()
        })
    }

    /// Returns the dashboard address, if set and valid.
    pub(crate) fn public_url(&self) -> Option<Url> {
        let url = self.public_url.as_deref()?;
        crate::notify::parse_public_url("public_url", url).ok()
    }

    /// Builds a transport that opens one connection per message, each SMTP command answered
    /// within `timeout`.
    ///
    /// # Errors
    /// Naming `{prefix}`, when the TLS settings cannot be built.
    pub(crate) fn transport(
        &self,
        prefix: &str,
        timeout: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, ConfigError> {
        let tls = |host: &str| {
            TlsParameters::builder(host.to_owned())
                .dangerous_accept_invalid_certs(self.accept_invalid_certs)
                .build_rustls()
                .map_err(|error| ConfigError::invalid(prefix, format!("tls setup failed: {error}")))
        };
        let tls = match self.security {
            SmtpSecurity::Starttls => Tls::Required(tls(&self.host)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls(&self.host)?),
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port())
            .tls(tls)
            .timeout(Some(timeout));
        if let (Some(username), Some(password)) = (&self.username, &self.password) {
            builder = builder
                .credentials(Credentials::new(username.clone(), password.expose().to_owned()));
        }
        Ok(builder.build())
    }
}

/// Returns lettre's `error` as a [`ReactionError`] of reaction type `kind`: a negative reply
/// keeps its code (4xx retryable, 5xx final), a broken connection or TLS failure is
/// [`ReactionError::Transport`], a client-side refusal (no STARTTLS offered, no usable login
/// mechanism) is [`ReactionError::Failed`].
pub(crate) fn smtp_error(
    kind: &'static str,
    error: &lettre::transport::smtp::Error,
    timeout_ms: u64,
) -> ReactionError {
    if let Some(code) = error.status() {
        let code = code.to_string().parse().unwrap_or(0);
        let message = std::error::Error::source(error)
            .map(ToString::to_string)
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        return ReactionError::SmtpRejected { kind, code, message };
    }
    if error.is_timeout() {
        return ReactionError::Timeout { kind, timeout_ms };
    }
    let detail = innermost_message(error);
    if error.is_client() || error.is_response() {
        return ReactionError::Failed { kind, message: format!("smtp: {detail}") };
    }
    ReactionError::Transport { kind, message: format!("smtp: {detail}") }
}
