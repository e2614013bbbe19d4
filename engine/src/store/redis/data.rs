//! [`Store`] on Redis: definitions (unfenced), states, events and claims (fenced).

use std::collections::BTreeMap;

use ::redis::{Cmd, Value};
use async_trait::async_trait;
use serde::de::DeserializeOwned;

use super::fenced::{Fate, Item};
use super::scripts::{DELETE_MONITOR_DATA, LIST_PAGE, TAKE_DESTRUCTIVE};
use super::wire::{Batch, reply};
use super::{RedisStore, decode, encode, keys};
use crate::access::{ApiToken, AuditEntry};
use crate::error::StoreError;
use crate::model::{Event, Monitor, MonitorId, MonitorState, Reaction, ReactionId};
use crate::store::{Recorded, Store, Transition, record};

/// Definitions fetched per script call when listing.
const LIST_PAGE_MAX: usize = 500;

fn cmd(name: &str) -> Cmd {
    ::redis::cmd(name)
}

impl RedisStore {
    /// Returns one definition from `hash`.
    async fn get_definition<T: DeserializeOwned>(
        &self,
        what: &'static str,
        hash: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let value = self.send_one("get definition", cmd("HGET").arg(hash).arg(id).take()).await?;
        let bytes: Option<Vec<u8>> = reply("get definition", value)?;
        bytes.map(|bytes| decode(what, id, &bytes)).transpose()
    }

    /// Returns up to `limit` definitions ordered by id, strictly after `after`.
    async fn list_definitions<T: DeserializeOwned>(
        &self,
        what: &'static str,
        (index, hash): (&str, &str),
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let context = "list definitions";
        let mut records = Vec::new();
        let mut cursor = after.map(str::to_owned);
        while records.len() < limit {
            let page = (limit - records.len()).min(LIST_PAGE_MAX);
            let min = cursor.as_ref().map_or_else(|| "-".to_owned(), |id| format!("({id}"));
            let mut call = LIST_PAGE.evalsha(&[index.to_owned(), hash.to_owned()]);
            call.arg(min).arg(page);
            let value = self.send_script(context, &LIST_PAGE, call).await?;
            let (ids, values): (Vec<String>, Vec<Option<Vec<u8>>>) = reply(context, value)?;
            for (id, bytes) in ids.iter().zip(values) {
                // An id indexed without a record is a write caught half-way: skip it.
                if let Some(bytes) = bytes {
                    records.push(decode(what, id, &bytes)?);
                }
            }
            match ids.last() {
                Some(last) if ids.len() == page => cursor = Some(last.clone()),
                _ => break,
            }
        }
        Ok(records)
    }

    /// Queues the deletion of one definition from `hash` and `index` (the HDEL's reply says
    /// whether it existed).
    fn delete_definition_cmds(batch: &mut Batch, (index, hash): (&str, &str), id: &str) {
        batch.push(cmd("HDEL").arg(hash).arg(id).take());
        batch.push(cmd("ZREM").arg(index).arg(id).take());
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn put_monitor(&self, monitor: &Monitor) -> Result<(), StoreError> {
        self.put_monitors(std::slice::from_ref(monitor)).await
    }

    async fn put_monitors(&self, monitors: &[Monitor]) -> Result<(), StoreError> {
        if monitors.is_empty() {
            return Ok(());
        }
        let mut hset = cmd("HSET");
        let mut zadd = cmd("ZADD");
        hset.arg(keys::MONITORS);
        zadd.arg(keys::MONITOR_IDS);
        let mut ids: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for monitor in monitors {
            hset.arg(monitor.id.as_str()).arg(encode(monitor)?);
            zadd.arg(0).arg(monitor.id.as_str());
            ids.entry(self.partition_of(&monitor.id).0).or_default().push(monitor.id.as_str());
        }
        // The definitions, all or none; then their partitions learn the ids, which lets state
        // and event writes for them through, and their definitions versions grow (after the write, so that
        // a reader who saw the old version and then loads again sees the new definitions).
        self.transaction("put monitors", vec![hset, zadd]).await?;
        let mut batch = Batch::new();
        for (partition, ids) in ids {
            let p = keys::Partition(partition);
            batch.push(cmd("SADD").arg(p.ids()).arg(ids).take());
            batch.push(cmd("INCR").arg(p.definitions_version()).take());
        }
        self.send("put monitors", batch).await.map(drop)
    }

    async fn get_monitor(&self, id: &MonitorId) -> Result<Option<Monitor>, StoreError> {
        self.get_definition("monitor", keys::MONITORS, id.as_str()).await
    }

    async fn list_monitors(
        &self,
        after: Option<&MonitorId>,
        limit: usize,
    ) -> Result<Vec<Monitor>, StoreError> {
        let after = after.map(MonitorId::as_str);
        self.list_definitions("monitor", (keys::MONITOR_IDS, keys::MONITORS), after, limit).await
    }

    async fn delete_monitor(&self, id: &MonitorId) -> Result<bool, StoreError> {
        let p = self.partition_of(id);
        let mut batch = Batch::new();
        Self::delete_definition_cmds(&mut batch, (keys::MONITOR_IDS, keys::MONITORS), id.as_str());
        let keys =
            [p.ids(), p.states(), p.events(id.as_str()), p.open_claims(), p.definitions_version()];
        let mut call = DELETE_MONITOR_DATA.evalsha(&keys);
        call.arg(id.as_str()).arg(p.claim_prefix());
        batch.push_script(&DELETE_MONITOR_DATA, call);
        let replies = self.send("delete monitor", batch).await?;
        let removed: i64 =
            reply("delete monitor", replies.into_iter().next().unwrap_or(Value::Nil))?;
        Ok(removed > 0)
    }

    async fn put_reaction(&self, reaction: &Reaction) -> Result<(), StoreError> {
        let hset = cmd("HSET")
            .arg(keys::REACTIONS)
            .arg(reaction.id.as_str())
            .arg(encode(reaction)?)
            .take();
        let zadd = cmd("ZADD").arg(keys::REACTION_IDS).arg(0).arg(reaction.id.as_str()).take();
        self.transaction("put reaction", vec![hset, zadd]).await
    }

    async fn get_reaction(&self, id: &ReactionId) -> Result<Option<Reaction>, StoreError> {
        self.get_definition("reaction", keys::REACTIONS, id.as_str()).await
    }

    async fn list_reactions(
        &self,
        after: Option<&ReactionId>,
        limit: usize,
    ) -> Result<Vec<Reaction>, StoreError> {
        let after = after.map(ReactionId::as_str);
        self.list_definitions("reaction", (keys::REACTION_IDS, keys::REACTIONS), after, limit).await
    }

    async fn delete_reaction(&self, id: &ReactionId) -> Result<bool, StoreError> {
        let mut batch = Batch::new();
        Self::delete_definition_cmds(
            &mut batch,
            (keys::REACTION_IDS, keys::REACTIONS),
            id.as_str(),
        );
        let replies = self.send("delete reaction", batch).await?;
        let removed: i64 =
            reply("delete reaction", replies.into_iter().next().unwrap_or(Value::Nil))?;
        Ok(removed > 0)
    }

    async fn get_note(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.get_definition("note", keys::NOTES, key).await
    }

    async fn put_note(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let hset = cmd("HSET").arg(keys::NOTES).arg(key).arg(encode(value)?).take();
        self.send_one("put note", hset).await.map(drop)
    }

    async fn delete_note(&self, key: &str) -> Result<bool, StoreError> {
        let hdel = cmd("HDEL").arg(keys::NOTES).arg(key).take();
        let removed: i64 = reply("delete note", self.send_one("delete note", hdel).await?)?;
        Ok(removed > 0)
    }

    async fn create_token(&self, token: &ApiToken) -> Result<bool, StoreError> {
        self.create_token_record(token).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.token_record_by_hash(hash).await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.token_records().await
    }

    async fn delete_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.delete_token_record(id).await
    }

    async fn append_audit(&self, entry: &AuditEntry, keep: usize) -> Result<(), StoreError> {
        self.append_audit_record(entry, keep).await
    }

    async fn list_audit(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_records(before, limit).await
    }

    async fn take_destructive(
        &self,
        wanted: u32,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<u32, StoreError> {
        let keys = [keys::BRAKE_DESTRUCTIVE.to_owned(), keys::BRAKE_DESTRUCTIVE_SEQ.to_owned()];
        let mut call = TAKE_DESTRUCTIVE.evalsha(&keys);
        call.arg(wanted).arg(limit).arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        let mut batch = Batch::new();
        batch.push_script(&TAKE_DESTRUCTIVE, call);
        let replies = self.send("take destructive budget", batch).await?;
        let granted: u32 =
            reply("take destructive budget", replies.into_iter().next().unwrap_or(Value::Nil))?;
        Ok(granted)
    }

    async fn get_state(&self, id: &MonitorId) -> Result<Option<MonitorState>, StoreError> {
        let get = cmd("HGET").arg(self.partition_of(id).states()).arg(id.as_str()).take();
        let bytes: Option<Vec<u8>> = reply("get state", self.send_one("get state", get).await?)?;
        bytes.map(|bytes| record::decode_state(id.as_str(), &bytes)).transpose()
    }

    async fn load_states(&self) -> Result<Vec<(MonitorId, MonitorState)>, StoreError> {
        let mut batch = Batch::new();
        for partition in 0..self.partitions {
            batch.push(cmd("HGETALL").arg(keys::Partition(partition).states()).take());
        }
        let mut states = Vec::new();
        for value in self.send("load states", batch).await? {
            states.extend(decode_states(reply("load states", value)?)?);
        }
        Ok(states)
    }

    async fn record_many(&self, transitions: &[Transition]) -> Result<Recorded, StoreError> {
        let mut items = Vec::with_capacity(transitions.len());
        for transition in transitions {
            let mut item = Item::new(transition.id.clone())
                .state(&transition.state)?
                .claims(&transition.claims);
            item.add_events(&transition.events)?;
            items.push(item);
        }
        let mut recorded = Recorded::default();
        for share in self.write_fenced("record transitions", items).await? {
            match share.fate {
                Fate::Written(taken) => recorded.already_claimed.extend(taken),
                Fate::NotHeld | Fate::Refused => recorded.fenced.extend(share.monitors),
            }
        }
        Ok(recorded)
    }

    async fn put_states(&self, states: &[(MonitorId, MonitorState)]) -> Result<(), StoreError> {
        let items = states
            .iter()
            .map(|(id, state)| Item::new(id.clone()).state(state))
            .collect::<Result<Vec<_>, _>>()?;
        for share in self.write_fenced("put states", items).await? {
            if share.fate != Fate::Written(Vec::new()) {
                tracing::debug!(
                    partition = share.partition,
                    "states of a fenced partition skipped"
                );
            }
        }
        Ok(())
    }

    async fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        // One item per monitor (its events in order): one list push and trim per monitor.
        let mut by_monitor: Vec<(MonitorId, Vec<&Event>)> = Vec::new();
        for event in events {
            match by_monitor.iter_mut().find(|(id, _)| *id == event.monitor_id) {
                Some((_, mine)) => mine.push(event),
                None => by_monitor.push((event.monitor_id.clone(), vec![event])),
            }
        }
        if let Some((id, _)) =
            by_monitor.iter().find(|(id, _)| self.fences.epoch(self.partition_of(id).0).is_none())
        {
            return Err(StoreError::Fenced { partition: self.partition_of(id).0 });
        }
        let mut items = Vec::with_capacity(by_monitor.len());
        for (id, mine) in by_monitor {
            let mut item = Item::new(id);
            item.add_events(mine)?;
            items.push(item);
        }
        let shares = self.write_fenced("append events", items).await?;
        match shares.iter().find(|share| share.fate != Fate::Written(Vec::new())) {
            Some(share) => Err(StoreError::Fenced { partition: share.partition }),
            None => Ok(()),
        }
    }

    async fn list_events(
        &self,
        id: &MonitorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The list is bounded by the history limit: with a cursor, read it whole and filter.
        let stop = match before {
            Some(_) => -1,
            None => i64::try_from(limit).unwrap_or(i64::MAX) - 1,
        };
        let key = self.partition_of(id).events(id.as_str());
        let range = cmd("LRANGE").arg(&key).arg(0).arg(stop).take();
        let records: Vec<Vec<u8>> =
            reply("list events", self.send_one("list events", range).await?)?;
        let mut events = Vec::new();
        for (index, bytes) in records.iter().enumerate() {
            let event: Event = decode("event", &format!("{key}[{index}]"), bytes)?;
            if before.is_none_or(|before| event.id.as_str() < before) {
                events.push(event);
                if events.len() >= limit {
                    break;
                }
            }
        }
        Ok(events)
    }
}

/// Decodes an `HGETALL` of a state hash.
pub(super) fn decode_states(
    fields: BTreeMap<String, Vec<u8>>,
) -> Result<Vec<(MonitorId, MonitorState)>, StoreError> {
    fields
        .into_iter()
        .map(|(id, bytes)| {
            let state = record::decode_state(&id, &bytes)?;
            Ok((MonitorId::from(id), state))
        })
        .collect()
}
