//! Key names (the scheme is described in the parent module's documentation).
//!
//! The first `{…}` of a key is its hash tag: every key one script touches shares it, so each
//! script's keys live in one Redis Cluster slot.

/// Hash of monitor id → monitor record.
pub(super) const MONITORS: &str = "cr:{defs}:monitors";
/// Sorted set (score 0) of monitor ids, for lexicographic paging.
pub(super) const MONITOR_IDS: &str = "cr:{defs}:monitor_ids";
/// Hash of reaction id → reaction record.
pub(super) const REACTIONS: &str = "cr:{defs}:reactions";
/// Sorted set (score 0) of reaction ids, for lexicographic paging.
pub(super) const REACTION_IDS: &str = "cr:{defs}:reaction_ids";
/// Hash of note key → a reaction's note (what it remembers between runs).
pub(super) const NOTES: &str = "cr:{defs}:notes";
/// Hash of API token id → token record.
pub(super) const TOKENS: &str = "cr:{defs}:tokens";
/// Hash of a token secret's hex SHA-256 → token id.
pub(super) const TOKEN_HASHES: &str = "cr:{defs}:token_hashes";
/// Hash of token name → token id (names are unique).
pub(super) const TOKEN_NAMES: &str = "cr:{defs}:token_names";
/// Sorted set (score 0) of audit entries `ID\nRECORD`, lexicographic by id.
pub(super) const AUDIT: &str = "cr:{defs}:audit";
/// The cluster's partition count, set once.
pub(super) const PARTITION_COUNT: &str = "cr:{meta}:partitions";
/// Set of every node id that ever sent a heartbeat (pruned when their record expired).
pub(super) const NODES: &str = "cr:{members}:nodes";
/// Set of draining node ids.
pub(super) const DRAINING: &str = "cr:{members}:draining";

/// Sorted set of the destructive reactions granted in the budget's window: each member a
/// number from [`BRAKE_DESTRUCTIVE_SEQ`], scored by its start time in milliseconds (Redis
/// `TIME`).
pub(super) const BRAKE_DESTRUCTIVE: &str = "cr:{brake}:destructive";
/// Counter that names the members of [`BRAKE_DESTRUCTIVE`], so that no two are the same.
pub(super) const BRAKE_DESTRUCTIVE_SEQ: &str = "cr:{brake}:destructive_seq";

/// Returns the key of a node's heartbeat record.
pub(super) fn node(id: &str) -> String {
    format!("cr:{{members}}:node:{id}")
}

/// The keys of one partition, all tagged `{pN}`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Partition(pub(super) u32);

impl Partition {
    /// The lease: `node|epoch`, with a PX expiry.
    pub(super) fn lease(self) -> String {
        format!("cr:{{p{}}}:lease", self.0)
    }

    /// The fencing epoch counter (INCR; never expires).
    pub(super) fn epoch(self) -> String {
        format!("cr:{{p{}}}:epoch", self.0)
    }

    /// Counter raised by every put or delete of one of the partition's monitors; never
    /// expires.
    pub(super) fn definitions_version(self) -> String {
        format!("cr:{{p{}}}:defs_version", self.0)
    }

    /// Counter raised by every write of the partition's states; never expires.
    pub(super) fn states_version(self) -> String {
        format!("cr:{{p{}}}:states_version", self.0)
    }

    /// Set of the ids of the partition's existing monitors.
    pub(super) fn ids(self) -> String {
        format!("cr:{{p{}}}:ids", self.0)
    }

    /// Hash of monitor id → state record.
    pub(super) fn states(self) -> String {
        format!("cr:{{p{}}}:state", self.0)
    }

    /// List of a monitor's event records, newest first.
    pub(super) fn events(self, monitor: &str) -> String {
        format!("cr:{{p{}}}:ev:{monitor}", self.0)
    }

    /// The prefix of claim record keys; the claim key follows it.
    pub(super) fn claim_prefix(self) -> String {
        format!("cr:{{p{}}}:claim:", self.0)
    }

    /// Hash holding one claim: `record` (the open claim) and, once settled, `outcome`.
    pub(super) fn claim(self, key: &str) -> String {
        format!("cr:{{p{}}}:claim:{key}", self.0)
    }

    /// Set of the claim keys that have no outcome yet.
    pub(super) fn open_claims(self) -> String {
        format!("cr:{{p{}}}:claims", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the hash tag of a key: the text between the first `{` and the next `}`.
    fn tag(key: &str) -> &str {
        let start = key.find('{').expect("a tag") + 1;
        let end = start + key[start..].find('}').expect("a closing brace");
        &key[start..end]
    }

    #[test]
    fn every_key_of_a_partition_shares_its_tag() {
        let p = Partition(17);
        let keys = [
            p.lease(),
            p.epoch(),
            p.definitions_version(),
            p.states_version(),
            p.ids(),
            p.states(),
            p.events("m{x}"),
            p.claim("m:r:1:failed:0"),
            p.open_claims(),
        ];
        assert!(keys.iter().all(|key| tag(key) == "p17"), "{keys:?}");
        assert!(p.claim("k").starts_with(&p.claim_prefix()));
    }

    #[test]
    fn definition_and_member_keys_share_their_tags() {
        for key in [
            MONITORS,
            MONITOR_IDS,
            REACTIONS,
            REACTION_IDS,
            TOKENS,
            TOKEN_HASHES,
            TOKEN_NAMES,
            AUDIT,
        ] {
            assert_eq!(tag(key), "defs");
        }
        for key in [NODES, DRAINING, &node("n{1}")] {
            assert_eq!(tag(key), "members");
        }
    }
}
