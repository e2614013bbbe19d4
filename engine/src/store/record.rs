//! The record format every backend stores: a version byte ([`RECORD_VERSION`]), then JSON.
//!
//! A monitor's state is the exception: it is written after nearly every check (in batches), so
//! it is stored in a compact binary form ([`STATE_RECORD_VERSION`], then bincode), about a fifth
//! of its JSON. State records in JSON, written by earlier versions, still read.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{MonitorState, ReactionId, ReactionMemory, Status, Timestamp};

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

/// The version byte of a binary state record.
pub const STATE_RECORD_VERSION: u8 = 2;

/// Appends a state record (the binary form) to `bytes`.
pub(crate) fn encode_state_into(
    bytes: &mut Vec<u8>,
    state: &MonitorState,
) -> Result<(), bincode::error::EncodeError> {
    bytes.push(STATE_RECORD_VERSION);
    bincode::serde::encode_into_std_write(StateWire::of(state), bytes, bincode::config::standard())
        .map(drop)
}

/// Encodes a state record (the binary form).
pub(crate) fn encode_state(state: &MonitorState) -> Result<Vec<u8>, bincode::error::EncodeError> {
    let mut bytes = Vec::with_capacity(64);
    encode_state_into(&mut bytes, state)?;
    Ok(bytes)
}

/// Decodes a state record, binary or (written by an earlier version) JSON.
pub(crate) fn decode_state(key: &str, bytes: &[u8]) -> Result<MonitorState, StoreError> {
    let Some((&STATE_RECORD_VERSION, body)) = bytes.split_first() else {
        return decode("state", key, bytes);
    };
    let corrupt = corrupt("state", key);
    let (wire, used): (StateWire<'static>, usize) =
        bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map_err(|error| corrupt(error.to_string()))?;
    if used != body.len() {
        return Err(corrupt(format!("{} bytes after the record", body.len() - used)));
    }
    wire.into_state().map_err(corrupt)
}

/// A state as its binary record holds it: times as Unix nanoseconds, the status as a number.
/// (bincode is not self-describing, so this layout is the format: change it only with a new
/// version byte.)
#[derive(Serialize, Deserialize)]
struct StateWire<'a> {
    status: u8,
    streak: u64,
    episode: u64,
    manual_hold: bool,
    last_check_at: Option<i128>,
    last_change_at: Option<i128>,
    last_reason: Option<Cow<'a, str>>,
    owner: Option<Cow<'a, str>>,
    last_duration_ms: Option<u64>,
    reactions: Vec<(Cow<'a, str>, MemoryWire)>,
}

/// A reaction's memory in a binary state record.
#[derive(Serialize, Deserialize)]
struct MemoryWire {
    failed_episode: u64,
    failed_at: Option<i128>,
    failed_firings: u32,
    healthy_episode: u64,
    last_fired_at: Option<i128>,
}

fn nanos(at: Option<Timestamp>) -> Option<i128> {
    at.map(OffsetDateTime::unix_timestamp_nanos)
}

fn time_of(nanos: Option<i128>) -> Result<Option<Timestamp>, String> {
    nanos
        .map(|n| OffsetDateTime::from_unix_timestamp_nanos(n).map_err(|error| error.to_string()))
        .transpose()
}

impl<'a> StateWire<'a> {
    fn of(state: &'a MonitorState) -> Self {
        let memory = |m: &ReactionMemory| MemoryWire {
            failed_episode: m.failed_episode,
            failed_at: nanos(m.failed_at),
            failed_firings: m.failed_firings,
            healthy_episode: m.healthy_episode,
            last_fired_at: nanos(m.last_fired_at),
        };
        Self {
            status: match state.status {
                Status::Unknown => 0,
                Status::Healthy => 1,
                Status::Failed => 2,
            },
            streak: state.streak,
            episode: state.episode,
            manual_hold: state.manual_hold,
            last_check_at: nanos(state.last_check_at),
            last_change_at: nanos(state.last_change_at),
            last_reason: state.last_reason.as_deref().map(Cow::Borrowed),
            owner: state.owner.as_deref().map(Cow::Borrowed),
            last_duration_ms: state.last_duration_ms,
            reactions: state
                .reactions
                .iter()
                .map(|(id, m)| (Cow::Borrowed(id.as_str()), memory(m)))
                .collect(),
        }
    }

    fn into_state(self) -> Result<MonitorState, String> {
        let status = match self.status {
            0 => Status::Unknown,
            1 => Status::Healthy,
            2 => Status::Failed,
            other => return Err(format!("unknown status {other}")),
        };
        let mut reactions = BTreeMap::new();
        for (id, m) in self.reactions {
            let memory = ReactionMemory {
                failed_episode: m.failed_episode,
                failed_at: time_of(m.failed_at)?,
                failed_firings: m.failed_firings,
                healthy_episode: m.healthy_episode,
                last_fired_at: time_of(m.last_fired_at)?,
            };
            reactions.insert(ReactionId::from(id.into_owned()), memory);
        }
        Ok(MonitorState {
            status,
            streak: self.streak,
            episode: self.episode,
            manual_hold: self.manual_hold,
            last_check_at: time_of(self.last_check_at)?,
            last_change_at: time_of(self.last_change_at)?,
            last_reason: self.last_reason.map(Cow::into_owned),
            owner: self.owner.map(|owner| owner.into()),
            last_duration_ms: self.last_duration_ms,
            reactions,
        })
    }
}

/// Returns what makes a [`StoreError::Corrupt`] for the record `what` at `key` from a message.
fn corrupt<'k>(what: &'static str, key: &'k str) -> impl Fn(String) -> StoreError + 'k {
    move |message| StoreError::Corrupt { what, key: key.to_owned(), message }
}

/// Decodes a record written by [`encode`]; anything else is [`StoreError::Corrupt`] naming
/// the kind of record (`what`) and its key.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let corrupt = corrupt(what, key);
    match bytes.split_first() {
        Some((&RECORD_VERSION, json)) => {
            serde_json::from_slice(json).map_err(|error| corrupt(error.to_string()))
        }
        Some((version, _)) => Err(corrupt(format!("unknown record version {version}"))),
        None => Err(corrupt("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_state;

    fn corrupt_message(result: Result<MonitorState, StoreError>) -> String {
        match result {
            Err(StoreError::Corrupt { what: "state", key, message }) if key == "m1" => message,
            other => panic!("expected a corrupt state record naming m1, got {other:?}"),
        }
    }

    #[test]
    fn a_state_round_trips_through_its_binary_record() {
        let mut state = sample_state(41);
        state.last_check_at =
            OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).ok();
        state.reactions.insert(ReactionId::from("r2"), ReactionMemory::default());
        let bytes = encode_state(&state).unwrap();
        assert_eq!(bytes[0], STATE_RECORD_VERSION);
        assert_eq!(decode_state("m1", &bytes).unwrap(), state);
        let empty = MonitorState::default();
        assert_eq!(decode_state("m1", &encode_state(&empty).unwrap()).unwrap(), empty);
        let json = encode(&state).unwrap();
        assert!(bytes.len() * 3 < json.len(), "binary {} bytes, JSON {}", bytes.len(), json.len());
    }

    #[test]
    fn a_json_state_written_by_an_earlier_version_still_reads() {
        let state = sample_state(7);
        let json = encode(&state).unwrap();
        assert_eq!(json[0], RECORD_VERSION);
        assert_eq!(decode_state("m1", &json).unwrap(), state);
    }

    #[test]
    fn a_damaged_binary_state_is_a_corrupt_record() {
        let bytes = encode_state(&sample_state(3)).unwrap();
        let cut = corrupt_message(decode_state("m1", &bytes[..bytes.len() - 2]));
        assert!(!cut.is_empty());
        let mut longer = bytes.clone();
        longer.push(0);
        let trailing = corrupt_message(decode_state("m1", &longer));
        assert!(trailing.contains("1 bytes after the record"), "{trailing}");
        let mut status = bytes.clone();
        status[1] = 9;
        let unknown = corrupt_message(decode_state("m1", &status));
        assert!(unknown.contains("unknown status 9"), "{unknown}");
        let version = corrupt_message(decode_state("m1", b"\x07abc"));
        assert!(version.contains("unknown record version 7"), "{version}");
    }
}
