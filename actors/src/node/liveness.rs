//! Peers whose heartbeat looks overdue, as this node's own clock sees it.
//!
//! A crashed peer drops out of the members when its heartbeat record expires in Redis, and
//! only then are its partitions assigned to the survivors. The ownership loop looks every renew
//! period, so it would notice up to a whole period late; while a peer's heartbeat has not
//! changed for longer than it should, the loop looks more often instead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cloudroutes_engine::Timestamp;
use cloudroutes_engine::cluster::Member;

/// The last heartbeat seen of each peer, and when this node first saw it.
#[derive(Debug, Default)]
pub(crate) struct HeartbeatWatch {
    seen: HashMap<String, (Timestamp, Instant)>,
}

impl HeartbeatWatch {
    /// Records the members read at `now` (this node, `me`, aside) and returns whether some
    /// peer's heartbeat has stayed the same for longer than `overdue_after`. Peers no longer
    /// listed are forgotten.
    pub(crate) fn observe(
        &mut self,
        members: &[Member],
        me: &str,
        now: Instant,
        overdue_after: Duration,
    ) -> bool {
        let mut overdue = false;
        let mut seen = HashMap::with_capacity(members.len());
        for member in members.iter().filter(|member| member.id != me) {
            let since = match self.seen.get(&member.id) {
                Some((beat, since)) if *beat == member.heartbeat_at => *since,
                _ => now,
            };
            overdue |= now.saturating_duration_since(since) > overdue_after;
            seen.insert(member.id.clone(), (member.heartbeat_at, since));
        }
        self.seen = seen;
        overdue
    }

    /// Returns the peers whose heartbeat, at the last [`HeartbeatWatch::observe`], had stayed
    /// the same for longer than `longer_than` up to `now`.
    pub(crate) fn silent(&self, now: Instant, longer_than: Duration) -> Vec<String> {
        let mut silent: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, (_, since))| now.saturating_duration_since(*since) > longer_than)
            .map(|(id, _)| id.clone())
            .collect();
        silent.sort();
        silent
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn member(id: &str, beat_secs: i64) -> Member {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(beat_secs);
        Member {
            id: id.into(),
            http_addr: "127.0.0.1:1".into(),
            cluster_addr: None,
            zone: "default".into(),
            started_at: OffsetDateTime::UNIX_EPOCH,
            heartbeat_at: at,
            partitions: 0,
            monitors: 0,
            statuses: Default::default(),
            leaving: false,
        }
    }

    const OVERDUE: Duration = Duration::from_secs(3);

    #[test]
    fn a_peer_that_keeps_beating_is_never_overdue() {
        let mut watch = HeartbeatWatch::default();
        let t0 = Instant::now();
        for tick in 0..10_u64 {
            let now = t0 + Duration::from_secs(2 * tick);
            let beat = i64::try_from(2 * tick).unwrap();
            let members = [member("me", 0), member("peer", beat)];
            assert!(!watch.observe(&members, "me", now, OVERDUE), "tick {tick}");
        }
    }

    #[test]
    fn a_peer_whose_heartbeat_stops_changing_is_overdue_until_it_leaves() {
        let mut watch = HeartbeatWatch::default();
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let members = [member("me", 0), member("peer", 7)];
        assert!(!watch.observe(&members, "me", at(0), OVERDUE));
        assert!(!watch.observe(&members, "me", at(2), OVERDUE));
        assert!(watch.observe(&members, "me", at(4), OVERDUE), "unchanged for 4 s");
        assert_eq!(watch.silent(at(4), Duration::from_secs(3)), ["peer"]);
        assert!(watch.silent(at(4), Duration::from_secs(5)).is_empty());
        // It beats again: fine again.
        let members = [member("me", 0), member("peer", 11)];
        assert!(!watch.observe(&members, "me", at(5), OVERDUE));
        assert!(watch.silent(at(5), Duration::from_secs(3)).is_empty(), "it beat again");
        assert!(watch.observe(&members, "me", at(9), OVERDUE));
        // Its record expired: it is no longer a member, nothing is overdue.
        assert!(!watch.observe(&[member("me", 0)], "me", at(10), OVERDUE));
        // Back later with an old-looking beat: timed from when it was seen again.
        let members = [member("me", 0), member("peer", 11)];
        assert!(!watch.observe(&members, "me", at(11), OVERDUE));
    }

    #[test]
    fn this_node_is_never_watched() {
        let mut watch = HeartbeatWatch::default();
        let t0 = Instant::now();
        let members = [member("me", 0)];
        assert!(!watch.observe(&members, "me", t0, OVERDUE));
        assert!(!watch.observe(&members, "me", t0 + Duration::from_secs(60), OVERDUE));
    }
}
