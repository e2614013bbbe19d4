//! Cluster mode of the node: the ownership loop that keeps the heartbeat, computes which
//! partitions this node should own from the live members, renews, releases and acquires the
//! partitions' leases, and starts or stops their monitors accordingly.
//!
//! Liveness and ownership come from the coordinator (Redis) only. A lease is held locally for
//! `cluster.fence_ms` after its last good renewal ([`Fences`]); past that, nothing of the
//! partition is written and nothing fires, but its monitors keep checking. When such a
//! partition's lease is renewed again it is reloaded from the store, so what was decided while
//! fenced off is decided again from durable state.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use cloudroutes_engine::cluster::{Acquired, Coordinator, Fences, Lease, Member};
use cloudroutes_engine::partition::{Assignment, partition_of};
use cloudroutes_engine::{MonitorId, Timestamp};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::Node;
use super::liveness::HeartbeatWatch;
use crate::brake::Share;
use crate::cluster::transport::Transport;

/// While ownership is about to change, the ownership loop runs every
/// `renew_ms / UNSETTLED_RETRY_SHARE`.
const UNSETTLED_RETRY_SHARE: u32 = 4;

/// A peer whose heartbeat has stayed the same for this many heartbeat periods is taken for
/// gone: the partitions this node would get from it are put on standby (see `standby.rs`).
const STANDBY_AFTER_BEATS: u32 = 2;

/// How a round of partition work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// This node holds what it wants, or cannot tell yet (the store did not answer): the next
    /// round comes one renew period later.
    Settled,
    /// Ownership is about to change: another node still held a partition this node wants, a
    /// peer's heartbeat is overdue (it may be gone, and its partitions free soon), or a peer
    /// is leaving.
    Unsettled,
}

/// What cluster mode adds to a node.
pub(crate) struct Cluster {
    pub coordinator: Arc<dyn Coordinator>,
    pub fences: Arc<Fences>,
    /// Runs the heartbeat and the lease keeper, on a thread and a connection of their own.
    pub lifeline: crate::Lifeline,
    pub transport: OnceLock<Transport>,
    pub partitions: u32,
    pub started_at: Timestamp,
    /// The assignment computed at the last tick, from the live members.
    pub assignment: RwLock<Assignment>,
    /// The live members seen at the last tick.
    pub members: RwLock<Vec<Member>>,
    /// Partitions whose monitors are on the board.
    pub running: Mutex<BTreeSet<u32>>,
    /// Partitions whose lease expired locally while their monitors kept running: reloaded from
    /// the store when the lease is held again.
    pub stale: Mutex<HashSet<u32>>,
    /// The store server's identity at the last tick (a change means it restarted).
    pub server_id: Mutex<Option<String>>,
    /// Set once the first tick has run (the node has taken its share).
    pub settled: AtomicBool,
    /// Held by each round of partition work, and by a standby load that starts a partition
    /// granted while it loaded: one at a time.
    pub work: tokio::sync::Mutex<()>,
    /// Partitions spawned ahead, while a silent peer still holds them (see `standby.rs`).
    pub standby: Mutex<super::standby::Slots>,
    /// The peers' last heartbeats, as the ownership loop saw them.
    pub heartbeats: Mutex<HeartbeatWatch>,
    /// The heartbeat loop's, the lease keeper's and the ownership loop's tasks.
    pub tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// What renewals found for the ownership loop: partitions lost, and partitions held again
    /// after a lapse.
    pub renewals: Mutex<(Vec<u32>, Vec<u32>)>,
}

impl Cluster {
    pub(crate) fn new(setup: super::ClusterSetup, partitions: u32) -> Self {
        Self {
            coordinator: setup.coordinator,
            fences: setup.fences,
            lifeline: setup.lifeline,
            transport: OnceLock::new(),
            partitions,
            started_at: OffsetDateTime::now_utc(),
            assignment: RwLock::new(Assignment::compute(&[], partitions)),
            members: RwLock::new(Vec::new()),
            running: Mutex::new(BTreeSet::new()),
            stale: Mutex::new(HashSet::new()),
            server_id: Mutex::new(None),
            settled: AtomicBool::new(false),
            work: tokio::sync::Mutex::new(()),
            standby: Mutex::new(Default::default()),
            heartbeats: Mutex::new(HeartbeatWatch::default()),
            tasks: Mutex::new(Vec::new()),
            renewals: Mutex::new((Vec::new(), Vec::new())),
        }
    }

    /// Returns the partitions whose monitors run here.
    pub(crate) fn running(&self) -> BTreeSet<u32> {
        self.running.lock().unwrap_or_else(|poison| poison.into_inner()).clone()
    }

    /// Returns whether this node runs `partition` and may write it now.
    pub(crate) fn runs(&self, partition: u32) -> bool {
        self.fences.epoch(partition).is_some()
            && self.running.lock().unwrap_or_else(|poison| poison.into_inner()).contains(&partition)
    }

    /// Returns the node the last assignment gives `partition` to.
    pub(crate) fn assigned_owner(&self, partition: u32) -> Option<String> {
        let assignment = self.assignment.read().unwrap_or_else(|poison| poison.into_inner());
        assignment.owner_of(partition).map(str::to_owned)
    }

    pub(crate) fn partition_of(&self, id: &MonitorId) -> u32 {
        partition_of(id, self.partitions)
    }
}

/// Where a monitor's results must be handled.
pub(crate) enum Owner {
    /// Here.
    Local,
    /// On another node.
    Remote(String),
    /// Nowhere right now (its partition is moving); the message says so.
    Moving(String),
}

impl Node {
    pub(crate) fn cluster(&self) -> Option<&Cluster> {
        self.inner.cluster.as_ref()
    }

    /// Returns where `id`'s results are handled.
    pub(crate) fn owner(&self, id: &MonitorId) -> Owner {
        let Some(cluster) = self.cluster() else { return Owner::Local };
        let partition = cluster.partition_of(id);
        if cluster.runs(partition) {
            return Owner::Local;
        }
        match cluster.assigned_owner(partition) {
            Some(node) if node != self.node_id() => Owner::Remote(node),
            _ => Owner::Moving(format!(
                "monitor `{id}` is in partition {partition}, which no node can write right now \
                 (it is being handed over, or the store is unreachable); retry in a few seconds"
            )),
        }
    }

    /// Joins the cluster (cluster mode only): heartbeat, a short wait so that peers starting at
    /// the same moment are counted, the heartbeat loop and the lease keeper (on the lifeline,
    /// where no monitor work delays them), a first round of partition work (this node takes
    /// its share before it reports ready), then the ownership loop.
    ///
    /// Call it once, after [`Node::attach_transport`] (if the node has a transport), so that
    /// peers can reach this node as soon as they see its heartbeat.
    pub async fn join_cluster(&self) {
        let Some(cluster) = self.cluster() else { return };
        self.announce().await;
        tokio::time::sleep(Duration::from_millis(self.inner.config.cluster.heartbeat_ms)).await;
        let beater = self.clone();
        let beater = cluster.lifeline.spawn(async move { beater.heartbeat_loop().await });
        let keeper = self.clone();
        let keeper = cluster.lifeline.spawn(async move { keeper.lease_keeper().await });
        cluster.tasks.lock().unwrap_or_else(|poison| poison.into_inner()).extend([beater, keeper]);
        let started = Instant::now();
        let first = self.tick().await;
        cluster.settled.store(true, Ordering::SeqCst);
        let owner = self.clone();
        let owner = tokio::spawn(async move { owner.ownership_loop(started, first).await });
        cluster.tasks.lock().unwrap_or_else(|poison| poison.into_inner()).push(owner);
    }

    /// Refreshes this node's heartbeat every `heartbeat_ms`, on its own: neither partition work
    /// nor a slow renewal delays it. Runs on the lifeline.
    async fn heartbeat_loop(&self) {
        let period = Duration::from_millis(self.inner.config.cluster.heartbeat_ms);
        loop {
            let started = Instant::now();
            self.heartbeat().await;
            tokio::time::sleep_until((started + period).into()).await;
        }
    }

    /// Keeps the leases alive, every `renew_ms`, and does nothing else: no partition work ever
    /// delays a renewal (a node busy adopting or reconciling a large share must not fence
    /// itself off). What the renewals find (leases lost, leases held again after a lapse) is
    /// handed to the ownership loop. Runs on the lifeline.
    async fn lease_keeper(&self) {
        let renew = Duration::from_millis(self.inner.config.cluster.renew_ms);
        loop {
            let started = Instant::now();
            self.check_server_restart().await;
            self.renew_held(started).await;
            tokio::time::sleep_until((started + renew).into()).await;
        }
    }

    /// Partition work, every `renew_ms`: membership, assignment, then stop what was lost,
    /// reload what lapsed, release what moved away, acquire what this node gained and keep on
    /// standby what it is about to gain; and the reconciliation every `reconcile_ms`.
    ///
    /// While a partition this node wants is still held by another node, a peer's heartbeat is
    /// overdue or a peer is leaving, the next round comes after a quarter of `renew_ms`: a dead
    /// node's heartbeat
    /// and leases expire, and a leaving node releases its leases, at any moment of the period,
    /// and waiting for the whole of it would add up to one renew period to every takeover.
    /// `started` and `round` are the first round's, which `join_cluster` ran.
    async fn ownership_loop(&self, mut started: Instant, mut round: Round) {
        let config = &self.inner.config.cluster;
        let renew = Duration::from_millis(config.renew_ms);
        let retry = renew / UNSETTLED_RETRY_SHARE;
        let reconcile = Duration::from_millis(config.reconcile_ms);
        let mut next_reconcile = Instant::now() + reconcile;
        loop {
            let period = if round == Round::Unsettled { retry } else { renew };
            tokio::time::sleep_until((started + period).into()).await;
            started = Instant::now();
            round = self.tick().await;
            if Instant::now() >= next_reconcile {
                self.reconcile().await;
                next_reconcile = Instant::now() + reconcile;
            }
        }
    }

    /// Refreshes this node's heartbeat, through the lifeline's connection.
    async fn heartbeat(&self) {
        let Some(cluster) = self.cluster() else { return };
        let ttl = Duration::from_millis(self.inner.config.cluster.heartbeat_ttl_ms);
        let coordinator = cluster.lifeline.coordinator();
        if let Err(err) = coordinator.heartbeat(&self.member_record(), ttl).await {
            warn!(error = %err, "could not refresh this node's heartbeat");
        }
    }

    /// One round of partition work.
    pub(crate) async fn tick(&self) -> Round {
        let Some(cluster) = self.cluster() else { return Round::Settled };
        if self.inner.parts.stopping.load(Ordering::SeqCst) {
            // Shutting down: the keeper holds the leases while monitors stop and running
            // reactions record their outcomes; `leave_cluster` releases them all at the end.
            return Round::Settled;
        }
        let _work = cluster.work.lock().await;
        let sent = Instant::now();
        let me = self.node_id().to_owned();
        self.apply_renewals().await;
        let members = match cluster.coordinator.members().await {
            Ok(members) => members,
            Err(err) => {
                warn!(error = %err, "cannot read cluster members; keeping current leases");
                return Round::Settled;
            }
        };
        let heartbeat = Duration::from_millis(self.inner.config.cluster.heartbeat_ms);
        // Peers about to go: silent ones (probably crashed) and leaving ones (shutting down).
        let (overdue, going) = {
            let mut watch = cluster.heartbeats.lock().unwrap_or_else(|poison| poison.into_inner());
            let overdue = watch.observe(&members, &me, sent, heartbeat);
            let mut going = watch.silent(sent, STANDBY_AFTER_BEATS);
            going.extend(members.iter().filter(|m| m.leaving && m.id != me).map(|m| m.id.clone()));
            (overdue, going)
        };
        // What the peers see, for the blast-radius brake (a second node that confirms).
        let shares = members.iter().filter(|m| m.id != me);
        let shares = shares.map(|m| Share { failed: m.statuses.failed, total: m.monitors });
        self.inner.parts.firing.brake.set_peers(shares.collect());
        let draining: HashSet<String> = match cluster.coordinator.draining().await {
            Ok(draining) => draining.into_iter().collect(),
            Err(_) => HashSet::new(),
        };
        if let Some(transport) = cluster.transport.get() {
            let peers: Vec<(String, String)> = members
                .iter()
                .filter(|m| m.id != me)
                .filter_map(|m| Some((m.id.clone(), m.cluster_addr.clone()?)))
                .collect();
            transport.connect_peers(&peers).await;
        }
        let mut live: Vec<String> =
            members.iter().map(|m| m.id.clone()).filter(|id| !draining.contains(id)).collect();
        live.retain(|id| *id != me);
        let taking_part = !draining.contains(&me);
        if taking_part {
            live.push(me.clone());
        }
        let assignment = Assignment::compute(&live, cluster.partitions);
        let desired: BTreeSet<u32> = if taking_part {
            assignment.partitions_of(&me).into_iter().collect()
        } else {
            BTreeSet::new()
        };
        *cluster.assignment.write().unwrap_or_else(|poison| poison.into_inner()) = assignment;
        *cluster.members.write().unwrap_or_else(|poison| poison.into_inner()) = members;
        let mut round = self.apply_desired(&desired, sent).await;
        let standby = if taking_part && !going.is_empty() {
            let survivors: Vec<String> =
                live.iter().filter(|id| !going.contains(id)).cloned().collect();
            let held: HashSet<u32> = cluster.fences.leases().iter().map(|l| l.partition).collect();
            Assignment::compute(&survivors, cluster.partitions)
                .partitions_of(&me)
                .into_iter()
                .filter(|p| !desired.contains(p) && !held.contains(p))
                .collect()
        } else {
            BTreeSet::new()
        };
        self.keep_standby(&standby, &desired).await;
        if overdue || !going.is_empty() {
            round = Round::Unsettled;
        }
        let held = i64::try_from(cluster.fences.leases().len()).unwrap_or(i64::MAX);
        self.inner.parts.metrics.partitions_held.set(held);
        round
    }

    /// Stops the partitions whose leases were lost and reloads those held again after a
    /// lapse, as the keeper found them.
    async fn apply_renewals(&self) {
        let Some(cluster) = self.cluster() else { return };
        let (mut lost, reload) = {
            let mut found = cluster.renewals.lock().unwrap_or_else(|poison| poison.into_inner());
            (std::mem::take(&mut found.0), std::mem::take(&mut found.1))
        };
        // A partition lost at one epoch and acquired again since (at a newer one) was already
        // reloaded by that acquisition: leave it running.
        lost.retain(|partition| !cluster.fences.holds(*partition));
        if !lost.is_empty() {
            warn!(
                count = lost.len(),
                "lost partition leases to another node; stopping their monitors"
            );
            self.stop_partitions(&lost, false).await;
        }
        let running = cluster.running();
        let reload: Vec<u32> = reload.into_iter().filter(|p| running.contains(p)).collect();
        if !reload.is_empty() {
            info!(
                count = reload.len(),
                "leases held again after a lapse; reloading those partitions"
            );
            self.stop_partitions(&reload, false).await;
            self.adopt_partitions(&reload).await;
        }
    }

    /// Releases and acquires so that this node holds exactly `desired` (renewals are the
    /// keeper's); [`Round::Unsettled`] when another node still held some of them.
    async fn apply_desired(&self, desired: &BTreeSet<u32>, sent: Instant) -> Round {
        let Some(cluster) = self.cluster() else { return Round::Settled };
        let me = self.node_id().to_owned();
        let ttl = Duration::from_millis(self.inner.config.cluster.lease_ms);
        let held = cluster.fences.leases();
        let drop: Vec<Lease> =
            held.iter().filter(|lease| !desired.contains(&lease.partition)).copied().collect();
        // A partition moving away is released only once its running reactions have recorded
        // their outcomes, so its new owner never finds a claim still being worked on; until
        // then the keeper renews its lease (its monitors are already stopped).
        let busy: HashSet<u32> = self
            .inner
            .parts
            .firing
            .in_flight_monitors()
            .iter()
            .map(|id| cluster.partition_of(id))
            .collect();
        let release: Vec<Lease> =
            drop.iter().filter(|lease| !busy.contains(&lease.partition)).copied().collect();
        if !drop.is_empty() {
            let partitions: Vec<u32> = drop.iter().map(|lease| lease.partition).collect();
            self.stop_partitions(&partitions, true).await;
        }
        if !release.is_empty() {
            if let Err(err) = cluster.coordinator.release(&me, &release).await {
                warn!(error = %err, "could not release leases; they will expire");
            }
            for lease in &release {
                cluster.fences.lost(*lease);
            }
            info!(
                count = release.len(),
                waiting = drop.len() - release.len(),
                "released partitions"
            );
        }
        let held: HashSet<u32> = cluster.fences.leases().iter().map(|l| l.partition).collect();
        let wanted: Vec<u32> = desired.iter().copied().filter(|p| !held.contains(p)).collect();
        if wanted.is_empty() {
            return Round::Settled;
        }
        let granted = match cluster.coordinator.acquire(&me, &wanted, ttl).await {
            Ok(granted) => granted,
            Err(err) => {
                warn!(error = %err, "could not acquire leases");
                return Round::Settled;
            }
        };
        let mut adopted = Vec::new();
        let mut round = Round::Settled;
        for (partition, answer) in granted {
            match answer {
                Acquired::Granted { epoch, .. } => {
                    cluster.fences.hold(Lease { partition, epoch }, sent);
                    adopted.push(partition);
                }
                Acquired::HeldBy { .. } => round = Round::Unsettled,
            }
        }
        if !adopted.is_empty() {
            // Anything left of these partitions from an earlier tenure is reloaded.
            self.stop_partitions(&adopted, false).await;
            let loading = Instant::now();
            let (ready, rest) = self.start_standby(&adopted).await;
            let count = ready + self.adopt_partitions(&rest).await;
            self.inner.parts.metrics.partitions_adopted.inc_by(adopted.len() as u64);
            let load_ms = loading.elapsed().as_millis() as u64;
            let from_standby = adopted.len() - rest.len();
            info!(
                partitions = adopted.len(),
                from_standby,
                monitors = count,
                load_ms,
                "took over partitions"
            );
        }
        round
    }

    /// Renews every lease held. A lease not renewed in time (past `fence_ms`) has already
    /// stopped writes locally: it is marked for a reload once held again. The outcomes go to
    /// the ownership loop ([`Node::apply_renewals`]).
    async fn renew_held(&self, sent: Instant) {
        let Some(cluster) = self.cluster() else { return };
        let expired = cluster.fences.expired();
        if !expired.is_empty() {
            warn!(
                count = expired.len(),
                "partition leases not renewed in time: writes and reactions stopped for them"
            );
            cluster.stale.lock().unwrap_or_else(|poison| poison.into_inner()).extend(expired);
        }
        let leases = cluster.fences.leases();
        if leases.is_empty() {
            return;
        }
        let ttl = Duration::from_millis(self.inner.config.cluster.lease_ms);
        let coordinator = cluster.lifeline.coordinator();
        let renewed = match coordinator.renew(self.node_id(), &leases, ttl).await {
            Ok(renewed) => renewed,
            Err(err) => {
                warn!(error = %err, "could not renew leases");
                return;
            }
        };
        let mut stale = cluster.stale.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut found = cluster.renewals.lock().unwrap_or_else(|poison| poison.into_inner());
        for (lease, ok) in renewed {
            // Only the lease as it was renewed: one released and taken again meanwhile, at a
            // new epoch, is left alone.
            if ok {
                if cluster.fences.renewed(lease, sent) && stale.remove(&lease.partition) {
                    found.1.push(lease.partition);
                }
            } else if cluster.fences.lost(lease) {
                stale.remove(&lease.partition);
                found.0.push(lease.partition);
            }
        }
    }

    /// Notices a store restart (its id changed) and holds reactions for the quarantine.
    async fn check_server_restart(&self) {
        let Some(cluster) = self.cluster() else { return };
        let Ok(id) = cluster.lifeline.coordinator().server_id().await else { return };
        let mut known = cluster.server_id.lock().unwrap_or_else(|poison| poison.into_inner());
        if known.as_ref().is_some_and(|known| *known != id) {
            let hold = Duration::from_millis(self.inner.config.cluster.quarantine_ms);
            warn!(
                hold_ms = hold.as_millis() as u64,
                "the Redis server restarted; holding reactions"
            );
            self.inner.parts.firing.hold_for(hold);
        }
        *known = Some(id);
    }

    /// This node's heartbeat record.
    fn member_record(&self) -> Member {
        let cluster = self.cluster();
        let config = &self.inner.config;
        Member {
            id: self.node_id().to_owned(),
            http_addr: self.http_addr(),
            cluster_addr: config.cluster.addr.clone(),
            zone: config.node.zone.clone(),
            started_at: cluster.map_or_else(OffsetDateTime::now_utc, |c| c.started_at),
            heartbeat_at: OffsetDateTime::now_utc(),
            partitions: cluster
                .map_or(0, |c| u32::try_from(c.fences.leases().len()).unwrap_or(u32::MAX)),
            monitors: u64::try_from(self.inner.parts.board.len()).unwrap_or(u64::MAX),
            statuses: self.inner.parts.board.counts().into(),
            leaving: self.inner.parts.stopping.load(Ordering::SeqCst),
            heartbeat_ms: config.cluster.heartbeat_ms,
        }
    }

    /// Refreshes this node's heartbeat now, from the lifeline: at joining, and at the start of
    /// a graceful shutdown to tell the peers at once that this node is leaving (they put its
    /// partitions on standby while it stops its monitors and writes their state).
    pub(crate) async fn announce(&self) {
        let Some(cluster) = self.cluster() else { return };
        let node = self.clone();
        cluster.lifeline.run(async move { node.heartbeat().await }).await;
    }

    /// Cluster part of shutdown: stop taking part, stop the loop, hand every partition over
    /// and leave. Monitors are already stopped and state flushed.
    pub(crate) async fn leave_cluster(&self) {
        let Some(cluster) = self.cluster() else { return };
        let tasks: Vec<_> =
            cluster.tasks.lock().unwrap_or_else(|poison| poison.into_inner()).drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        // A heartbeat in flight when aborted could land after the record is removed below.
        for task in tasks {
            let _ = task.await;
        }
        let leases = cluster.fences.leases();
        if let Err(err) = cluster.coordinator.release(self.node_id(), &leases).await {
            warn!(error = %err, "could not release leases at shutdown; they will expire");
        }
        for lease in &leases {
            cluster.fences.drop_partition(lease.partition);
        }
        if let Err(err) = cluster.coordinator.leave(self.node_id()).await {
            warn!(error = %err, "could not remove this node's heartbeat; it will expire");
        }
        if let Some(transport) = cluster.transport.get() {
            transport.shutdown().await;
        }
        info!(partitions = leases.len(), "handed partitions over and left the cluster");
    }
}
