//! The blast-radius brake: destructive reactions (reboots, power cycles, stops) wait, unclaimed,
//! while this node's view is suspect or the cluster's budget for them is spent.
//!
//! - **Suspect view.** When a large share of one node's monitors fail at once, that node is
//!   more likely cut off than the world broken. Its destructive firings wait until another
//!   node's heartbeat shows such a share failed too (a second node confirms), or until the
//!   share falls. A lone node has no second node: it waits until the share falls.
//! - **Budget.** At most `engine.destructive_budget` destructive firings start in any
//!   `engine.destructive_window_secs`, counted in the store across every node.
//!
//! A firing that waits is taken back before anything is claimed, like a held one: the
//! monitor's next result decides again, so the reaction runs once the brake lets go.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cloudroutes_engine::Store;
use cloudroutes_engine::config::EngineSection;
use foldhash::HashSet;
use tracing::warn;

use crate::board::Board;

/// How long a verdict on this node's view holds before the board is counted again.
const VERDICT_FOR: Duration = Duration::from_secs(1);
/// At most one warning per this period; the count of firings held meanwhile goes with it.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Firing keys remembered as already noted in their monitor's history; the memory starts over
/// past this many (a firing held that long may be noted once more).
const NOTED_MAX: usize = 10_000;

/// Failed and total monitors, of this node or of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Monitors failed.
    pub failed: u64,
    /// Monitors running.
    pub total: u64,
}

/// The brake's settings (from `[engine]`).
#[derive(Debug, Clone, Copy)]
pub struct BrakeRules {
    /// Destructive firings per window.
    pub budget: u32,
    /// The budget's window.
    pub window: Duration,
    /// The failed share, in percent, that makes a view suspect.
    pub failed_percent: u32,
    /// The fewest monitors a share counts on.
    pub min_monitors: u64,
}

impl BrakeRules {
    /// Reads the rules from the engine section.
    pub fn from_config(engine: &EngineSection) -> Self {
        Self {
            budget: engine.destructive_budget,
            window: Duration::from_secs(engine.destructive_window_secs),
            failed_percent: engine.brake_failed_percent,
            min_monitors: engine.brake_min_monitors,
        }
    }

    /// Returns whether `share` counts as a large share failed at once.
    pub fn high(&self, share: Share) -> bool {
        share.total >= self.min_monitors
            && u128::from(share.failed) * 100
                >= u128::from(self.failed_percent) * u128::from(share.total)
    }

    /// Returns whether a node with `own` share failed should distrust its view: its share is
    /// high and no peer's is.
    pub fn suspect(&self, own: Share, peers: &[Share]) -> bool {
        self.high(own) && !peers.iter().any(|peer| self.high(*peer))
    }
}

/// Why a destructive firing waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// This node's view is suspect.
    Suspect,
    /// The budget is spent.
    Budget,
}

impl Hold {
    /// The reason's label in metrics: `suspect` or `budget`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspect => "suspect",
            Self::Budget => "budget",
        }
    }
}

/// The brake of one node.
pub struct Brake {
    rules: BrakeRules,
    board: Arc<Board>,
    /// The peers' shares as their last heartbeats gave them (cluster mode).
    peers: RwLock<Vec<Share>>,
    /// The last verdict on this node's view, and when it was reached.
    verdict: Mutex<Option<(Instant, bool)>>,
    /// When the last warning went out, and the firings held since.
    warned: Mutex<(Option<Instant>, u64)>,
    /// Keys of the held firings already noted in their monitor's history.
    noted: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Brake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Brake").field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl Brake {
    /// A brake reading this node's share from `board`.
    pub fn new(rules: BrakeRules, board: Arc<Board>) -> Self {
        Self {
            rules,
            board,
            peers: RwLock::new(Vec::new()),
            verdict: Mutex::new(None),
            warned: Mutex::new((None, 0)),
            noted: Mutex::new(HashSet::default()),
        }
    }

    /// Returns whether the held firing `key` is to be noted in its monitor's history: the
    /// first time it is held (each later result that decides it again is held silently).
    pub fn first_hold(&self, key: &str) -> bool {
        let mut noted = self.noted.lock().unwrap_or_else(|poison| poison.into_inner());
        if noted.len() >= NOTED_MAX {
            noted.clear();
        }
        noted.insert(key.to_owned())
    }

    /// What the history says of a firing held for `hold`.
    pub fn detail(&self, hold: Hold) -> String {
        let rules = &self.rules;
        let why = match hold {
            Hold::Suspect => format!(
                "at least {}% of this node's monitors are failed and no other node sees as many \
                 (this node may be cut off from its targets)",
                rules.failed_percent
            ),
            Hold::Budget => format!(
                "the cluster started {} destructive reactions in the last {} s",
                rules.budget,
                rules.window.as_secs()
            ),
        };
        format!(
            "held by the blast-radius brake: {why}; not run yet: the next failed result decides \
             again"
        )
    }

    /// Records the peers' shares (each ownership round, from their heartbeat records).
    pub fn set_peers(&self, peers: Vec<Share>) {
        *self.peers.write().unwrap_or_else(|poison| poison.into_inner()) = peers;
    }

    /// Returns whether this node's view is suspect now (counted at most once a second).
    pub fn suspect(&self) -> bool {
        let mut verdict = self.verdict.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some((at, suspect)) = *verdict
            && at.elapsed() < VERDICT_FOR
        {
            return suspect;
        }
        let counts = self.board.counts();
        let wide = |count: usize| u64::try_from(count).unwrap_or(u64::MAX);
        let own = Share {
            failed: wide(counts.failed),
            total: wide(counts.healthy + counts.failed + counts.unknown),
        };
        let peers = self.peers.read().unwrap_or_else(|poison| poison.into_inner());
        let suspect = self.rules.suspect(own, &peers);
        *verdict = Some((Instant::now(), suspect));
        suspect
    }

    /// Decides, for `wanted` destructive firings about to be claimed, how many may run; the
    /// rest wait. Takes what runs from the store's budget; when the store cannot tell, none
    /// runs (a destructive reaction fails closed).
    pub async fn admit(&self, store: &dyn Store, wanted: u32) -> (u32, Option<Hold>) {
        if wanted == 0 {
            return (0, None);
        }
        if self.suspect() {
            self.held(wanted, Hold::Suspect);
            return (0, Some(Hold::Suspect));
        }
        let granted = match store
            .take_destructive(wanted, self.rules.budget, self.rules.window)
            .await
        {
            Ok(granted) => granted.min(wanted),
            Err(err) => {
                warn!(error = %err, "cannot read the destructive-reaction budget: holding them");
                0
            }
        };
        if granted < wanted {
            self.held(wanted - granted, Hold::Budget);
            return (granted, Some(Hold::Budget));
        }
        (granted, None)
    }

    /// Counts held firings and warns at most once per [`WARN_EVERY`].
    fn held(&self, count: u32, why: Hold) {
        let mut warned = self.warned.lock().unwrap_or_else(|poison| poison.into_inner());
        let (last, held) = &mut *warned;
        *held += u64::from(count);
        if last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        warn!(held = *held, "{}", self.detail(why));
        *held = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> BrakeRules {
        BrakeRules {
            budget: 10,
            window: Duration::from_secs(600),
            failed_percent: 50,
            min_monitors: 20,
        }
    }

    fn share(failed: u64, total: u64) -> Share {
        Share { failed, total }
    }

    #[test]
    fn a_share_is_high_from_the_percentage_on_and_only_on_enough_monitors() {
        let rules = rules();
        assert!(rules.high(share(10, 20)), "exactly half of 20");
        assert!(!rules.high(share(9, 20)), "just under half");
        assert!(!rules.high(share(19, 19)), "every monitor, but fewer than 20");
        assert!(rules.high(share(u64::MAX, u64::MAX)), "no overflow");
        assert!(!rules.high(share(0, 0)), "no monitors");
    }

    #[test]
    fn a_view_is_suspect_when_only_this_node_sees_a_high_share() {
        let rules = rules();
        assert!(rules.suspect(share(15, 20), &[]), "alone, no second node confirms");
        assert!(rules.suspect(share(15, 20), &[share(1, 100), share(0, 50)]));
        assert!(!rules.suspect(share(15, 20), &[share(1, 100), share(60, 100)]), "confirmed");
        assert!(!rules.suspect(share(5, 20), &[]), "a low share is trusted");
        assert!(
            rules.suspect(share(15, 20), &[share(5, 5)]),
            "a peer with too few monitors confirms nothing"
        );
    }
}
