//! [`Coordinator`] on Redis: membership records, draining marks, partition leases and the
//! partitions' monitors, states and open claims.

use std::time::Duration;

use ::redis::Cmd;
use async_trait::async_trait;

use super::data::decode_states;
use super::scripts::{ACQUIRE, RELEASE, RENEW};
use super::wire::{Batch, reply};
use super::{RedisStore, decode, encode, keys, parse_lease};
use crate::cluster::{Acquired, Coordinator, Lease, Member, OpenClaim, PartitionVersion};
use crate::error::StoreError;
use crate::model::{Monitor, MonitorId, MonitorState};

fn cmd(name: &str) -> Cmd {
    ::redis::cmd(name)
}

/// Returns a TTL in whole milliseconds, at least 1 (`PX 0` is an error).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Reads a lease value, or reports it corrupt.
fn lease_value(partition: u32, value: &str) -> Result<(String, u64), StoreError> {
    parse_lease(value).ok_or_else(|| StoreError::Corrupt {
        what: "lease",
        key: keys::Partition(partition).lease(),
        message: format!("`{value}` is not `node|epoch`"),
    })
}

impl RedisStore {
    /// Sends one script call per lease (`RENEW` or `RELEASE`); returns whether each applied.
    async fn per_lease(
        &self,
        context: &'static str,
        script: &'static super::scripts::LuaScript,
        node: &str,
        leases: &[Lease],
        ttl: Option<Duration>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut batch = Batch::new();
        for lease in leases {
            let mut call = script.evalsha(&[keys::Partition(lease.partition).lease()]);
            call.arg(format!("{node}|{}", lease.epoch));
            if let Some(ttl) = ttl {
                call.arg(millis(ttl));
            }
            batch.push_script(script, call);
        }
        let replies = self.send(context, batch).await?;
        replies.into_iter().map(|value| Ok(reply::<i64>(context, value)? == 1)).collect()
    }
}

#[async_trait]
impl Coordinator for RedisStore {
    async fn heartbeat(&self, member: &Member, ttl: Duration) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        let record = encode(member)?;
        batch.push(
            cmd("SET").arg(keys::node(&member.id)).arg(record).arg("PX").arg(millis(ttl)).take(),
        );
        batch.push(cmd("SADD").arg(keys::NODES).arg(&member.id).take());
        self.send("heartbeat", batch).await.map(drop)
    }

    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        let context = "list members";
        let ids: Vec<String> =
            reply(context, self.send_one(context, cmd("SMEMBERS").arg(keys::NODES).take()).await?)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let record_keys: Vec<String> = ids.iter().map(|id| keys::node(id)).collect();
        let records: Vec<Option<Vec<u8>>> =
            reply(context, self.send_one(context, cmd("MGET").arg(&record_keys).take()).await?)?;
        let mut members = Vec::with_capacity(ids.len());
        let mut expired = Vec::new();
        for ((id, key), record) in ids.iter().zip(&record_keys).zip(records) {
            match record {
                Some(bytes) => members.push(decode::<Member>("member", key, &bytes)?),
                None => expired.push(id.as_str()),
            }
        }
        if !expired.is_empty() {
            // A node that comes back re-adds itself with its next heartbeat.
            self.send_one(context, cmd("SREM").arg(keys::NODES).arg(&expired).take()).await?;
        }
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(members)
    }

    async fn leave(&self, node: &str) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        batch.push(cmd("DEL").arg(keys::node(node)).take());
        batch.push(cmd("SREM").arg(keys::NODES).arg(node).take());
        self.send("leave", batch).await.map(drop)
    }

    async fn set_draining(&self, node: &str, draining: bool) -> Result<(), StoreError> {
        let verb = if draining { "SADD" } else { "SREM" };
        self.send_one("set draining", cmd(verb).arg(keys::DRAINING).arg(node).take())
            .await
            .map(drop)
    }

    async fn draining(&self) -> Result<Vec<String>, StoreError> {
        let value =
            self.send_one("list draining", cmd("SMEMBERS").arg(keys::DRAINING).take()).await?;
        let mut nodes: Vec<String> = reply("list draining", value)?;
        nodes.sort();
        Ok(nodes)
    }

    async fn acquire(
        &self,
        node: &str,
        partitions: &[u32],
        ttl: Duration,
    ) -> Result<Vec<(u32, Acquired)>, StoreError> {
        let context = "acquire leases";
        let mut batch = Batch::new();
        for partition in partitions {
            let p = keys::Partition(*partition);
            let mut call = ACQUIRE.evalsha(&[p.lease(), p.epoch()]);
            call.arg(node).arg(millis(ttl));
            batch.push_script(&ACQUIRE, call);
        }
        let replies = self.send(context, batch).await?;
        let mut acquired = Vec::with_capacity(partitions.len());
        for (partition, value) in partitions.iter().zip(replies) {
            let answer: Vec<String> = reply(context, value)?;
            let answer = match answer.as_slice() {
                [verdict, value] if verdict == "held" => {
                    let (node, epoch) = lease_value(*partition, value)?;
                    Acquired::HeldBy { node, epoch }
                }
                [verdict, epoch, previous] if verdict == "granted" => {
                    let epoch = epoch.parse().map_err(|_| StoreError::Redis {
                        context,
                        message: format!("unexpected epoch `{epoch}`"),
                    })?;
                    let previous = match previous.as_str() {
                        "" => None,
                        value => Some(lease_value(*partition, value)?),
                    };
                    Acquired::Granted { epoch, previous }
                }
                other => {
                    let message = format!("unexpected reply {other:?}");
                    return Err(StoreError::Redis { context, message });
                }
            };
            acquired.push((*partition, answer));
        }
        Ok(acquired)
    }

    async fn renew(
        &self,
        node: &str,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<(Lease, bool)>, StoreError> {
        let renewed = self.per_lease("renew leases", &RENEW, node, leases, Some(ttl)).await?;
        Ok(leases.iter().copied().zip(renewed).collect())
    }

    async fn release(&self, node: &str, leases: &[Lease]) -> Result<(), StoreError> {
        self.per_lease("release leases", &RELEASE, node, leases, None).await.map(drop)
    }

    async fn holders(&self) -> Result<Vec<(u32, String, u64)>, StoreError> {
        let mut batch = Batch::new();
        for partition in 0..self.partitions {
            batch.push(cmd("GET").arg(keys::Partition(partition).lease()).take());
        }
        let mut holders = Vec::new();
        for (partition, value) in (0..self.partitions).zip(self.send("list holders", batch).await?)
        {
            if let Some(value) = reply::<Option<String>>("list holders", value)? {
                let (node, epoch) = lease_value(partition, &value)?;
                holders.push((partition, node, epoch));
            }
        }
        Ok(holders)
    }

    async fn partition_monitors(&self, partition: u32) -> Result<Vec<Monitor>, StoreError> {
        let context = "load partition monitors";
        let members = cmd("SMEMBERS").arg(keys::Partition(partition).ids()).take();
        let mut ids: Vec<String> = reply(context, self.send_one(context, members).await?)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        ids.sort();
        let hmget = cmd("HMGET").arg(keys::MONITORS).arg(&ids).take();
        let records: Vec<Option<Vec<u8>>> = reply(context, self.send_one(context, hmget).await?)?;
        let mut monitors = Vec::with_capacity(ids.len());
        for (id, record) in ids.iter().zip(records) {
            // An id whose definition is gone is a delete caught half-way: skip it.
            if let Some(bytes) = record {
                monitors.push(decode("monitor", id, &bytes)?);
            }
        }
        Ok(monitors)
    }

    async fn partition_states(
        &self,
        partition: u32,
    ) -> Result<Vec<(MonitorId, MonitorState)>, StoreError> {
        let context = "load partition states";
        let all = cmd("HGETALL").arg(keys::Partition(partition).states()).take();
        decode_states(reply(context, self.send_one(context, all).await?)?)
    }

    async fn partition_versions(
        &self,
        partitions: &[u32],
    ) -> Result<Vec<PartitionVersion>, StoreError> {
        let context = "read partition versions";
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::new();
        for &partition in partitions {
            let p = keys::Partition(partition);
            let mget = cmd("MGET").arg(p.definitions_version()).arg(p.states_version()).take();
            batch.push(mget);
        }
        let replies = self.send(context, batch).await?;
        replies
            .into_iter()
            .map(|value| match reply::<Vec<Option<u64>>>(context, value)?.as_slice() {
                &[definitions, states] => Ok(PartitionVersion {
                    definitions: definitions.unwrap_or(0),
                    states: states.unwrap_or(0),
                }),
                other => Err(StoreError::Redis {
                    context,
                    message: format!("MGET of two keys answered {} values", other.len()),
                }),
            })
            .collect()
    }

    async fn open_claims(&self, partition: u32) -> Result<Vec<OpenClaim>, StoreError> {
        let context = "load open claims";
        let p = keys::Partition(partition);
        let members = cmd("SMEMBERS").arg(p.open_claims()).take();
        let mut names: Vec<String> = reply(context, self.send_one(context, members).await?)?;
        names.sort();
        let mut batch = Batch::new();
        for name in &names {
            batch.push(cmd("HGET").arg(p.claim(name)).arg("record").take());
        }
        let mut claims = Vec::with_capacity(names.len());
        for (name, value) in names.iter().zip(self.send(context, batch).await?) {
            // A record that expired leaves a stale name behind: skip it.
            if let Some(bytes) = reply::<Option<Vec<u8>>>(context, value)? {
                claims.push(decode("claim", &p.claim(name), &bytes)?);
            }
        }
        Ok(claims)
    }

    async fn server_id(&self) -> Result<String, StoreError> {
        let context = "read the server id";
        let info: String =
            reply(context, self.send_one(context, cmd("INFO").arg("server").take()).await?)?;
        info.lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .map(|id| id.trim().to_owned())
            .ok_or(StoreError::Redis { context, message: "INFO server has no run_id".into() })
    }
}
