//! The messages nodes exchange over the cluster transport, and their byte encoding.
//!
//! Every message travels inside an [`Envelope`] that carries a format version and the sender's
//! node id. The envelope and its body are JSON: the domain payloads (`CheckOutcome` is an
//! internally tagged enum) need a self-describing format anyway, and one format keeps decoding
//! errors readable. Variants are matched by name, so a variant is never renamed; new variants
//! and new optional fields may be added (an old node answers an unknown request with a decode
//! failure, which the sender sees as [`PeerReply::Failed`]).

use cloudroutes_engine::model::{CheckOutcome, Method, MonitorId, MonitorState, ReactionId};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The envelope format this build writes; it reads this version and any later one whose body
/// still decodes.
pub const WIRE_VERSION: u16 = 1;

/// A question asked of a monitor's owner; it is always answered with a [`PeerReply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Runs the monitor's check now and answers with the outcome and the new state.
    RunNow {
        /// The monitor to run.
        monitor_id: MonitorId,
    },
    /// Folds a result produced elsewhere (webhook, manual) into the monitor's state.
    Observe {
        /// The monitor the result is for.
        monitor_id: MonitorId,
        /// The result.
        outcome: CheckOutcome,
        /// How the result was produced.
        method: Method,
    },
    /// Hands a webhook delivery to the monitor's own check (heartbeat pings, alert updates)
    /// and answers with the state afterwards ([`PeerReply::Observed`]).
    Deliver {
        /// The monitor the delivery is for.
        monitor_id: MonitorId,
        /// The delivery.
        delivery: cloudroutes_checks::Delivery,
    },
}

/// The owner's answer to a [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerReply {
    /// The check ran (answer to [`PeerRequest::RunNow`]).
    Ran {
        /// What the check found.
        outcome: CheckOutcome,
        /// The monitor's state after folding the outcome in.
        state: MonitorState,
    },
    /// The result was folded in (answer to [`PeerRequest::Observe`]).
    Observed {
        /// The monitor's state after folding the result in.
        state: MonitorState,
    },
    /// The receiver does not run this monitor (any more).
    NotOwner,
    /// The receiver does not know this monitor.
    NotFound,
    /// The receiver could not handle the request.
    Failed {
        /// Why, for logs and API errors.
        message: String,
    },
}

/// A fire-and-forget notice: definitions changed in the store, so cached copies are stale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerNotice {
    /// A monitor's definition was created or changed.
    MonitorChanged {
        /// The monitor.
        monitor_id: MonitorId,
    },
    /// A monitor was deleted.
    MonitorDeleted {
        /// The monitor.
        monitor_id: MonitorId,
    },
    /// A reaction's definition was created or changed.
    ReactionChanged {
        /// The reaction.
        reaction_id: ReactionId,
    },
    /// A reaction was deleted.
    ReactionDeleted {
        /// The reaction.
        reaction_id: ReactionId,
    },
}

/// What travels on the wire: a version, the sender and one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The envelope format version ([`WIRE_VERSION`] when written by this build).
    pub version: u16,
    /// The sending node's id.
    pub from: String,
    /// The message.
    pub body: T,
}

/// A message that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Serializing the message failed.
    #[error("cannot encode cluster message: {0}")]
    Encode(#[source] serde_json::Error),
    /// The bytes are not a message this build understands.
    #[error("cannot decode cluster message: {0}")]
    Decode(#[source] serde_json::Error),
    /// The envelope's version is not one this build can read.
    #[error("unsupported cluster message version {0}")]
    Version(u16),
}

/// Returns `body` from node `from` as envelope bytes.
///
/// # Errors
/// [`WireError::Encode`] when the body cannot be serialized.
pub fn encode<T: Serialize>(from: &str, body: &T) -> Result<Vec<u8>, WireError> {
    let envelope = Envelope { version: WIRE_VERSION, from: from.to_owned(), body };
    serde_json::to_vec(&envelope).map_err(WireError::Encode)
}

/// Returns the sender and the message carried by envelope bytes.
///
/// # Errors
/// [`WireError::Decode`] for bytes that are not an envelope of `T`, [`WireError::Version`] for
/// version 0.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(String, T), WireError> {
    let envelope: Envelope<T> = serde_json::from_slice(bytes).map_err(WireError::Decode)?;
    if envelope.version == 0 {
        return Err(WireError::Version(envelope.version));
    }
    Ok((envelope.from, envelope.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_with_its_sender() {
        let request = PeerRequest::Observe {
            monitor_id: MonitorId::from("m1"),
            outcome: CheckOutcome::Failed { reason: "HTTP 500".into() },
            method: Method::Webhook,
        };
        let bytes = encode("node-a", &request).unwrap();
        let (from, decoded): (String, PeerRequest) = decode(&bytes).unwrap();
        assert_eq!(from, "node-a");
        assert_eq!(decoded, request);
        let alerts = vec![cloudroutes_checks::intake::AlertUpdate {
            key: "fp-1".into(),
            firing: true,
            summary: "InstanceDown: web-1".into(),
        }];
        let delivery = PeerRequest::Deliver {
            monitor_id: MonitorId::from("m1"),
            delivery: cloudroutes_checks::Delivery::Alerts(alerts),
        };
        let (_, decoded): (String, PeerRequest) =
            decode(&encode("node-a", &delivery).unwrap()).unwrap();
        assert_eq!(decoded, delivery);
    }

    #[test]
    fn envelope_carries_version_and_variant_names() {
        let notice = PeerNotice::ReactionDeleted { reaction_id: ReactionId::from("r1") };
        let json: serde_json::Value =
            serde_json::from_slice(&encode("a", &notice).unwrap()).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["body"]["ReactionDeleted"]["reaction_id"], "r1");
    }

    #[test]
    fn reply_with_state_round_trips() {
        let reply = PeerReply::Ran {
            outcome: CheckOutcome::Healthy { reason: "HTTP 200".into() },
            state: MonitorState::default(),
        };
        let (_, decoded): (String, PeerReply) = decode(&encode("b", &reply).unwrap()).unwrap();
        assert_eq!(decoded, reply);
    }

    #[test]
    fn rejects_unknown_variant_and_version_zero() {
        let unknown = br#"{"version":1,"from":"a","body":{"Reboot":{}}}"#;
        assert!(matches!(decode::<PeerRequest>(unknown), Err(WireError::Decode(_))));
        let zero = br#"{"version":0,"from":"a","body":"NotOwner"}"#;
        assert!(matches!(decode::<PeerReply>(zero), Err(WireError::Version(0))));
    }

    #[test]
    fn later_version_with_known_body_still_decodes() {
        let later = br#"{"version":7,"from":"a","body":"NotFound","extra":true}"#;
        assert_eq!(decode::<PeerReply>(later).unwrap(), ("a".to_owned(), PeerReply::NotFound));
    }
}
