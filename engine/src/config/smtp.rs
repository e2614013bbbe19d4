//! `[smtp]`: the mail relay `email-notification` reactions send through, unless a reaction
//! names its own.

use serde::Deserialize;

use crate::error::ConfigError;
use crate::secret::Secret;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on a trusted network or loopback.
    None,
}

/// `[smtp]`: the node's default mail relay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    /// Relay host name or address; unset means no default relay.
    #[serde(default)]
    pub host: Option<String>,
    /// Relay port; unset means 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls`, `tls` or `none`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// User name for SMTP AUTH; unset sends without authenticating.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for SMTP AUTH (never logged).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender address of every notification.
    #[serde(default)]
    pub from: Option<String>,
    /// Accepts any certificate from the relay (self-signed internal relays only).
    #[serde(default)]
    pub accept_invalid_certs: bool,
}

impl SmtpSection {
    /// Checks that a configured relay has a sender, a port, and credentials in pairs.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `smtp.…` key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        };
        let Some(host) = &self.host else {
            return Ok(());
        };
        if host.trim().is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(invalid("smtp.host", "must be a host name or address"));
        }
        if self.port == Some(0) {
            return Err(invalid("smtp.port", "must be between 1 and 65535"));
        }
        match &self.from {
            None => return Err(invalid("smtp.from", "is required when smtp.host is set")),
            Some(from) if !from.contains('@') => {
                return Err(invalid("smtp.from", "must be an email address"));
            }
            Some(_) => {}
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(invalid("smtp.password", "smtp.username and smtp.password go together"));
        }
        Ok(())
    }
}
