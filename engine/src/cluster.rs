//! Cluster coordination: membership, partition leases with fencing epochs, and reaction
//! claims. Liveness and ownership live in the shared store (Redis), never in the transport.
//!
//! The [`Coordinator`] trait is what the actors' membership and ownership loops call; the
//! Redis backend ([`crate::store::redis::RedisStore`]) implements it next to [`crate::Store`].
//! [`Fences`] is the node's local view of the leases it holds, timed on the monotonic clock:
//! a partition whose lease was last renewed longer ago than `fence_after` is fenced off
//! locally (no write is even attempted) well before the lease can expire in Redis.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{Monitor, MonitorId, MonitorState, ReactionId, Timestamp};

/// A node as it registers itself in the store (its heartbeat record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Node id.
    pub id: String,
    /// Address of its HTTP API.
    pub http_addr: String,
    /// Address of its cluster transport, when it has one.
    pub cluster_addr: Option<String>,
    /// Failure zone.
    pub zone: String,
    /// When the node process started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: Timestamp,
    /// When it last refreshed its heartbeat.
    #[serde(with = "time::serde::rfc3339")]
    pub heartbeat_at: Timestamp,
    /// Partitions whose lease it holds.
    pub partitions: u32,
    /// Monitors it runs.
    pub monitors: u64,
    /// Of those, how many are healthy, failed and unknown (zero from older nodes).
    #[serde(default)]
    pub statuses: MemberStatuses,
    /// Set once it has begun a graceful shutdown: it releases its leases when its monitors
    /// have stopped and their state is written (false from older nodes).
    #[serde(default)]
    pub leaving: bool,
    /// How often it refreshes its heartbeat, in milliseconds (0 from older nodes: peers then
    /// assume their own period).
    #[serde(default)]
    pub heartbeat_ms: u64,
}

/// How many of a member's monitors are in each status, as of its last heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatuses {
    /// Healthy monitors.
    pub healthy: u64,
    /// Failed monitors.
    pub failed: u64,
    /// Monitors with no result yet.
    pub unknown: u64,
}

/// A partition lease this node holds: the partition and the fencing epoch it was granted at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The partition.
    pub partition: u32,
    /// The fencing epoch (from the partition's counter; only grows).
    pub epoch: u64,
}

/// The answer to a lease acquisition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The lease is ours at `epoch`. `previous` names the node that held it last (`None` when
    /// the lease was free or had expired with no record), so the caller knows whether the
    /// partition changed hands.
    Granted {
        /// The new fencing epoch.
        epoch: u64,
        /// The previous holder and its epoch, when the lease key still named one.
        previous: Option<(String, u64)>,
    },
    /// Another node holds it.
    HeldBy {
        /// The holder.
        node: String,
        /// Its epoch.
        epoch: u64,
    },
}

/// A claim a node took before running a reaction and left without an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenClaim {
    /// The firing key, `monitor:reaction:episode:phase:window`.
    pub key: String,
    /// The monitor.
    pub monitor_id: MonitorId,
    /// The reaction.
    pub reaction_id: ReactionId,
    /// The episode it answered.
    pub episode: u64,
    /// Whether the reaction is destructive.
    pub destructive: bool,
    /// Node that took it.
    pub node: String,
    /// Fencing epoch it was taken under.
    pub epoch: u64,
    /// When it was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
}

/// How often a partition's stored contents have changed: counters that only grow (0 before the
/// first write), each raised after the write it counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionVersion {
    /// Puts and deletes of the partition's monitors: what
    /// [`Coordinator::partition_monitors`] returns.
    pub definitions: u64,
    /// Writes of the partition's states: what [`Coordinator::partition_states`] returns.
    pub states: u64,
}

/// Coordination through the shared store.
#[async_trait]
pub trait Coordinator: Send + Sync + 'static {
    /// Registers or refreshes this node's heartbeat record; it disappears after `ttl`
    /// without a refresh.
    async fn heartbeat(&self, member: &Member, ttl: Duration) -> Result<(), StoreError>;
    /// Returns the live members (those whose heartbeat has not expired), sorted by id.
    async fn members(&self) -> Result<Vec<Member>, StoreError>;
    /// Removes this node's heartbeat record at once (graceful shutdown).
    async fn leave(&self, node: &str) -> Result<(), StoreError>;
    /// Marks a node as draining (its partitions move away) or clears the mark.
    async fn set_draining(&self, node: &str, draining: bool) -> Result<(), StoreError>;
    /// Returns the ids of draining nodes.
    async fn draining(&self) -> Result<Vec<String>, StoreError>;

    /// Acquires each partition's lease for `node` for `ttl`, with a new epoch from the
    /// partition's counter, unless another node holds it. A lease `node` already holds is
    /// taken again at a new epoch too (use [`Coordinator::renew`] to keep one).
    async fn acquire(
        &self,
        node: &str,
        partitions: &[u32],
        ttl: Duration,
    ) -> Result<Vec<(u32, Acquired)>, StoreError>;
    /// Extends leases `node` holds at exactly these epochs; returns, per lease, whether it
    /// still held it (a lease lost to expiry or another node is not renewed).
    async fn renew(
        &self,
        node: &str,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<(Lease, bool)>, StoreError>;
    /// Releases leases `node` holds at exactly these epochs (others are left alone).
    async fn release(&self, node: &str, leases: &[Lease]) -> Result<(), StoreError>;
    /// Returns every held lease: partition, holder, epoch.
    async fn holders(&self) -> Result<Vec<(u32, String, u64)>, StoreError>;

    /// Returns the monitor definitions of one partition.
    async fn partition_monitors(&self, partition: u32) -> Result<Vec<Monitor>, StoreError>;
    /// Returns the persisted states of one partition's monitors.
    async fn partition_states(
        &self,
        partition: u32,
    ) -> Result<Vec<(MonitorId, MonitorState)>, StoreError>;
    /// Returns each partition's version. Read before loading a partition, it tells later
    /// whether what was loaded may have changed since.
    async fn partition_versions(
        &self,
        partitions: &[u32],
    ) -> Result<Vec<PartitionVersion>, StoreError>;
    /// Returns the claims of one partition that have no outcome yet.
    async fn open_claims(&self, partition: u32) -> Result<Vec<OpenClaim>, StoreError>;

    /// Returns the store server's identity (Redis `run_id`); it changes when the server
    /// restarts.
    async fn server_id(&self) -> Result<String, StoreError>;
}

/// The leases this node holds, as its local clock sees them.
#[derive(Debug)]
pub struct Fences {
    held: RwLock<HashMap<u32, (u64, Instant)>>,
    fence_after: Duration,
}

impl Fences {
    /// Creates an empty table; a lease counts as held for `fence_after` after its last good
    /// renewal.
    pub fn new(fence_after: Duration) -> Self {
        Self { held: RwLock::new(HashMap::new()), fence_after }
    }

    /// Records that `lease` was granted or renewed by a request sent at `sent` (the
    /// instant before the request left, so the local bound is conservative).
    pub fn hold(&self, lease: Lease, sent: Instant) {
        let mut held = self.held.write().unwrap_or_else(|poison| poison.into_inner());
        held.insert(lease.partition, (lease.epoch, sent));
    }

    /// Records a good renewal of `lease` sent at `sent`, only if the table still holds the
    /// partition at that epoch; returns whether it did.
    pub fn renewed(&self, lease: Lease, sent: Instant) -> bool {
        let mut held = self.held.write().unwrap_or_else(|poison| poison.into_inner());
        match held.get_mut(&lease.partition) {
            Some((epoch, renewed)) if *epoch == lease.epoch => {
                *renewed = sent.max(*renewed);
                true
            }
            _ => false,
        }
    }

    /// Forgets `lease` (released, or lost to another node), only if the table still holds the partition at
    /// that epoch; returns whether it did. A lease taken again at a newer epoch stays.
    pub fn lost(&self, lease: Lease) -> bool {
        let mut held = self.held.write().unwrap_or_else(|poison| poison.into_inner());
        if held.get(&lease.partition).is_some_and(|(epoch, _)| *epoch == lease.epoch) {
            held.remove(&lease.partition);
            return true;
        }
        false
    }

    /// Forgets a partition, whatever its epoch (it could not be loaded).
    pub fn drop_partition(&self, partition: u32) {
        let mut held = self.held.write().unwrap_or_else(|poison| poison.into_inner());
        held.remove(&partition);
    }

    /// Returns the epoch this node may write `partition` with, or `None` when it does not
    /// hold the lease or its last renewal is older than `fence_after`.
    pub fn epoch(&self, partition: u32) -> Option<u64> {
        let held = self.held.read().unwrap_or_else(|poison| poison.into_inner());
        let (epoch, renewed) = held.get(&partition)?;
        (renewed.elapsed() < self.fence_after).then_some(*epoch)
    }

    /// Returns whether the table records a lease of `partition` (at any epoch, fenced or not).
    pub fn holds(&self, partition: u32) -> bool {
        let held = self.held.read().unwrap_or_else(|poison| poison.into_inner());
        held.contains_key(&partition)
    }

    /// Returns every lease recorded (fenced or not).
    pub fn leases(&self) -> Vec<Lease> {
        let held = self.held.read().unwrap_or_else(|poison| poison.into_inner());
        let mut leases: Vec<Lease> =
            held.iter().map(|(p, (epoch, _))| Lease { partition: *p, epoch: *epoch }).collect();
        leases.sort_by_key(|lease| lease.partition);
        leases
    }

    /// Returns the partitions recorded whose last renewal is older than `fence_after`.
    pub fn expired(&self) -> Vec<u32> {
        let held = self.held.read().unwrap_or_else(|poison| poison.into_inner());
        held.iter()
            .filter(|(_, (_, renewed))| renewed.elapsed() >= self.fence_after)
            .map(|(p, _)| *p)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_counts_as_held_until_fence_after_its_last_renewal() {
        let fences = Fences::new(Duration::from_millis(50));
        let lease = Lease { partition: 3, epoch: 7 };
        fences.hold(lease, Instant::now());
        assert_eq!(fences.epoch(3), Some(7));
        // Renewed (sent) 60 ms ago: past fence_after.
        fences.hold(lease, Instant::now() - Duration::from_millis(60));
        assert_eq!(fences.epoch(3), None, "fenced off locally once fence_after passed");
        assert_eq!(fences.expired(), vec![3]);
        assert!(fences.renewed(lease, Instant::now()));
        assert_eq!(fences.epoch(3), Some(7), "a good renewal lifts the local fence");
    }

    #[test]
    fn renewals_and_losses_of_an_older_epoch_leave_a_newer_lease_alone() {
        let fences = Fences::new(Duration::from_secs(60));
        let old = Lease { partition: 1, epoch: 4 };
        let new = Lease { partition: 1, epoch: 5 };
        fences.hold(new, Instant::now());
        assert!(!fences.renewed(old, Instant::now()), "a late renewal of epoch 4 changes nothing");
        assert!(!fences.lost(old), "a late loss of epoch 4 does not drop epoch 5");
        assert_eq!(fences.epoch(1), Some(5));
        assert!(fences.lost(new));
        assert_eq!(fences.epoch(1), None);
        assert!(fences.leases().is_empty());
    }

    #[test]
    fn a_member_record_from_an_older_node_reads_as_not_leaving_with_no_period() {
        let old = r#"{"id":"node-a","http_addr":"127.0.0.1:1","cluster_addr":null,
            "zone":"z","started_at":"2026-01-01T00:00:00Z","heartbeat_at":"2026-01-01T00:00:02Z",
            "partitions":3,"monitors":42}"#;
        let member: Member = serde_json::from_str(old).unwrap();
        assert!(!member.leaving);
        assert_eq!(member.statuses, MemberStatuses::default());
        assert_eq!(member.heartbeat_ms, 0, "peers assume their own period");
    }
}
