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

/// A peer whose heartbeat has stayed the same for more than one and a half of its periods is
/// overdue (twice this many halves of a period).
const OVERDUE_HALF_PERIODS: u32 = 3;

/// What this node last saw of a peer's heartbeat.
#[derive(Debug, Clone, Copy)]
struct Seen {
    beat: Timestamp,
    /// When this node first saw that beat.
    since: Instant,
    /// How often the peer refreshes its heartbeat.
    period: Duration,
}

/// The last heartbeat seen of each peer, and when this node first saw it.
#[derive(Debug, Default)]
pub(crate) struct HeartbeatWatch {
    seen: HashMap<String, Seen>,
}

impl HeartbeatWatch {
    /// Records the members read at `now` (this node, `me`, aside) and returns whether some
    /// peer's heartbeat has stayed the same for longer than one and a half of its periods: the
    /// period its record announces, or `own_period` for a record that announces none (older
    /// nodes). Peers no longer listed are forgotten.
    pub(crate) fn observe(
        &mut self,
        members: &[Member],
        me: &str,
        now: Instant,
        own_period: Duration,
    ) -> bool {
        let mut overdue = false;
        let mut seen = HashMap::with_capacity(members.len());
        for member in members.iter().filter(|member| member.id != me) {
            let since = match self.seen.get(&member.id) {
                Some(last) if last.beat == member.heartbeat_at => last.since,
                _ => now,
            };
            let period = match member.heartbeat_ms {
                0 => own_period,
                ms => Duration::from_millis(ms),
            };
            let overdue_after = period * OVERDUE_HALF_PERIODS / 2;
            overdue |= now.saturating_duration_since(since) > overdue_after;
            seen.insert(member.id.clone(), Seen { beat: member.heartbeat_at, since, period });
        }
        self.seen = seen;
        overdue
    }

    /// Returns the peers whose heartbeat, at the last [`HeartbeatWatch::observe`], had stayed
    /// the same for longer than `beats` of their periods up to `now`.
    pub(crate) fn silent(&self, now: Instant, beats: u32) -> Vec<String> {
        let mut silent: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, seen)| now.saturating_duration_since(seen.since) > seen.period * beats)
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
            heartbeat_ms: 0,
        }
    }

    /// This node's own heartbeat period, which peers announcing none are taken to have.
    const OWN: Duration = Duration::from_secs(2);

    #[test]
    fn a_peer_that_keeps_beating_is_never_overdue() {
        let mut watch = HeartbeatWatch::default();
        let t0 = Instant::now();
        for tick in 0..10_u64 {
            let now = t0 + Duration::from_secs(2 * tick);
            let beat = i64::try_from(2 * tick).unwrap();
            let members = [member("me", 0), member("peer", beat)];
            assert!(!watch.observe(&members, "me", now, OWN), "tick {tick}");
        }
    }

    #[test]
    fn a_peer_whose_heartbeat_stops_changing_is_overdue_until_it_leaves() {
        let mut watch = HeartbeatWatch::default();
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let members = [member("me", 0), member("peer", 7)];
        assert!(!watch.observe(&members, "me", at(0), OWN));
        assert!(!watch.observe(&members, "me", at(2), OWN));
        assert!(watch.observe(&members, "me", at(4), OWN), "unchanged for 4 s");
        assert_eq!(watch.silent(at(4), 1), ["peer"], "unchanged for more than one period");
        assert!(watch.silent(at(4), 2).is_empty(), "but not for more than two");
        // It beats again: fine again.
        let members = [member("me", 0), member("peer", 11)];
        assert!(!watch.observe(&members, "me", at(5), OWN));
        assert!(watch.silent(at(5), 1).is_empty(), "it beat again");
        assert!(watch.observe(&members, "me", at(9), OWN));
        // Its record expired: it is no longer a member, nothing is overdue.
        assert!(!watch.observe(&[member("me", 0)], "me", at(10), OWN));
        // Back later with an old-looking beat: timed from when it was seen again.
        let members = [member("me", 0), member("peer", 11)];
        assert!(!watch.observe(&members, "me", at(11), OWN));
    }

    #[test]
    fn this_node_is_never_watched() {
        let mut watch = HeartbeatWatch::default();
        let t0 = Instant::now();
        let members = [member("me", 0)];
        assert!(!watch.observe(&members, "me", t0, OWN));
        assert!(!watch.observe(&members, "me", t0 + Duration::from_secs(60), OWN));
    }

    #[test]
    fn each_peer_is_timed_by_the_period_it_announces() {
        let mut watch = HeartbeatWatch::default();
        let t0 = Instant::now();
        let at = |millis: u64| t0 + Duration::from_millis(millis);
        let slow = Member { heartbeat_ms: 10_000, ..member("slow", 7) };
        let quick = Member { heartbeat_ms: 500, ..member("quick", 7) };
        assert!(!watch.observe(std::slice::from_ref(&slow), "me", at(0), OWN));
        assert!(
            !watch.observe(std::slice::from_ref(&slow), "me", at(4_000), OWN),
            "4 s of a 10 s period"
        );
        assert!(watch.silent(at(4_000), 2).is_empty());
        assert!(
            watch.observe(std::slice::from_ref(&slow), "me", at(15_001), OWN),
            "past 1.5 periods"
        );
        assert_eq!(watch.silent(at(20_001), 2), ["slow"]);

        let mut watch = HeartbeatWatch::default();
        assert!(!watch.observe(std::slice::from_ref(&quick), "me", at(0), OWN));
        assert!(
            watch.observe(std::slice::from_ref(&quick), "me", at(800), OWN),
            "past 750 ms, not 3 s"
        );
        assert_eq!(watch.silent(at(1_001), 2), ["quick"]);
    }
}
