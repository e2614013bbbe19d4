//! Claims left without an outcome: a node claimed a firing (in the same fenced write as the
//! decision) and stopped before recording what came of it. The partition's current owner
//! settles such a claim once it is surely abandoned: idempotent reactions run again under the
//! same key, destructive ones never do, and the history says so.

use std::collections::HashSet;
use std::time::Duration;

use cloudroutes_engine::cluster::OpenClaim;
use cloudroutes_engine::{Event, EventKind, Method, ReactionOutcome, Status, Timestamp};
use cloudroutes_reactions::{Effect, Incident};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::Node;

/// What to do with one open claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimAction {
    /// Not abandoned yet: its node is alive and the firing may still be running.
    Leave,
    /// Run the reaction again, under the same key.
    Retry,
    /// Close it without running anything; the detail goes into the history.
    Close(String),
}

/// Decides what becomes of `claim`: abandoned when the node that took it is not alive (and is
/// not this node), or when it is older than `bound` (longer than any run can last); then
/// retried if the reaction is idempotent (`effect`), closed otherwise (destructive, or the
/// reaction is gone: `effect` is `None`).
pub(crate) fn claim_action(
    claim: &OpenClaim,
    me: &str,
    alive: &HashSet<String>,
    now: Timestamp,
    bound: Duration,
    effect: Option<Effect>,
) -> ClaimAction {
    let age: Duration = (now - claim.at).try_into().unwrap_or(Duration::ZERO);
    let node_gone = claim.node != me && !alive.contains(&claim.node);
    if !node_gone && age <= bound {
        return ClaimAction::Leave;
    }
    let why = match effect {
        Some(Effect::Idempotent) if !claim.destructive => return ClaimAction::Retry,
        Some(_) => "a destructive reaction never runs twice by itself, so check the target",
        None => "the reaction no longer exists",
    };
    ClaimAction::Close(format!(
        "not retried: node {} claimed this firing (epoch {}) at {} and stopped before recording \
         an outcome; {why}",
        claim.node, claim.epoch, claim.at
    ))
}

impl Node {
    /// Settles the abandoned ones among a held partition's open claims.
    pub(crate) async fn settle_abandoned(&self, claims: Vec<OpenClaim>) {
        let Some(cluster) = self.cluster() else { return };
        let alive: HashSet<String> = {
            let members = cluster.members.read().unwrap_or_else(|poison| poison.into_inner());
            members.iter().map(|m| m.id.clone()).collect()
        };
        let config = &self.inner.config;
        let bound =
            Duration::from_millis(config.engine.reaction_timeout_ms + config.cluster.lease_ms);
        let now = OffsetDateTime::now_utc();
        for claim in claims {
            let reaction = self.inner.parts.book.get(&claim.reaction_id);
            let effect = reaction.as_ref().map(|r| r.runner.effect());
            match (claim_action(&claim, self.node_id(), &alive, now, bound, effect), reaction) {
                (ClaimAction::Retry, Some(reaction)) => {
                    info!(key = %claim.key, from = %claim.node, "retrying an abandoned idempotent firing");
                    let incident = self.retry_incident(&claim, &reaction.def.name);
                    self.inner.parts.firing.spawn(reaction, incident);
                }
                (ClaimAction::Close(detail), reaction) => {
                    warn!(key = %claim.key, from = %claim.node, "abandoned firing not retried");
                    let kind = reaction.as_ref().map_or("unknown", |r| r.runner.kind());
                    self.close_claim(&claim, kind, detail).await;
                }
                _ => {}
            }
        }
    }

    /// The incident a retried firing answers: the claimed one, run by this node.
    fn retry_incident(&self, claim: &OpenClaim, reaction_name: &str) -> Incident {
        let entry = self.inner.parts.board.get(&claim.monitor_id);
        let recovery = claim.key.contains(":recovery:");
        Incident {
            monitor_id: claim.monitor_id.clone(),
            monitor_name: entry.map(|e| e.monitor.name.clone()).unwrap_or_default(),
            reaction_id: claim.reaction_id.clone(),
            reaction_name: reaction_name.to_owned(),
            status: if recovery { Status::Healthy } else { Status::Failed },
            episode: claim.episode,
            reason: format!(
                "retrying a firing node {} claimed and left without an outcome",
                claim.node
            ),
            method: Method::Automatic,
            at: claim.at,
            idempotency_key: claim.key.clone(),
            node: self.node_id().to_owned(),
        }
    }

    /// Records a skipped outcome for `claim`, which closes it.
    async fn close_claim(&self, claim: &OpenClaim, kind: &str, detail: String) {
        let event = Event::new(
            claim.monitor_id.clone(),
            OffsetDateTime::now_utc(),
            EventKind::Reaction {
                reaction_id: claim.reaction_id.clone(),
                reaction_type: kind.to_owned(),
                outcome: ReactionOutcome::Skipped,
                episode: claim.episode,
                detail,
                node: self.node_id().to_owned(),
                claim: Some(claim.key.clone()),
            },
        );
        if let Err(err) = self.inner.parts.store.append_events(&[event]).await {
            warn!(key = %claim.key, error = %err, "could not settle an abandoned claim");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudroutes_engine::{MonitorId, ReactionId};

    fn claim(node: &str, age_secs: i64, destructive: bool) -> OpenClaim {
        OpenClaim {
            key: "m:r:3:failed:1".into(),
            monitor_id: MonitorId::from("m"),
            reaction_id: ReactionId::from("r"),
            episode: 3,
            destructive,
            node: node.into(),
            epoch: 7,
            at: OffsetDateTime::now_utc() - time::Duration::seconds(age_secs),
        }
    }

    #[test]
    fn abandoned_claims_are_retried_only_when_idempotent() {
        let alive: HashSet<String> = ["me", "peer"].iter().map(|s| (*s).to_owned()).collect();
        let bound = Duration::from_secs(40);
        let now = OffsetDateTime::now_utc();
        let idempotent = Some(Effect::Idempotent);
        let destructive = Some(Effect::Destructive);
        let cases = [
            // (claimed by, age, claimed as destructive, reaction's effect, expected)
            ("peer", 5, false, idempotent, "leave"),
            ("me", 5, false, idempotent, "leave"),
            ("gone", 5, false, idempotent, "retry"),
            ("gone", 5, true, idempotent, "close"),
            ("gone", 5, false, destructive, "close"),
            ("gone", 5, true, destructive, "close"),
            ("gone", 5, false, None, "close"),
            ("peer", 60, false, idempotent, "retry"),
            ("me", 60, true, destructive, "close"),
        ];
        for (node, age, flagged, effect, expected) in cases {
            let action = claim_action(&claim(node, age, flagged), "me", &alive, now, bound, effect);
            let got = match &action {
                ClaimAction::Leave => "leave",
                ClaimAction::Retry => "retry",
                ClaimAction::Close(_) => "close",
            };
            assert_eq!(got, expected, "claim by {node}, {age}s old, {flagged}, {effect:?}");
        }
    }

    #[test]
    fn a_closed_claim_says_why_nothing_ran() {
        let alive = HashSet::new();
        let now = OffsetDateTime::now_utc();
        let bound = Duration::from_secs(40);
        let ClaimAction::Close(detail) = claim_action(
            &claim("gone", 1, true),
            "me",
            &alive,
            now,
            bound,
            Some(Effect::Destructive),
        ) else {
            panic!("a destructive claim is closed");
        };
        assert!(detail.contains("node gone") && detail.contains("epoch 7"), "{detail}");
        assert!(detail.contains("never runs twice"), "{detail}");
        let ClaimAction::Close(detail) =
            claim_action(&claim("gone", 1, false), "me", &alive, now, bound, None)
        else {
            panic!("a claim of a deleted reaction is closed");
        };
        assert!(detail.contains("no longer exists"), "{detail}");
    }
}
