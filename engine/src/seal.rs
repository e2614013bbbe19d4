//! Sealing of secret values at rest: AES-256-GCM with a random 96-bit nonce per value, the
//! sealed value kept as text `sealed:v1:<base64(nonce || ciphertext || tag)>`.
//!
//! The associated data binds a sealed value to where it lives (`monitor/<id>/check.<field>`,
//! `reaction/<id>/action.<field>`): a value copied into another record or field does not open.
//! A value opens only with the key that sealed it; a wrong key or a changed byte is an error,
//! never garbage.
//!
//! [`key`] finds the node's key: `secrets.key`, `secrets.key_file`, or a generated
//! `DATA_DIR/secrets.key` on the embedded store.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub mod key;

/// The prefix of every sealed value (format version 1).
pub const SEALED_PREFIX: &str = "sealed:v1:";

/// Length of a key in bytes.
pub const KEY_BYTES: usize = 32;

const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// A sealing failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is not base64 of exactly 32 bytes.
    #[error("the secrets key must be base64 of exactly {KEY_BYTES} bytes: {0}")]
    BadKey(String),
    /// The text is not a sealed value (wrong prefix, bad base64, too short).
    #[error("not a sealed value: {0}")]
    Format(String),
    /// The value did not open: another key sealed it, it was sealed for another place, or it
    /// was changed.
    #[error(
        "the sealed value does not open with this key (a different secrets key sealed it, or it \
         was moved from another record or changed)"
    )]
    Open,
}

/// An AES-256-GCM key for sealing secrets. `Debug` never shows it.
#[derive(Clone)]
pub struct SealKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl SealKey {
    /// Builds a key from 32 raw bytes.
    ///
    /// # Errors
    /// [`SealError::BadKey`] when `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        if bytes.len() != KEY_BYTES {
            return Err(SealError::BadKey(format!("got {} bytes", bytes.len())));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| SealError::BadKey(format!("got {} bytes", bytes.len())))?;
        Ok(Self { cipher })
    }

    /// Builds a key from its base64 text (standard alphabet, padded; blanks around it ignored).
    ///
    /// # Errors
    /// [`SealError::BadKey`] when the text is not base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes =
            STANDARD.decode(text.trim()).map_err(|error| SealError::BadKey(error.to_string()))?;
        Self::from_bytes(&bytes)
    }

    /// Returns a new random key with its base64 text (to be kept by the caller).
    pub fn generate() -> (Self, String) {
        let bytes: [u8; KEY_BYTES] = rand::random();
        let text = STANDARD.encode(bytes);
        // 32 bytes always make a key.
        let key = Self { cipher: Aes256Gcm::new(&bytes.into()) };
        (key, text)
    }

    /// Seals `plaintext` for the place named by `context` (the associated data).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let payload = Payload { msg: plaintext, aad: context.as_bytes() };
        // Encryption fails only for messages longer than GCM's limit (64 GiB).
        let ciphertext = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// Opens a value [`SealKey::seal`] made for the same `context`.
    ///
    /// # Errors
    /// [`SealError::Format`] for text that is not a sealed value, [`SealError::Open`] when it
    /// does not open with this key and context.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| SealError::Format(format!("missing the `{SEALED_PREFIX}` prefix")))?;
        let bytes = STANDARD.decode(body).map_err(|error| SealError::Format(error.to_string()))?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(SealError::Format(format!("{} bytes is too short", bytes.len())));
        }
        let (nonce_bytes, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce_array: [u8; NONCE_BYTES] =
            nonce_bytes.try_into().map_err(|_| SealError::Format("bad nonce".into()))?;
        let nonce = Nonce::from(nonce_array);
        let payload = Payload { msg: ciphertext, aad: context.as_bytes() };
        self.cipher.decrypt(&nonce, payload).map_err(|_| SealError::Open)
    }
}

/// Returns whether `text` looks like a sealed value.
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests;
