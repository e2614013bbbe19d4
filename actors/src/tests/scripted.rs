//! A coordinator in memory for cluster tests: this node, and optionally one peer whose heartbeat
//! never changes (it has crashed) and which holds every lease until the test lets it expire.
//! It records when the heartbeat was refreshed and the leases renewed, and a partition's load
//! can be made to wait.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cloudroutes_engine::cluster::{
    Acquired, Coordinator, Lease, Member, OpenClaim, PartitionVersion,
};
use cloudroutes_engine::{Monitor, MonitorId, MonitorState, StoreError};
use tokio::sync::Semaphore;

/// See the module documentation.
pub(super) struct Scripted {
    /// This node's last heartbeat record; two coordinators sharing it stand for two
    /// connections to one store.
    pub me: Arc<Mutex<Option<Member>>>,
    /// The peer, if any.
    pub peer: Option<Member>,
    /// While set, the peer is listed and holds every lease.
    pub peer_alive: AtomicBool,
    /// Every partition's monitors.
    pub monitors: Vec<Monitor>,
    /// Partition loads begun.
    pub loads: AtomicUsize,
    /// Each partition load takes a permit first.
    pub load_gate: Semaphore,
    /// Set once a lease was granted.
    pub granted: AtomicBool,
    /// When the heartbeat was refreshed through this coordinator.
    pub heartbeats: Mutex<Vec<Instant>>,
    /// When leases were renewed through this coordinator.
    pub renewals: Mutex<Vec<Instant>>,
}

impl Scripted {
    /// This node alone: every lease is granted, loads do not wait.
    pub fn alone() -> Self {
        Self {
            me: Arc::default(),
            peer: None,
            peer_alive: AtomicBool::new(false),
            monitors: Vec::new(),
            loads: AtomicUsize::new(0),
            load_gate: Semaphore::new(Semaphore::MAX_PERMITS / 2),
            granted: AtomicBool::new(false),
            heartbeats: Mutex::default(),
            renewals: Mutex::default(),
        }
    }

    /// Another connection to the store `other` stands for.
    pub fn beside(other: &Scripted) -> Self {
        Self { me: Arc::clone(&other.me), ..Self::alone() }
    }

    /// This node and a live `peer`; loads of `monitors` wait until the test adds permits.
    pub fn with_peer(peer: Member, monitors: Vec<Monitor>) -> Self {
        Self {
            peer: Some(peer),
            peer_alive: AtomicBool::new(true),
            monitors,
            load_gate: Semaphore::new(0),
            ..Self::alone()
        }
    }

    /// Counts the instants of `times` strictly between `from` and `to`.
    pub fn between(times: &Mutex<Vec<Instant>>, from: Instant, to: Instant) -> usize {
        times.lock().unwrap().iter().filter(|at| **at > from && **at < to).count()
    }

    fn live_peer(&self) -> Option<&Member> {
        self.peer.as_ref().filter(|_| self.peer_alive.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl Coordinator for Scripted {
    async fn heartbeat(&self, member: &Member, _ttl: Duration) -> Result<(), StoreError> {
        *self.me.lock().unwrap() = Some(member.clone());
        self.heartbeats.lock().unwrap().push(Instant::now());
        Ok(())
    }
    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        let mut members: Vec<Member> = self.me.lock().unwrap().iter().cloned().collect();
        members.extend(self.live_peer().cloned());
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(members)
    }
    async fn leave(&self, _node: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn set_draining(&self, _node: &str, _draining: bool) -> Result<(), StoreError> {
        Ok(())
    }
    async fn draining(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    async fn acquire(
        &self,
        _node: &str,
        partitions: &[u32],
        _ttl: Duration,
    ) -> Result<Vec<(u32, Acquired)>, StoreError> {
        let answer = |partition: &u32| {
            let acquired = match (self.live_peer(), &self.peer) {
                (Some(peer), _) => Acquired::HeldBy { node: peer.id.clone(), epoch: 1 },
                (None, peer) => {
                    self.granted.store(true, Ordering::SeqCst);
                    let previous = peer.as_ref().map(|peer| (peer.id.clone(), 1));
                    Acquired::Granted { epoch: 2, previous }
                }
            };
            (*partition, acquired)
        };
        Ok(partitions.iter().map(answer).collect())
    }
    async fn renew(
        &self,
        _node: &str,
        leases: &[Lease],
        _ttl: Duration,
    ) -> Result<Vec<(Lease, bool)>, StoreError> {
        self.renewals.lock().unwrap().push(Instant::now());
        Ok(leases.iter().map(|lease| (*lease, true)).collect())
    }
    async fn release(&self, _node: &str, _leases: &[Lease]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn holders(&self) -> Result<Vec<(u32, String, u64)>, StoreError> {
        Ok(Vec::new())
    }
    async fn partition_monitors(&self, _partition: u32) -> Result<Vec<Monitor>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.load_gate.acquire().await.expect("the gate stays open").forget();
        Ok(self.monitors.clone())
    }
    async fn partition_states(
        &self,
        _partition: u32,
    ) -> Result<Vec<(MonitorId, MonitorState)>, StoreError> {
        Ok(Vec::new())
    }
    async fn partition_versions(
        &self,
        partitions: &[u32],
    ) -> Result<Vec<PartitionVersion>, StoreError> {
        Ok(vec![PartitionVersion::default(); partitions.len()])
    }
    async fn open_claims(&self, _partition: u32) -> Result<Vec<OpenClaim>, StoreError> {
        Ok(Vec::new())
    }
    async fn server_id(&self) -> Result<String, StoreError> {
        Ok("scripted".into())
    }
}
