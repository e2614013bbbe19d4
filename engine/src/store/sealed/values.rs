//! Sealing of the secrets that are not plugin fields: a monitor's webhook key (the intake
//! credential) and reaction notes (what a reaction remembers between runs, such as the DNS
//! records a failover switched).
//!
//! A webhook key is sealed as text with the associated data `monitor/<id>/webhook_key`. A note
//! is sealed whole: its JSON is serialized, sealed with `note/<key>` and stored as a JSON
//! string. Plain values written before sealing existed still read as they are.

use serde_json::Value;

use crate::error::StoreError;
use crate::model::Monitor;
use crate::seal::{SealKey, is_sealed};

/// Returns the associated data of a monitor's webhook key.
fn webhook_key_context(monitor: &Monitor) -> String {
    format!("monitor/{}/webhook_key", monitor.id.0)
}

/// Returns the associated data of the note under `key`.
fn note_context(key: &str) -> String {
    format!("note/{key}")
}

/// Returns whether `monitor` holds a webhook key in plain text.
pub(super) fn webhook_key_is_plain(monitor: &Monitor) -> bool {
    !monitor.webhook_key.is_empty() && !is_sealed(&monitor.webhook_key)
}

/// Seals the webhook key of `monitor` (an empty key, which no intake accepts, stays empty).
pub(super) fn seal_webhook_key(key: &SealKey, monitor: &mut Monitor) {
    if webhook_key_is_plain(monitor) {
        monitor.webhook_key =
            key.seal(monitor.webhook_key.as_bytes(), &webhook_key_context(monitor));
    }
}

/// Opens the webhook key of `monitor` when it is sealed.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the monitor when the key does not open (another secrets
/// key sealed it, or it was moved from another monitor).
pub(super) fn open_webhook_key(key: &SealKey, monitor: &mut Monitor) -> Result<(), StoreError> {
    if !is_sealed(&monitor.webhook_key) {
        return Ok(());
    }
    let corrupt = |message: String| StoreError::Corrupt {
        what: "monitor",
        key: monitor.id.0.to_string(),
        message: format!("webhook key: {message}"),
    };
    let plain = key
        .open(&monitor.webhook_key, &webhook_key_context(monitor))
        .map_err(|error| corrupt(error.to_string()))?;
    let plain = String::from_utf8(plain).map_err(|_| corrupt("not utf-8".into()))?;
    monitor.webhook_key = plain;
    Ok(())
}

/// Returns the note `value` sealed whole, as a JSON string.
pub(super) fn seal_note(key: &SealKey, note_key: &str, value: &Value) -> Value {
    let json = serde_json::to_vec(value).unwrap_or_default();
    Value::String(key.seal(&json, &note_context(note_key)))
}

/// Returns the note as it was written: opened when sealed, as stored when plain (a legacy
/// note from before sealing).
///
/// # Errors
/// [`StoreError::Corrupt`] naming the note when a sealed note does not open or its content
/// is not JSON.
pub(super) fn open_note(key: &SealKey, note_key: &str, value: Value) -> Result<Value, StoreError> {
    let Some(sealed) = value.as_str().filter(|text| is_sealed(text)) else {
        return Ok(value);
    };
    let corrupt =
        |message: String| StoreError::Corrupt { what: "note", key: note_key.to_owned(), message };
    let json =
        key.open(sealed, &note_context(note_key)).map_err(|error| corrupt(error.to_string()))?;
    serde_json::from_slice(&json).map_err(|error| corrupt(error.to_string()))
}
