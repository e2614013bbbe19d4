//! The board: every monitor this node runs, with what it keeps of its definition and its live
//! state.
//!
//! The board is sharded the same way as the reaction routers: shard `i` is written only by
//! router `i` (state) and by the node facade (definitions), and read by the HTTP API. Each
//! critical section is a map lookup plus the pure gating step, so plain `RwLock`s do.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cloudroutes_engine::{Monitor, MonitorId, MonitorState, ReactionId, Status};
use foldhash::{HashMap, HashMapExt};

/// What the board keeps of a monitor's definition: what deciding and claiming need (its name
/// and reactions) and the definition's JSON text, which tells a changed definition from the
/// same one. The definition itself is read from the store when asked for; held as a `Monitor`,
/// its check configuration alone (a JSON map) took about 0.8 KiB per monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The monitor's id.
    pub id: MonitorId,
    /// Its name.
    pub name: String,
    /// Its reactions, in order.
    pub reactions: Vec<ReactionId>,
    /// The whole definition as JSON.
    definition: Box<str>,
}

impl Listing {
    /// The listing of `monitor`.
    pub fn of(monitor: &Monitor) -> Self {
        Self {
            id: monitor.id.clone(),
            name: monitor.name.clone(),
            reactions: monitor.reactions.clone(),
            definition: encode(monitor),
        }
    }

    /// The definition, decoded again from its text: for the rare restart of every monitor
    /// after the monitor supervisor failed.
    pub fn definition(&self) -> Option<Monitor> {
        serde_json::from_str(&self.definition).ok()
    }

    /// Whether this is the listing of `monitor` as it is now.
    pub fn lists(&self, monitor: &Monitor) -> bool {
        self.id == monitor.id && *self.definition == *encode(monitor)
    }
}

/// A definition's JSON text. A definition's maps are ordered (`serde_json` without
/// `preserve_order`), so equal definitions give equal texts.
fn encode(monitor: &Monitor) -> Box<str> {
    // A definition holds strings, numbers, booleans and JSON values: it always serializes.
    serde_json::to_string(monitor).unwrap_or_default().into_boxed_str()
}

/// One monitor on the board.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What the board keeps of its definition.
    pub monitor: Arc<Listing>,
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

    /// Inserts or replaces a monitor's listing, keeping the state when one exists (else
    /// `state`).
    pub fn upsert(&self, monitor: Arc<Listing>, state: MonitorState) {
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

    /// Returns every listing on the board.
    pub fn monitors(&self) -> Vec<Arc<Listing>> {
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

#[cfg(test)]
mod tests {
    use cloudroutes_engine::{Monitor, MonitorId, PluginSpec, ReactionId};
    use serde_json::json;

    use super::Listing;

    fn monitor() -> Monitor {
        let check =
            json!({"type": "http-get-statuscode", "url": "http://example.com/", "codes": [200]});
        let serde_json::Value::Object(check) = check else { unreachable!() };
        Monitor {
            id: MonitorId::from("m-1"),
            name: "front page".into(),
            check: PluginSpec(check),
            interval_secs: Some(30),
            reactions: vec![ReactionId::from("r-1")],
            enabled: true,
            tags: vec!["web".into()],
            webhook_key: "k".repeat(48),
        }
    }

    #[test]
    fn a_listing_lists_its_definition_and_no_changed_one() {
        let monitor = monitor();
        let listing = Listing::of(&monitor);
        assert!(listing.lists(&monitor));
        // The same definition decoded again, its check's fields in another order.
        let text = r#"{"type":"http-get-statuscode","codes":[200],"url":"http://example.com/"}"#;
        let again = Monitor { check: serde_json::from_str(text).unwrap(), ..monitor.clone() };
        assert!(listing.lists(&again));
        assert_eq!(
            (listing.name.as_str(), listing.reactions.clone()),
            ("front page", vec![ReactionId::from("r-1")])
        );

        let changes: [fn(&mut Monitor); 8] = [
            |m| m.id = MonitorId::from("m-2"),
            |m| m.name.push('!'),
            |m| {
                m.check.0.insert("url".into(), json!("http://example.com/health"));
            },
            |m| m.interval_secs = Some(31),
            |m| m.reactions.push(ReactionId::from("r-2")),
            |m| m.enabled = false,
            |m| m.tags.clear(),
            |m| m.webhook_key.push('x'),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = monitor.clone();
            change(&mut changed);
            assert!(!listing.lists(&changed), "change {i} went unnoticed");
        }
    }
}
