//! The board: every monitor this node runs, with its definition and live state.
//!
//! The board is sharded the same way as the reaction routers: shard `i` is written only by
//! router `i` (state) and by the node facade (definitions), and read by the HTTP API. Each
//! critical section is a map lookup plus the pure gating step, so plain `RwLock`s do.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cloudroutes_engine::{Monitor, MonitorId, MonitorState, Status};
use foldhash::{HashMap, HashMapExt};

/// One monitor on the board.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its definition.
    pub monitor: Arc<Monitor>,
    /// Its live state (newer than the store between batched flushes).
    pub state: MonitorState,
}

/// Monitors by id, sharded. The maps hash with foldhash (seeded per process): every check
/// looks its monitor up, and SipHash cost more than the lookup itself.
#[derive(Debug)]
pub struct Board {
    shards: Box<[RwLock<HashMap<MonitorId, Entry>>]>,
}

/// Counts of monitors by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    /// Monitors whose status is healthy.
    pub healthy: usize,
    /// Monitors whose status is failed.
    pub failed: usize,
    /// Monitors with no result yet.
    pub unknown: usize,
}

impl From<StatusCounts> for cloudroutes_engine::cluster::MemberStatuses {
    fn from(counts: StatusCounts) -> Self {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Self {
            healthy: wide(counts.healthy),
            failed: wide(counts.failed),
            unknown: wide(counts.unknown),
        }
    }
}

impl Board {
    /// Returns an empty board with `shards` shards (at least one).
    pub fn new(shards: usize) -> Self {
        let shards = (0..shards.max(1)).map(|_| RwLock::new(HashMap::new())).collect();
        Self { shards }
    }

    /// Returns the number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Returns the shard (and router) index of a monitor: FNV-1a of its id, stable everywhere.
    pub fn shard_of(&self, id: &MonitorId) -> usize {
        let hash = id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        // The modulo is below the shard count, which is a usize.
        usize::try_from(hash % self.shards.len() as u64).unwrap_or(0)
    }

    fn read(&self, shard: usize) -> RwLockReadGuard<'_, HashMap<MonitorId, Entry>> {
        self.shards[shard].read().unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self, shard: usize) -> RwLockWriteGuard<'_, HashMap<MonitorId, Entry>> {
        self.shards[shard].write().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Returns a monitor's entry.
    pub fn get(&self, id: &MonitorId) -> Option<Entry> {
        self.read(self.shard_of(id)).get(id).cloned()
    }

    /// Returns a monitor's live state.
    pub fn state(&self, id: &MonitorId) -> Option<MonitorState> {
        self.read(self.shard_of(id)).get(id).map(|entry| entry.state.clone())
    }

    /// Inserts or replaces a definition, keeping the state when one exists (else `state`).
    pub fn upsert(&self, monitor: Arc<Monitor>, state: MonitorState) {
        let mut shard = self.write(self.shard_of(&monitor.id));
        match shard.get_mut(&monitor.id) {
            Some(entry) => entry.monitor = monitor,
            None => {
                shard.insert(monitor.id.clone(), Entry { monitor, state });
            }
        }
    }

    /// Removes a monitor; returns whether it was there.
    pub fn remove(&self, id: &MonitorId) -> bool {
        self.write(self.shard_of(id)).remove(id).is_some()
    }

    /// Runs `update` on a monitor's entry under its shard's write lock.
    pub fn update<R>(&self, id: &MonitorId, update: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        self.write(self.shard_of(id)).get_mut(id).map(update)
    }

    /// Returns the states of `ids` that are still on the board.
    pub fn states_of(&self, ids: &[MonitorId]) -> Vec<(MonitorId, MonitorState)> {
        ids.iter().filter_map(|id| self.state(id).map(|state| (id.clone(), state))).collect()
    }

    /// Returns every definition on the board.
    pub fn monitors(&self) -> Vec<Arc<Monitor>> {
        (0..self.shards.len())
            .flat_map(|shard| {
                self.read(shard).values().map(|e| e.monitor.clone()).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Returns the ids in one shard.
    pub fn ids_in_shard(&self, shard: usize) -> Vec<MonitorId> {
        self.read(shard).keys().cloned().collect()
    }

    /// Returns how many monitors the board holds.
    pub fn len(&self) -> usize {
        (0..self.shards.len()).map(|shard| self.read(shard).len()).sum()
    }

    /// Returns whether the board is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts monitors by status.
    pub fn counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for shard in 0..self.shards.len() {
            for entry in self.read(shard).values() {
                match entry.state.status {
                    Status::Healthy => counts.healthy += 1,
                    Status::Failed => counts.failed += 1,
                    Status::Unknown => counts.unknown += 1,
                }
            }
        }
        counts
    }
}
