//! Fenced writes: states, events and claims, one script per partition, all partitions of a
//! batch in one pipeline.

use std::collections::BTreeMap;

use super::scripts::FENCED_WRITE;
use super::wire::{Batch, redis_error, reply};
use super::{CLAIM_TTL, RedisStore, encode, keys};
use crate::cluster::OpenClaim;
use crate::error::StoreError;
use crate::model::{Event, EventKind, MonitorId, MonitorState};
use crate::store::{Claim, record};

/// One monitor's share of a fenced write.
#[derive(Debug)]
pub(super) struct Item {
    monitor: MonitorId,
    state: Option<Vec<u8>>,
    events: Vec<Vec<u8>>,
    claims: Vec<Claim>,
    /// Claims the events settle: (claim key, outcome).
    closes: Vec<(String, &'static str)>,
}

impl Item {
    /// Returns an empty item for `monitor`.
    pub(super) fn new(monitor: MonitorId) -> Self {
        Self { monitor, state: None, events: Vec::new(), claims: Vec::new(), closes: Vec::new() }
    }

    /// Sets the state to write.
    pub(super) fn state(mut self, state: &MonitorState) -> Result<Self, StoreError> {
        self.state = Some(record::encode_state(state).map_err(redis_error("encode state record"))?);
        Ok(self)
    }

    /// Adds events to append, in order; a reaction event that names a claim settles it.
    pub(super) fn add_events<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e Event>,
    ) -> Result<(), StoreError> {
        for event in events {
            self.events.push(encode(event)?);
            if let EventKind::Reaction { claim: Some(key), outcome, .. } = &event.kind {
                self.closes.push((key.clone(), outcome.as_str()));
            }
        }
        Ok(())
    }

    /// Adds claims to take.
    pub(super) fn claims(mut self, claims: &[Claim]) -> Self {
        self.claims.extend_from_slice(claims);
        self
    }
}

/// What became of one partition's share.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Written; these claim keys were already taken.
    Written(Vec<String>),
    /// Not sent: this node's [`crate::cluster::Fences`] holds no current epoch for it.
    NotHeld,
    /// Refused by the script: the lease no longer reads `node|epoch`.
    Refused,
}

/// One partition's share of a fenced write and its fate.
#[derive(Debug)]
pub(super) struct Share {
    /// The partition.
    pub(super) partition: u32,
    /// Its monitors, in first-appearance order, without duplicates.
    pub(super) monitors: Vec<MonitorId>,
    /// What became of it.
    pub(super) fate: Fate,
}

impl RedisStore {
    /// Writes `items` fenced: groups them by partition (keeping their order), sends one
    /// script per partition this node holds, all in one round trip, and reports each
    /// partition's fate.
    pub(super) async fn write_fenced(
        &self,
        context: &'static str,
        items: Vec<Item>,
    ) -> Result<Vec<Share>, StoreError> {
        let mut groups: BTreeMap<u32, Vec<Item>> = BTreeMap::new();
        for item in items {
            groups.entry(self.partition_of(&item.monitor).0).or_default().push(item);
        }
        let at = time::OffsetDateTime::now_utc();
        let mut shares = Vec::with_capacity(groups.len());
        let mut batch = Batch::new();
        for (partition, items) in groups {
            let mut monitors: Vec<MonitorId> = Vec::new();
            for item in &items {
                if !monitors.contains(&item.monitor) {
                    monitors.push(item.monitor.clone());
                }
            }
            let fate = match self.fences.epoch(partition) {
                Some(epoch) => {
                    batch
                        .push_script(&FENCED_WRITE, self.fenced_cmd(partition, epoch, &items, at)?);
                    Fate::Written(Vec::new())
                }
                None => Fate::NotHeld,
            };
            shares.push(Share { partition, monitors, fate });
        }
        let mut replies = self.send(context, batch).await?.into_iter();
        for share in shares.iter_mut().filter(|share| share.fate != Fate::NotHeld) {
            let reply_value = replies
                .next()
                .ok_or(StoreError::Redis { context, message: "missing script reply".into() })?;
            let (written, taken): (i64, Vec<String>) = reply(context, reply_value)?;
            share.fate = if written == 1 { Fate::Written(taken) } else { Fate::Refused };
            if share.fate == Fate::Refused {
                tracing::warn!(partition = share.partition, "fenced write refused: lease lost");
            }
        }
        Ok(shares)
    }

    /// Builds the fenced-write script call of one partition's items.
    fn fenced_cmd(
        &self,
        partition: u32,
        epoch: u64,
        items: &[Item],
        at: time::OffsetDateTime,
    ) -> Result<::redis::Cmd, StoreError> {
        let p = keys::Partition(partition);
        let mut keys = vec![p.lease(), p.ids(), p.states(), p.open_claims(), p.states_version()];
        let mut args: Vec<Vec<u8>> = vec![
            format!("{}|{epoch}", self.node_id).into_bytes(),
            (self.history_max_events - 1).to_string().into_bytes(),
            CLAIM_TTL.as_millis().to_string().into_bytes(),
            items.len().to_string().into_bytes(),
        ];
        for item in items {
            args.push(item.monitor.0.as_bytes().to_vec());
            args.push(item.state.clone().unwrap_or_default());
            args.push(item.events.len().to_string().into_bytes());
            if !item.events.is_empty() {
                keys.push(p.events(item.monitor.as_str()));
                args.extend(item.events.iter().cloned());
            }
            args.push(item.claims.len().to_string().into_bytes());
            for claim in &item.claims {
                keys.push(p.claim(&claim.key));
                let record = OpenClaim {
                    key: claim.key.clone(),
                    monitor_id: item.monitor.clone(),
                    reaction_id: claim.reaction_id.clone(),
                    episode: claim.episode,
                    destructive: claim.destructive,
                    node: self.node_id.clone(),
                    epoch,
                    at,
                };
                args.push(claim.key.clone().into_bytes());
                args.push(encode(&record)?);
            }
            args.push(item.closes.len().to_string().into_bytes());
            for (key, outcome) in &item.closes {
                keys.push(p.claim(key));
                args.push(key.clone().into_bytes());
                args.push(outcome.as_bytes().to_vec());
            }
        }
        let mut cmd = FENCED_WRITE.evalsha(&keys);
        for arg in &args {
            cmd.arg(arg.as_slice());
        }
        Ok(cmd)
    }
}
