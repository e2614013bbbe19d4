//! Partitions of a cluster node: adopting one (load its monitors and states, start them),
//! stopping one (stop its monitors, write what is pending, forget them), and the periodic
//! reconciliation that repairs lost "changed" messages and settles claims left by dead nodes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cloudroutes_engine::{Monitor, MonitorId, MonitorState, ReactionId, StoreError, Timestamp};
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{LOAD_PAGE, Node, call};
use crate::board::Listing;
use crate::root::runnable;
use crate::router::RouterMsg;
use crate::supervisor::{Start, SupervisorMsg};

/// A partition as loaded from the store.
#[derive(Default)]
pub(super) struct Loaded {
    /// What starts its monitors that run on a schedule.
    pub starts: Vec<Start>,
    /// Every monitor, with its state: what goes on the board.
    pub entries: Vec<(Arc<Listing>, MonitorState)>,
}

/// Partitions loaded at once when adopting many.
const ADOPT_AT_ONCE: usize = 8;

/// Runs `loads` (one per partition), [`ADOPT_AT_ONCE`] at a time, each in its own task, so
/// that decoding uses every core while Redis answers the next read; returns what each returned
/// (none for a load that panicked).
pub(super) async fn at_once<F>(loads: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut running = JoinSet::new();
    let mut done = Vec::new();
    for load in loads {
        if running.len() >= ADOPT_AT_ONCE {
            done.extend(running.join_next().await.and_then(Result::ok));
        }
        running.spawn(load);
    }
    while let Some(finished) = running.join_next().await {
        done.extend(finished.ok());
    }
    done
}

/// Longest spread of the first checks of monitors that were overdue when adopted.
const OVERDUE_SPREAD: Duration = Duration::from_secs(1);

/// Returns when an adopted monitor's first check is due so that its schedule carries on from
/// its last check: at `last check + interval` when that is still ahead, else soon (spread over
/// up to a second so a mass takeover does not start every check at once). `None` (never
/// checked) leaves the random phase.
pub(super) fn continuity_due(
    last_check_at: Option<Timestamp>,
    interval: Duration,
) -> Option<Instant> {
    let last = last_check_at?;
    let since: Duration = (OffsetDateTime::now_utc() - last).try_into().unwrap_or(Duration::ZERO);
    let delay = match interval.checked_sub(since) {
        Some(ahead) if !ahead.is_zero() => ahead,
        _ => interval.min(OVERDUE_SPREAD).mul_f64(rand::random::<f64>()),
    };
    Some(Instant::now() + delay)
}

impl Node {
    /// Loads the monitors and states of `partitions` and starts them; returns how many.
    /// Several partitions load at once ([`at_once`]). The supervisor spawns what waits soonest due
    /// first, so overdue monitors of a partition loaded last do not wait behind the rest.
    pub(crate) async fn adopt_partitions(&self, partitions: &[u32]) -> usize {
        let loads: Vec<_> = partitions
            .iter()
            .map(|&partition| {
                let node = self.clone();
                async move { node.adopt_partition(partition).await }
            })
            .collect();
        at_once(loads).await.into_iter().sum()
    }

    /// Loads one partition's monitors and states and starts them; returns how many.
    async fn adopt_partition(&self, partition: u32) -> usize {
        let (Some(cluster), Ok(supervisor)) = (self.cluster(), self.supervisor()) else { return 0 };
        let loaded = match self.load_partition(partition).await {
            Ok(loaded) => loaded,
            Err(err) => {
                warn!(partition, error = %err, "cannot load a partition; retrying at the next tick");
                cluster.fences.drop_partition(partition);
                return 0;
            }
        };
        let count = loaded.entries.len();
        for (monitor, state) in loaded.entries {
            self.inner.parts.board.upsert(monitor, state);
        }
        let _ = supervisor.cast(SupervisorMsg::Upsert(loaded.starts));
        cluster.running.lock().unwrap_or_else(|poison| poison.into_inner()).insert(partition);
        count
    }

    /// Loads one partition's monitors and states from the store: what starts those that run
    /// (each due one interval after its last check), and every monitor with its state.
    pub(super) async fn load_partition(&self, partition: u32) -> Result<Loaded, StoreError> {
        let Some(cluster) = self.cluster() else { return Ok(Loaded::default()) };
        let (monitors, states) = tokio::join!(
            cluster.coordinator.partition_monitors(partition),
            cluster.coordinator.partition_states(partition)
        );
        let (monitors, states) = (monitors?, states?);
        let mut states: HashMap<MonitorId, _> = states.into_iter().collect();
        let mut loaded = Loaded {
            starts: Vec::with_capacity(monitors.len()),
            entries: Vec::with_capacity(monitors.len()),
        };
        for monitor in monitors {
            let state = states.remove(&monitor.id).unwrap_or_default();
            if let Some(mut start) = runnable(&monitor, &self.inner.parts.check_context) {
                start.first_due = continuity_due(state.last_check_at, start.interval);
                loaded.starts.push(start);
            }
            loaded.entries.push((Arc::new(Listing::of(&monitor)), state));
        }
        Ok(loaded)
    }

    /// Stops the monitors of `partitions` and forgets them. With `flush`, pending state is
    /// written first (a graceful hand-over, while the leases still hold).
    pub(crate) async fn stop_partitions(&self, partitions: &[u32], flush: bool) {
        let Some(cluster) = self.cluster() else { return };
        let parts = &self.inner.parts;
        let set: HashSet<u32> = partitions.iter().copied().collect();
        let ids: Vec<MonitorId> = parts
            .board
            .monitors()
            .iter()
            .map(|monitor| monitor.id.clone())
            .filter(|id| set.contains(&cluster.partition_of(id)))
            .collect();
        if let Ok(supervisor) = self.supervisor() {
            let _ = call(&supervisor, |port| SupervisorMsg::RemoveMany(ids.clone(), port)).await;
        }
        if flush {
            for router in parts.routers().all() {
                let _ = call(&router, RouterMsg::Flush).await;
            }
        }
        for id in &ids {
            parts.board.remove(id);
        }
        for router in parts.routers().all() {
            let _ = call(&router, |port| RouterMsg::ForgetMany(ids.clone(), port)).await;
        }
        let mut running = cluster.running.lock().unwrap_or_else(|poison| poison.into_inner());
        for partition in partitions {
            running.remove(partition);
        }
    }

    /// Compares what runs here with the store and repairs differences: reactions added,
    /// changed or deleted elsewhere; monitors of held partitions created, changed or deleted
    /// elsewhere; and claims that dead nodes left without an outcome.
    pub(crate) async fn reconcile(&self) {
        if let Err(err) = self.reconcile_reactions().await {
            warn!(error = %err, "reconciliation could not read reactions");
        }
        let Some(cluster) = self.cluster() else { return };
        let mut repaired = 0;
        // What runs here, by partition, in one pass over the board.
        let mut running: HashMap<u32, Vec<MonitorId>> = HashMap::new();
        for monitor in self.inner.parts.board.monitors() {
            running.entry(cluster.partition_of(&monitor.id)).or_default().push(monitor.id.clone());
        }
        for partition in cluster.running() {
            if !cluster.runs(partition) {
                continue;
            }
            let here = running.remove(&partition).unwrap_or_default();
            match cluster.coordinator.partition_monitors(partition).await {
                Ok(stored) => repaired += self.reconcile_partition(here, stored).await,
                Err(err) => {
                    warn!(partition, error = %err, "reconciliation could not read a partition")
                }
            }
            match cluster.coordinator.open_claims(partition).await {
                Ok(claims) => self.settle_abandoned(claims).await,
                Err(err) => warn!(partition, error = %err, "reconciliation could not read claims"),
            }
        }
        if repaired > 0 {
            info!(repaired, "reconciliation repaired monitors that missed a change message");
        }
    }

    async fn reconcile_reactions(&self) -> Result<(), crate::NodeError> {
        let parts = &self.inner.parts;
        let mut after: Option<ReactionId> = None;
        let mut seen = HashSet::new();
        loop {
            let page = parts.store.list_reactions(after.as_ref(), LOAD_PAGE).await?;
            for reaction in &page {
                seen.insert(reaction.id.clone());
                if parts.book.get(&reaction.id).is_some_and(|loaded| loaded.def == *reaction) {
                    continue;
                }
                if let Ok(loaded) = self.build_reaction(reaction.clone()) {
                    parts.book.insert(loaded);
                }
            }
            match page.last() {
                Some(last) if page.len() == LOAD_PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        for id in parts.book.ids() {
            if !seen.contains(&id) {
                parts.book.remove(&id);
            }
        }
        Ok(())
    }

    /// Brings one held partition in line with `stored` (`here`: the ids running here); returns
    /// how many monitors needed a repair.
    async fn reconcile_partition(&self, here: Vec<MonitorId>, stored: Vec<Monitor>) -> usize {
        let parts = &self.inner.parts;
        let mut repaired = 0;
        let stored_ids: HashSet<MonitorId> = stored.iter().map(|m| m.id.clone()).collect();
        for monitor in stored {
            let current = parts.board.get(&monitor.id).map(|entry| entry.monitor);
            if !current.is_some_and(|listing| listing.lists(&monitor)) {
                repaired += 1;
                self.apply_monitor(monitor).await;
            }
        }
        let gone: Vec<MonitorId> = here.into_iter().filter(|id| !stored_ids.contains(id)).collect();
        for id in gone {
            repaired += 1;
            self.forget_monitor(&id).await;
        }
        repaired
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::OffsetDateTime;
    use tokio::time::Instant;

    use super::{OVERDUE_SPREAD, continuity_due};

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_adopted_monitor_is_due_one_interval_after_its_last_check() {
        let now = Instant::now();
        let last = OffsetDateTime::now_utc() - Duration::from_secs(20);
        let due = continuity_due(Some(last), MINUTE).unwrap();
        let ahead = due - now;
        let off = ahead.abs_diff(Duration::from_secs(40));
        assert!(off < Duration::from_millis(100), "due {ahead:?} from now");
    }

    #[test]
    fn an_overdue_monitor_is_due_within_the_spread_and_a_never_checked_one_keeps_its_phase() {
        let now = Instant::now();
        let last = OffsetDateTime::now_utc() - Duration::from_secs(300);
        for _ in 0..100 {
            let due = continuity_due(Some(last), MINUTE).unwrap();
            assert!(
                due.saturating_duration_since(now) <= OVERDUE_SPREAD + Duration::from_millis(50)
            );
        }
        assert_eq!(continuity_due(None, MINUTE), None);
    }
}
