//! One validated SSH login (target or bastion): its fields checked, its keys parsed, and how
//! its failures read.

use std::fmt;
use std::sync::Arc;

use cloudroutes_engine::secret::Secret;
use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey};

use super::{Login, SshError};
use crate::{ConfigError, REDACTED, ReactionError};

/// A validated login: where, as whom, with which key, trusting which host key.
pub(super) struct Hop {
    /// `""` for the target, `"jump."` for the bastion: prefixes field names and messages.
    role: &'static str,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) user: String,
    pub(super) key: Arc<PrivateKey>,
    pub(super) host_key: PublicKey,
}

impl fmt::Debug for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hop")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("key", &fingerprint(self.key.public_key()))
            .field("host_key", &fingerprint(&self.host_key))
            .finish()
    }
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.role.is_empty() { "" } else { "jump host " };
        if self.host.contains(':') {
            write!(f, "{role}[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{role}{}:{}", self.host, self.port)
        }
    }
}

impl Hop {
    pub(super) fn parse(role: &'static str, login: &Login<'_>) -> Result<Self, ConfigError> {
        let field = |name: &str| format!("{role}{name}");
        let host = login.host;
        let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
        if host.is_empty() || host.len() > 253 || !host.chars().all(host_chars) {
            let message = "must be a host name or ip address (letters, digits, `.-_:`)";
            return Err(ConfigError::invalid(field("host"), message));
        }
        if login.port == 0 {
            return Err(ConfigError::invalid(field("port"), "must be between 1 and 65535"));
        }
        let user = login.user;
        if user.is_empty()
            || user.len() > 256
            || user.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            let message = "must be a user name without spaces or control characters";
            return Err(ConfigError::invalid(field("user"), message));
        }
        let key = parse_private_key(role, login.private_key, login.passphrase)?;
        let host_key = parse_host_key(&field("host_key"), login.host_key)?;
        Ok(Self {
            role,
            host: host.to_owned(),
            port: login.port,
            user: user.to_owned(),
            key: Arc::new(key),
            host_key,
        })
    }

    /// Host key algorithms to offer: only the configured key's, so that a server with several
    /// host keys presents the one we know.
    pub(super) fn host_key_algorithms(&self) -> Vec<Algorithm> {
        match self.host_key.algorithm() {
            Algorithm::Rsa { .. } => vec![
                Algorithm::Rsa { hash: Some(HashAlg::Sha512) },
                Algorithm::Rsa { hash: Some(HashAlg::Sha256) },
                Algorithm::Rsa { hash: None },
            ],
            algorithm => vec![algorithm],
        }
    }

    pub(super) fn failed(&self, kind: &'static str, what: impl fmt::Display) -> ReactionError {
        ReactionError::Failed { kind, message: format!("{self}: {what}") }
    }

    pub(super) fn transport(&self, kind: &'static str, what: impl fmt::Display) -> ReactionError {
        ReactionError::Transport { kind, message: format!("{self}: {what}") }
    }

    /// Maps a failed handshake: a host key mismatch or a missing host key type is the
    /// configuration's fault (not retryable), anything else the network's.
    pub(super) fn handshake_error(&self, kind: &'static str, error: SshError) -> ReactionError {
        match error {
            SshError::HostKeyMismatch { presented } => self.failed(
                kind,
                format!(
                    "host key did not match: expected {}, the server presented {presented}; \
                     refused before authentication",
                    fingerprint(&self.host_key)
                ),
            ),
            SshError::Ssh(russh::Error::NoCommonAlgo {
                kind: russh::AlgorithmKind::Key,
                theirs,
                ..
            }) => self.failed(
                kind,
                format!(
                    "the server has no {} host key (it offers {}): check `{}host_key`",
                    self.host_key.algorithm(),
                    theirs.join(", "),
                    self.role
                ),
            ),
            SshError::Ssh(error) => self.transport(kind, format!("ssh handshake failed: {error}")),
        }
    }
}

/// Returns `ssh-ed25519 SHA256:…`: a key's type and fingerprint, never its material.
pub(super) fn fingerprint(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256))
}

fn parse_private_key(
    role: &'static str,
    key: &Secret,
    passphrase: Option<&Secret>,
) -> Result<PrivateKey, ConfigError> {
    let key_field = format!("{role}private_key");
    let passphrase_field = format!("{role}passphrase");
    if key.expose() == REDACTED {
        return Err(ConfigError::invalid(key_field, "is the placeholder \"***\": give the key"));
    }
    if passphrase.is_some_and(|p| p.expose() == REDACTED) {
        let message = "is the placeholder \"***\": give the passphrase";
        return Err(ConfigError::invalid(passphrase_field, message));
    }
    let text = key.expose();
    let decoded = russh::keys::decode_secret_key(text, passphrase.map(Secret::expose));
    match decoded {
        Ok(key) => Ok(key),
        Err(_) if passphrase.is_some() && is_encrypted(text) => {
            Err(ConfigError::invalid(passphrase_field, format!("does not decrypt `{key_field}`")))
        }
        Err(russh::keys::Error::KeyIsEncrypted) => Err(ConfigError::invalid(
            key_field,
            format!("is encrypted: give its `{passphrase_field}`"),
        )),
        // The library's messages name the format problem, never the key's content.
        Err(error) => Err(ConfigError::invalid(
            key_field,
            format!(
                "must be the text of an openssh private key (ed25519, ecdsa or rsa): {}",
                error.to_string().to_lowercase()
            ),
        )),
    }
}

fn is_encrypted(text: &str) -> bool {
    matches!(russh::keys::decode_secret_key(text, None), Err(russh::keys::Error::KeyIsEncrypted))
}

fn parse_host_key(field: &str, text: &str) -> Result<PublicKey, ConfigError> {
    if text.trim().is_empty() {
        let message = "is required: the server's public host key, e.g. `ssh-ed25519 AAAA…` \
                       from /etc/ssh/ssh_host_ed25519_key.pub";
        return Err(ConfigError::invalid(field, message));
    }
    // Never quote the text: a private key pasted here by mistake must not reach an error.
    PublicKey::from_openssh(text.trim()).map_err(|_| {
        let message = "must be a public host key in openssh form, `ssh-ed25519 AAAA…` or \
                       `ssh-rsa AAAA…` (a line of the server's /etc/ssh/ssh_host_*_key.pub)";
        ConfigError::invalid(field, message)
    })
}
