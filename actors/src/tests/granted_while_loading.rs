//! A partition whose lease is granted while its standby load is still under way is run by that
//! load when it finishes: it is neither loaded a second time nor dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cloudroutes_engine::cluster::{
    Acquired, Coordinator, Fences, Lease, Member, OpenClaim, PartitionVersion,
};
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::partition::Assignment;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_engine::{Monitor, MonitorId, MonitorState, StoreError};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::{monitor, wait_until};
use crate::{ClusterSetup, Lifeline, Node};

const ME: &str = "n1";
const MONITORS: usize = 5;

/// A store with this node and one peer, whose heartbeat never changes (it has crashed) and
/// which holds the only partition's lease until the test lets it expire. Loading the
/// partition's monitors waits for the test.
struct Scripted {
    me: Mutex<Option<Member>>,
    peer: Member,
    peer_alive: AtomicBool,
    monitors: Vec<Monitor>,
    loads: AtomicUsize,
    load_gate: Semaphore,
    granted: AtomicBool,
}

#[async_trait]
impl Coordinator for Scripted {
    async fn heartbeat(&self, member: &Member, _ttl: Duration) -> Result<(), StoreError> {
        *self.me.lock().unwrap() = Some(member.clone());
        Ok(())
    }
    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        let mut members: Vec<Member> = self.me.lock().unwrap().iter().cloned().collect();
        if self.peer_alive.load(Ordering::SeqCst) {
            members.push(self.peer.clone());
        }
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
        let alive = self.peer_alive.load(Ordering::SeqCst);
        let answer = |partition: &u32| {
            let acquired = if alive {
                Acquired::HeldBy { node: self.peer.id.clone(), epoch: 1 }
            } else {
                self.granted.store(true, Ordering::SeqCst);
                Acquired::Granted { epoch: 2, previous: Some((self.peer.id.clone(), 1)) }
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

/// A peer id that the assignment gives the only partition to while both nodes live.
fn peer_owning_the_partition() -> String {
    (2..100)
        .map(|n| format!("n{n}"))
        .find(|peer| {
            let assignment = Assignment::compute(&[ME.to_owned(), peer.clone()], 1);
            assignment.owner_of(0) == Some(peer.as_str())
        })
        .expect("some peer id wins the partition")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_granted_while_its_standby_loads_is_run_by_that_load() {
    let now = OffsetDateTime::now_utc();
    let peer = Member {
        id: peer_owning_the_partition(),
        http_addr: "127.0.0.1:1".into(),
        cluster_addr: None,
        zone: "default".into(),
        started_at: now,
        heartbeat_at: now,
        partitions: 1,
        monitors: MONITORS as u64,
        statuses: Default::default(),
        leaving: false,
    };
    let scripted = Arc::new(Scripted {
        me: Mutex::new(None),
        peer,
        peer_alive: AtomicBool::new(true),
        monitors: (0..MONITORS).map(|i| monitor(&format!("m{i}"))).collect(),
        loads: AtomicUsize::new(0),
        load_gate: Semaphore::new(0),
        granted: AtomicBool::new(false),
    });
    let on_lifeline = Arc::clone(&scripted);
    let lifeline =
        Lifeline::start(
            move || async move { Ok::<_, StoreError>(on_lifeline as Arc<dyn Coordinator>) },
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    let mut config = NodeConfig::default();
    config.cluster.partitions = 1;
    config.cluster.heartbeat_ms = 100;
    config.cluster.renew_ms = 200;
    let fences = Arc::new(Fences::new(Duration::from_millis(config.cluster.fence_ms)));
    let setup = ClusterSetup { coordinator: scripted.clone(), fences, lifeline };
    let node = Node::start_cluster(config, ME.into(), store, setup).await.unwrap();
    node.join_cluster().await;
    let metrics = node.metrics();

    // The peer's heartbeat stays the same: after two beats the partition goes on standby, and
    // its load waits.
    wait_until("the standby load starts", async || scripted.loads.load(Ordering::SeqCst) == 1)
        .await;
    // (This node's heartbeat record carries how many monitors are on its board.)
    let on_board = || scripted.me.lock().unwrap().as_ref().map_or(0, |me| me.monitors);
    assert_eq!(metrics.monitors_standby.get(), 0, "nothing spawned while it loads");

    // The peer's records expire: the lease is granted here while the load still waits.
    scripted.peer_alive.store(false, Ordering::SeqCst);
    wait_until("the lease is granted", async || scripted.granted.load(Ordering::SeqCst)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(scripted.loads.load(Ordering::SeqCst), 1, "the grant loads nothing a second time");
    assert_eq!(on_board(), 0, "nothing runs before the load is done");

    // The load finishes: it runs the partition itself.
    scripted.load_gate.add_permits(Semaphore::MAX_PERMITS / 2);
    let running = async || {
        let cluster = node.cluster().expect("cluster mode");
        on_board() == MONITORS as u64 && cluster.running().contains(&0)
    };
    wait_until("the partition's monitors run", running).await;
    assert_eq!(metrics.monitors_standby.get(), 0, "none left held back");
    assert_eq!(scripted.loads.load(Ordering::SeqCst), 1, "one load in all");
    node.shutdown().await;
}
