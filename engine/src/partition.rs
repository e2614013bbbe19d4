//! Partitions: monitors map to a fixed number of virtual partitions by a stable hash of their
//! id, and partitions map to live nodes by rendezvous hashing with bounded loads.
//!
//! Both functions are pure: every node computes the same owner from the same member set, on
//! every machine and in every version (xxh3 with a fixed seed, never `DefaultHasher`).

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::model::MonitorId;

/// Default number of partitions of a cluster.
pub const DEFAULT_PARTITIONS: u32 = 1024;

/// Seed of the monitor-to-partition hash. Never change it: that would move every monitor.
const PARTITION_SEED: u64 = 0x636c_6f75_6472_6f75;

/// Seed of the partition-to-node rendezvous score.
const RENDEZVOUS_SEED: u64 = 0x7265_6e64_657a_766f;

/// Returns the partition of a monitor among `count` partitions (`count` ≥ 1).
pub fn partition_of(id: &MonitorId, count: u32) -> u32 {
    let hash = xxh3_64_with_seed(id.as_str().as_bytes(), PARTITION_SEED);
    u32::try_from(hash % u64::from(count.max(1))).unwrap_or(0)
}

/// How far above the average load a member may go, in percent: the ε of rendezvous hashing
/// with bounded loads. Each member holds at most `ceil(count / members × (1 + ε))` partitions.
///
/// 8 % keeps the most loaded member within 10 % of the average once it holds 50 partitions or
/// more, while few partitions are displaced from their first choice, so a join or a leave moves
/// little more than the 1/N that plain rendezvous hashing moves. Changing it changes owners:
/// nodes of one cluster must agree on it.
pub const LOAD_SLACK_PERCENT: u32 = 8;

/// The bytes a rendezvous score hashes: the partition (little-endian) then the node id. One
/// buffer per member, whose partition prefix is rewritten for each partition.
struct ScoreKey(Vec<u8>);

impl ScoreKey {
    fn new(node: &str) -> Self {
        let mut key = Vec::with_capacity(node.len() + 4);
        key.extend_from_slice(&[0; 4]);
        key.extend_from_slice(node.as_bytes());
        Self(key)
    }

    /// Rendezvous score of this node for `partition`: the highest score wins.
    fn score(&mut self, partition: u32) -> u64 {
        self.0[..4].copy_from_slice(&partition.to_le_bytes());
        xxh3_64_with_seed(&self.0, RENDEZVOUS_SEED)
    }
}

/// Returns how many of `count` partitions one of `members` members may hold at most:
/// `ceil(count / members × (1 + LOAD_SLACK_PERCENT / 100))`, at least 1, in integer arithmetic
/// so that every machine computes the same number. Zero when there are no members.
pub fn capacity(count: u32, members: usize) -> u32 {
    let Ok(members) = u64::try_from(members) else {
        return 1;
    };
    if members == 0 {
        return 0;
    }
    let numerator = u64::from(count) * u64::from(100 + LOAD_SLACK_PERCENT);
    let denominator = members * 100;
    u32::try_from(numerator.div_ceil(denominator)).unwrap_or(u32::MAX).max(1)
}

/// Which node owns each partition, for one member set.
///
/// Rendezvous hashing with bounded loads: partitions are taken in ascending order, and each goes
/// to the member with the highest score for it among those still below [`capacity`]. Every
/// partition has an owner, no member holds more than [`capacity`], and the result depends only
/// on the set of members and the partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    members: Vec<String>,
    owners: Vec<u32>,
}

impl Assignment {
    /// Assigns `count` partitions to `members` (order and duplicates do not matter).
    /// With no members, no partition has an owner.
    pub fn compute(members: &[String], count: u32) -> Self {
        let mut members: Vec<String> = members.to_vec();
        members.sort();
        members.dedup();
        if members.is_empty() {
            return Self { members, owners: Vec::new() };
        }
        let capacity = capacity(count, members.len());
        let mut keys: Vec<ScoreKey> = members.iter().map(|node| ScoreKey::new(node)).collect();
        let mut loads = vec![0_u32; members.len()];
        let owners = (0..count)
            .map(|partition| {
                // Members × capacity ≥ count, so a member below capacity always remains. Equal
                // scores go to the greater node id.
                let best = keys
                    .iter_mut()
                    .enumerate()
                    .filter(|(index, _)| loads[*index] < capacity)
                    .map(|(index, key)| (key.score(partition), index))
                    .max()
                    .map_or(0, |(_, index)| index);
                loads[best] += 1;
                u32::try_from(best).unwrap_or(0)
            })
            .collect();
        Self { members, owners }
    }

    /// Checks the invariants: members sorted and distinct, every partition owned by a member,
    /// no member above [`capacity`]. Returns what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if !self.members.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err("members are not sorted and distinct".to_owned());
        }
        if self.members.is_empty() {
            return match self.owners.len() {
                0 => Ok(()),
                n => Err(format!("{n} partitions have owners but there are no members")),
            };
        }
        let mut loads = vec![0_u32; self.members.len()];
        for (partition, owner) in self.owners.iter().enumerate() {
            let Some(load) = usize::try_from(*owner).ok().and_then(|i| loads.get_mut(i)) else {
                return Err(format!("partition {partition} has owner index {owner}, not a member"));
            };
            *load += 1;
        }
        let count = u32::try_from(self.owners.len()).unwrap_or(u32::MAX);
        let capacity = capacity(count, self.members.len());
        match loads.iter().position(|load| *load > capacity) {
            Some(i) => Err(format!(
                "member `{}` holds {} partitions, above the capacity {capacity}",
                self.members[i], loads[i]
            )),
            None => Ok(()),
        }
    }

    /// Returns the owner of `partition`, or `None` when there are no members.
    pub fn owner_of(&self, partition: u32) -> Option<&str> {
        let index = *self.owners.get(usize::try_from(partition).ok()?)?;
        self.members.get(usize::try_from(index).ok()?).map(String::as_str)
    }

    /// Returns the partitions `node` owns, ascending.
    pub fn partitions_of(&self, node: &str) -> Vec<u32> {
        let Ok(index) = self.members.binary_search_by(|m| m.as_str().cmp(node)) else {
            return Vec::new();
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        (0..self.owners.len())
            .filter(|p| self.owners[*p] == index)
            .filter_map(|p| u32::try_from(p).ok())
            .collect()
    }

    /// Returns the members, sorted.
    pub fn members(&self) -> &[String] {
        &self.members
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
