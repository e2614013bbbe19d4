//! Standby: the monitors of partitions this node is about to take over, spawned ahead.
//!
//! A peer whose heartbeat has stayed the same for two beats has most likely crashed: its
//! leases expire a few seconds later, and only then are its partitions granted to the
//! survivors. A peer that announces it is leaving releases its leases once its monitors have
//! stopped and their state is written, which also takes seconds. Loading and spawning hundreds
//! of thousands of monitors takes seconds of its own, so a survivor starts on the partitions it
//! would get as soon as it sees either: it loads them and spawns their actors behind a closed
//! [`Gate`]. They check nothing, report nothing and stay off the board.
//!
//! When a lease is granted, the partition's version (read before it was loaded) tells what was
//! written since. Nothing: its monitors go on the board and its gate opens, so they run at once.
//! Only states (the leaving peer's last write, or a peer that was alive after all): the states
//! are read again first. A monitor put or deleted: the standby is stopped and the partition
//! loads as usual. A standby no longer wanted (the peer beats again) is stopped.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, MutexGuard};

use cloudroutes_engine::cluster::PartitionVersion;
use cloudroutes_engine::{MonitorId, MonitorState};
use futures::future::join_all;
use tracing::{debug, info, warn};

use super::partitions::{Loaded, at_once};
use super::{Node, call};
use crate::board::Listing;
use crate::gate::Gate;
use crate::supervisor::SupervisorMsg;

/// One partition's monitors, spawned behind a closed gate.
pub(crate) struct Standby {
    /// The partition's version, read before it was loaded.
    version: PartitionVersion,
    gate: Arc<Gate>,
    /// Monitors spawned (those that run on a schedule).
    spawned: usize,
    /// What goes on the board when the gate opens.
    entries: Vec<(Arc<Listing>, MonitorState)>,
}

/// A partition on standby.
pub(crate) enum Slot {
    /// Being loaded; whoever removes the slot meanwhile abandons the load.
    Loading,
    /// Being loaded, and its lease was granted meanwhile: the load runs it when done.
    Granted,
    /// Spawned, waiting for its lease.
    Ready(Standby),
}

/// The partitions on standby.
pub(crate) type Slots = HashMap<u32, Slot>;

impl Node {
    fn slots(&self) -> Option<MutexGuard<'_, Slots>> {
        let cluster = self.cluster()?;
        Some(cluster.standby.lock().unwrap_or_else(|poison| poison.into_inner()))
    }

    /// Keeps on standby the partitions of `wanted` (this node would take them if its silent
    /// peers were gone) and of `desired` (assigned here, lease not granted yet): starts loading
    /// the new ones of `wanted` in the background, and stops the rest.
    pub(crate) async fn keep_standby(&self, wanted: &BTreeSet<u32>, desired: &BTreeSet<u32>) {
        let keep = |partition: &u32| wanted.contains(partition) || desired.contains(partition);
        let (gone, dropped, load) = {
            let Some(mut slots) = self.slots() else { return };
            let gone: Vec<u32> = slots.keys().copied().filter(|p| !keep(p)).collect();
            let dropped: Vec<Standby> = gone
                .iter()
                .filter_map(|partition| match slots.remove(partition) {
                    Some(Slot::Ready(standby)) => Some(standby),
                    _ => None,
                })
                .collect();
            let load: Vec<u32> =
                wanted.iter().copied().filter(|p| !slots.contains_key(p)).collect();
            for &partition in &load {
                slots.insert(partition, Slot::Loading);
            }
            (gone, dropped, load)
        };
        if !gone.is_empty() {
            info!(partitions = gone.len(), "no longer about to take these partitions over");
            self.stop_standby(dropped).await;
        }
        if !load.is_empty() {
            info!(
                partitions = load.len(),
                "a peer is silent or leaving: spawning the monitors of the partitions this node \
                 would take over, held back until their leases are granted"
            );
            let node = self.clone();
            tokio::spawn(async move { node.load_standby(load).await });
        }
    }

    /// Loads and spawns `partitions` behind closed gates, several at once.
    async fn load_standby(&self, partitions: Vec<u32>) {
        let Some(cluster) = self.cluster() else { return };
        let versions = match cluster.coordinator.partition_versions(&partitions).await {
            Ok(versions) => versions,
            Err(err) => {
                warn!(error = %err, "cannot read partition versions; no standby this round");
                self.abandon_loading(&partitions).await;
                return;
            }
        };
        let loads: Vec<_> = partitions
            .into_iter()
            .zip(versions)
            .map(|(partition, version)| {
                let node = self.clone();
                async move { node.load_standby_partition(partition, version).await }
            })
            .collect();
        at_once(loads).await;
        self.set_standby_gauge();
    }

    /// Loads one partition and spawns its monitors behind a new gate, unless its slot was
    /// removed meanwhile.
    async fn load_standby_partition(&self, partition: u32, version: PartitionVersion) {
        let Ok(supervisor) = self.supervisor() else { return };
        let Some(cluster) = self.cluster() else { return };
        let Loaded { mut starts, entries } = match self.load_partition(partition).await {
            Ok(loaded) => loaded,
            Err(err) => {
                warn!(partition, error = %err, "cannot load a partition for standby");
                self.abandon_loading(&[partition]).await;
                return;
            }
        };
        let gate = Arc::new(Gate::default());
        for start in &mut starts {
            start.gate = Some(Arc::clone(&gate));
        }
        let standby = Standby { version, gate, spawned: starts.len(), entries };
        let granted = {
            let Some(mut slots) = self.slots() else { return };
            match slots.get(&partition) {
                Some(Slot::Loading) => {
                    // Spawned while the slot is locked, so that no stop can look at it in
                    // between and miss them.
                    let _ = supervisor.cast(SupervisorMsg::Upsert(starts));
                    slots.insert(partition, Slot::Ready(standby));
                    return;
                }
                Some(Slot::Granted) => (starts, standby),
                _ => return,
            }
        };
        let (starts, standby) = granted;
        // Granted while it loaded. No ownership round runs while it starts, so none can stop
        // or release it half-way; the round that ran meanwhile may have dropped it.
        let _work = cluster.work.lock().await;
        {
            let Some(mut slots) = self.slots() else { return };
            if !matches!(slots.get(&partition), Some(Slot::Granted)) {
                return;
            }
            slots.remove(&partition);
            let _ = supervisor.cast(SupervisorMsg::Upsert(starts));
        }
        let (count, reload) = self.run_standby(vec![(partition, standby)]).await;
        let count = count + self.adopt_partitions(&reload).await;
        debug!(partition, monitors = count, "took over a partition granted while it loaded");
    }

    /// Forgets the slots of `partitions` that are still loading; loads those granted
    /// meanwhile as usual.
    async fn abandon_loading(&self, partitions: &[u32]) {
        let Some(cluster) = self.cluster() else { return };
        let _work = cluster.work.lock().await;
        let granted: Vec<u32> = {
            let Some(mut slots) = self.slots() else { return };
            let mut granted = Vec::new();
            for &partition in partitions {
                match slots.get(&partition) {
                    Some(Slot::Loading) => {}
                    Some(Slot::Granted) => granted.push(partition),
                    _ => continue,
                }
                slots.remove(&partition);
            }
            granted
        };
        if !granted.is_empty() {
            self.adopt_partitions(&granted).await;
        }
    }

    /// Takes the partitions just `granted` here off standby: runs those spawned (see
    /// [`Node::run_standby`]) and marks those still loading, which their load runs when done.
    /// Returns how many monitors started, and the granted partitions that need loading as
    /// usual (none on standby, or changed since).
    pub(crate) async fn start_standby(&self, granted: &[u32]) -> (usize, Vec<u32>) {
        let (taken, mut rest) = {
            let Some(mut slots) = self.slots() else { return (0, granted.to_vec()) };
            let (mut taken, mut rest) = (Vec::new(), Vec::new());
            for &partition in granted {
                match slots.get_mut(&partition) {
                    Some(slot @ (Slot::Loading | Slot::Granted)) => *slot = Slot::Granted,
                    Some(Slot::Ready(_)) => {
                        if let Some(Slot::Ready(standby)) = slots.remove(&partition) {
                            taken.push((partition, standby));
                        }
                    }
                    None => rest.push(partition),
                }
            }
            (taken, rest)
        };
        if taken.is_empty() {
            return (0, rest);
        }
        let (count, reload) = self.run_standby(taken).await;
        rest.extend(reload);
        (count, rest)
    }

    /// Runs standby partitions whose lease this node holds and whose definitions have not
    /// changed since they were loaded: on the board (with their states read again if those
    /// changed), marked running, gate open. The others are stopped. Returns how many monitors
    /// started, and the held partitions that need loading as usual.
    async fn run_standby(&self, taken: Vec<(u32, Standby)>) -> (usize, Vec<u32>) {
        let Some(cluster) = self.cluster() else { return (0, Vec::new()) };
        let (taken, lost): (Vec<_>, Vec<_>) =
            taken.into_iter().partition(|(partition, _)| cluster.fences.holds(*partition));
        if !lost.is_empty() {
            self.stop_standby(lost.into_iter().map(|(_, standby)| standby).collect()).await;
        }
        let partitions: Vec<u32> = taken.iter().map(|(partition, _)| *partition).collect();
        let versions = cluster.coordinator.partition_versions(&partitions).await.ok();
        let (mut usable, mut changed) = (Vec::new(), Vec::new());
        for (i, (partition, standby)) in taken.into_iter().enumerate() {
            match versions.as_ref().map(|versions| versions[i]) {
                Some(now) if now.definitions == standby.version.definitions => {
                    let stale_states = now.states != standby.version.states;
                    usable.push((partition, standby, stale_states));
                }
                _ => changed.push((partition, standby)),
            }
        }
        let reread = usable.iter().map(|(partition, _, stale)| async move {
            if *stale { Some(cluster.coordinator.partition_states(*partition).await) } else { None }
        });
        let reread = join_all(reread).await;
        let mut started = 0;
        for ((partition, mut standby, _), states) in usable.into_iter().zip(reread) {
            match states {
                None => {}
                Some(Ok(states)) => {
                    let mut states: HashMap<MonitorId, MonitorState> = states.into_iter().collect();
                    for (monitor, state) in &mut standby.entries {
                        *state = states.remove(&monitor.id).unwrap_or_default();
                    }
                }
                Some(Err(err)) => {
                    warn!(partition, error = %err, "cannot read states again; loading anew");
                    changed.push((partition, standby));
                    continue;
                }
            }
            for (monitor, state) in standby.entries {
                self.inner.parts.board.upsert(monitor, state);
            }
            cluster.running.lock().unwrap_or_else(|poison| poison.into_inner()).insert(partition);
            standby.gate.open();
            started += standby.spawned;
            tokio::task::yield_now().await;
        }
        if let Ok(supervisor) = self.supervisor() {
            let _ = supervisor.cast(SupervisorMsg::GatesOpened);
        }
        let reload: Vec<u32> = changed.iter().map(|(partition, _)| *partition).collect();
        if !changed.is_empty() {
            info!(partitions = changed.len(), "changed since their standby load; loading anew");
            self.stop_standby(changed.into_iter().map(|(_, standby)| standby).collect()).await;
        }
        self.set_standby_gauge();
        (started, reload)
    }

    /// Stops the monitors of standby partitions that will not run here (or not as loaded).
    async fn stop_standby(&self, dropped: Vec<Standby>) {
        let ids: Vec<MonitorId> = dropped
            .into_iter()
            .flat_map(|standby| standby.entries)
            .map(|(monitor, _)| monitor.id.clone())
            .collect();
        if let Ok(supervisor) = self.supervisor() {
            let _ = call(&supervisor, |port| SupervisorMsg::RemoveMany(ids.clone(), port)).await;
        }
        self.set_standby_gauge();
    }

    /// Sets the `monitors_standby` gauge from the slots.
    fn set_standby_gauge(&self) {
        let Some(slots) = self.slots() else { return };
        let spawned: usize = slots
            .values()
            .map(|slot| match slot {
                Slot::Ready(standby) => standby.spawned,
                Slot::Loading | Slot::Granted => 0,
            })
            .sum();
        drop(slots);
        let gauge = &self.inner.parts.metrics.monitors_standby;
        gauge.set(i64::try_from(spawned).unwrap_or(i64::MAX));
    }
}
