//! The Redis backend of [`crate::Store`] and [`crate::cluster::Coordinator`] (cluster mode).
//!
//! One [`RedisStore`] per node talks to the shared Redis through a [`ConnectionManager`] (one
//! multiplexed connection that reconnects by itself). Every call has a deadline of
//! [`RedisOptions::response_timeout`], so a Redis that is down or cut off gives a
//! [`StoreError::Redis`] in about that time, never a hang.
//!
//! # Key scheme
//! The first `{…}` of a key is its Redis Cluster hash tag; every key one script touches shares
//! it, so the scripts run unchanged on Redis Cluster or Valkey.
//! - `cr:{meta}:partitions`: the cluster's partition count, set once (`SET NX`); a node
//!   configured with another count refuses to start.
//! - `cr:{defs}:monitors`, `cr:{defs}:reactions`: hashes id → definition record;
//!   `cr:{defs}:monitor_ids`, `cr:{defs}:reaction_ids`: sorted sets of the ids with score 0, for
//!   paging in id order with `ZRANGEBYLEX`. Definitions are not fenced: any node's API writes
//!   them.
//! - API tokens and the audit trail (tag `{defs}`): `cr:{defs}:tokens`, `cr:{defs}:token_hashes`,
//!   `cr:{defs}:token_names`, `cr:{defs}:audit` (see `redis/access.rs`).
//! - Per partition `N` (tag `{pN}`):
//!   - `cr:{pN}:lease`: `node|epoch` with a `PX` expiry; `cr:{pN}:epoch`: the fencing counter
//!     (`INCR`, never expires);
//!   - `cr:{pN}:ids`: set of the ids of the partition's existing monitors (a state or event
//!     write for an id not in it is dropped);
//!   - `cr:{pN}:state`: hash monitor id → state record;
//!   - `cr:{pN}:ev:MONITOR`: list of event records, newest first, trimmed to
//!     [`RedisOptions::history_max_events`];
//!   - `cr:{pN}:claim:KEY`: one reaction claim (`KEY` is `monitor:reaction:episode:phase:window`),
//!     a hash with `record` (the [`OpenClaim`]) and, once settled, `outcome`; it expires after
//!     [`CLAIM_TTL`] and stays taken until then;
//!   - `cr:{pN}:claims`: set of the claim keys with no outcome yet.
//! - Membership (tag `{members}`): `cr:{members}:node:ID` (the [`crate::cluster::Member`]
//!   record, `PX` expiry), `cr:{members}:nodes` (ids ever seen, pruned of expired ones),
//!   `cr:{members}:draining` (set of draining ids).
//! - The destructive-reaction budget (tag `{brake}`): `cr:{brake}:destructive`, a sorted set of
//!   the runs granted in the window scored by their start (Redis `TIME`, milliseconds), named
//!   by the counter `cr:{brake}:destructive_seq`.
//!
//! Records are a version byte ([`RECORD_VERSION`]) followed by JSON, like the embedded store's;
//! states are binary ([`STATE_RECORD_VERSION`]), as there.
//!
//! # Fencing
//! State writes, event appends and claims of partition `N` go through one Lua script per
//! partition that first checks that `cr:{pN}:lease` still reads `node|epoch` for this node and
//! the epoch in its [`Fences`]; otherwise nothing of that partition's share is written. A batch
//! sends every partition's script in one pipeline: one round trip.
//!
//! [`OpenClaim`]: crate::cluster::OpenClaim

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;

use crate::cluster::Fences;
use crate::error::StoreError;

mod access;
mod coordination;
mod data;
mod fenced;
mod keys;
mod scripts;
mod wire;

#[cfg(test)]
mod coordination_tests;
#[cfg(test)]
mod fencing_tests;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use super::record::{self, decode};
pub use super::record::{RECORD_VERSION, STATE_RECORD_VERSION};

/// How long a claim record is kept (and its key stays taken): 7 days.
pub const CLAIM_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a [`RedisStore`] connects and behaves.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// This node's id: leases and claims are written as `node|epoch` with it.
    pub node_id: String,
    /// The cluster's partition count; every node must use the same one.
    pub partitions: u32,
    /// Events kept per monitor (0 acts as 1).
    pub history_max_events: usize,
    /// Deadline of every call (connecting included): a Redis that does not answer in time
    /// gives [`StoreError::Redis`].
    pub response_timeout: Duration,
}

/// Redis operations a store has sent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Commands sent (a pipeline of k commands counts k; a script call counts 1).
    pub commands: u64,
    /// Round trips (a pipeline counts 1).
    pub round_trips: u64,
}

/// A [`crate::Store`] and [`crate::cluster::Coordinator`] on a shared Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    node_id: String,
    partitions: u32,
    history_max_events: usize,
    response_timeout: Duration,
    fences: Arc<Fences>,
    counters: Arc<wire::Counters>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("node_id", &self.node_id)
            .field("partitions", &self.partitions)
            .field("history_max_events", &self.history_max_events)
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://host:port/db`) and checks that the cluster's
    /// partition count is `options.partitions` (storing it when none is stored yet). Fenced
    /// writes use the epochs `fences` holds for `options.node_id`.
    ///
    /// # Errors
    /// Returns [`StoreError::Redis`] when the URL is invalid, Redis cannot be reached within
    /// `options.response_timeout`, `options.partitions` is 0, or the cluster stores another
    /// partition count (the message names both).
    pub async fn connect(
        url: &str,
        options: RedisOptions,
        fences: Arc<Fences>,
    ) -> Result<Self, StoreError> {
        let context = "connect";
        if options.partitions == 0 {
            let message = "the partition count must be at least 1".to_owned();
            return Err(StoreError::Redis { context, message });
        }
        let client = ::redis::Client::open(url).map_err(wire::redis_error(context))?;
        let timeout = options.response_timeout;
        // Few, short reconnect attempts: every call has its own deadline anyway, and a
        // reconnection that outlives it keeps going in the background.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(timeout.max(Duration::from_millis(50)));
        let conn =
            match tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
                .await
            {
                Ok(conn) => conn.map_err(wire::redis_error(context))?,
                Err(_) => {
                    let message = format!("no connection within {timeout:?}");
                    return Err(StoreError::Redis { context, message });
                }
            };
        let store = Self {
            conn,
            node_id: options.node_id,
            partitions: options.partitions,
            history_max_events: options.history_max_events.max(1),
            response_timeout: timeout,
            fences,
            counters: Arc::default(),
        };
        store.check_partition_count().await?;
        Ok(store)
    }

    /// Loads the scripts, stores the partition count if none is, and refuses a different one.
    async fn check_partition_count(&self) -> Result<(), StoreError> {
        let context = "check the partition count";
        let mut batch = wire::Batch::new();
        for script in scripts::all() {
            batch.push(script.load_cmd());
        }
        let mut set = ::redis::cmd("SET");
        set.arg(keys::PARTITION_COUNT).arg(self.partitions).arg("NX");
        batch.push(set);
        let mut get = ::redis::cmd("GET");
        get.arg(keys::PARTITION_COUNT);
        batch.push(get);
        let stored = self.send(context, batch).await?.pop().unwrap_or(::redis::Value::Nil);
        let stored: String = wire::reply(context, stored)?;
        if stored == self.partitions.to_string() {
            return Ok(());
        }
        let message = format!(
            "partition count mismatch: this node is configured with {} partitions but the \
             cluster in redis uses {stored}; every node must use the same partition count",
            self.partitions
        );
        Err(StoreError::Redis { context, message })
    }

    /// Returns the Redis operations sent so far by this store and its clones.
    pub fn stats(&self) -> RedisStats {
        RedisStats {
            commands: self.counters.commands.load(Ordering::Relaxed),
            round_trips: self.counters.round_trips.load(Ordering::Relaxed),
        }
    }

    /// Returns the node id this store writes leases and claims with.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Returns the cluster's partition count.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Returns the partition of a monitor.
    fn partition_of(&self, id: &crate::model::MonitorId) -> keys::Partition {
        keys::Partition(crate::partition::partition_of(id, self.partitions))
    }
}

/// Encodes a record: the version byte, then JSON.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    record::encode(value).map_err(wire::redis_error("encode record"))
}

/// Splits a lease value `node|epoch`.
fn parse_lease(value: &str) -> Option<(String, u64)> {
    let (node, epoch) = value.rsplit_once('|')?;
    Some((node.to_owned(), epoch.parse().ok()?))
}
