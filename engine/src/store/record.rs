//! The record format every backend stores: a version byte ([`RECORD_VERSION`]), then JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// The version byte that starts every stored record.
pub const RECORD_VERSION: u8 = 1;

/// Encodes a record: the version byte, then JSON.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = Vec::new();
    encode_into(&mut bytes, value)?;
    Ok(bytes)
}

/// Appends a record, as [`encode`] makes it, to `bytes` (a buffer reused across a batch).
pub(crate) fn encode_into<T: Serialize>(
    bytes: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    bytes.push(RECORD_VERSION);
    serde_json::to_writer(bytes, value)
}

/// Decodes a record written by [`encode`]; anything else is [`StoreError::Corrupt`] naming
/// the kind of record (`what`) and its key.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt { what, key: key.to_owned(), message };
    match bytes.split_first() {
        Some((&RECORD_VERSION, json)) => {
            serde_json::from_slice(json).map_err(|error| corrupt(error.to_string()))
        }
        Some((version, _)) => Err(corrupt(format!("unknown record version {version}"))),
        None => Err(corrupt("empty record".into())),
    }
}
