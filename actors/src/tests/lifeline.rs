//! The lifeline keeps a cluster member's heartbeat and lease renewals going while the node's
//! main runtime is too busy to run anything else.

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cloudroutes_engine::cluster::{
    Acquired, Coordinator, Fences, Lease, Member, OpenClaim, PartitionVersion,
};
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_engine::{Monitor, MonitorId, MonitorState, StoreError};

use crate::{ClusterSetup, Lifeline, Node};

/// A store with one member (the node under test) that grants every lease and records when
/// the heartbeat was refreshed and the leases renewed. Two recorders sharing `member` stand
/// for two connections to one store.
#[derive(Default)]
struct Recorder {
    member: Arc<Mutex<Option<Member>>>,
    heartbeats: Mutex<Vec<Instant>>,
    renewals: Mutex<Vec<Instant>>,
}

impl Recorder {
    fn between(times: &Mutex<Vec<Instant>>, from: Instant, to: Instant) -> usize {
        times.lock().unwrap().iter().filter(|at| **at > from && **at < to).count()
    }
}

#[async_trait]
impl Coordinator for Recorder {
    async fn heartbeat(&self, member: &Member, _ttl: Duration) -> Result<(), StoreError> {
        *self.member.lock().unwrap() = Some(member.clone());
        self.heartbeats.lock().unwrap().push(Instant::now());
        Ok(())
    }
    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        Ok(self.member.lock().unwrap().iter().cloned().collect())
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
        Ok(partitions
            .iter()
            .map(|p| (*p, Acquired::Granted { epoch: 1, previous: None }))
            .collect())
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
        Ok(Vec::new())
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
        Ok("recorder".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_renewals_go_on_while_every_worker_of_the_node_is_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    let recorder = Arc::new(Recorder::default());
    let main = Arc::new(Recorder { member: Arc::clone(&recorder.member), ..Recorder::default() });
    let on_lifeline = Arc::clone(&recorder);
    let lifeline =
        Lifeline::start(
            move || async move { Ok::<_, StoreError>(on_lifeline as Arc<dyn Coordinator>) },
        )
        .await
        .unwrap();
    let mut config = NodeConfig::default();
    config.cluster.partitions = 4;
    config.cluster.heartbeat_ms = 50;
    config.cluster.renew_ms = 50;
    let fences = Arc::new(Fences::new(Duration::from_millis(config.cluster.fence_ms)));
    let setup = ClusterSetup { coordinator: main.clone(), fences: fences.clone(), lifeline };
    let node = Node::start_cluster(config, "n1".into(), store, setup).await.unwrap();
    node.join_cluster().await;
    assert_eq!(fences.leases().len(), 4, "the only member takes every partition");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        main.heartbeats.lock().unwrap().is_empty() && main.renewals.lock().unwrap().is_empty(),
        "heartbeats and renewals go through the lifeline's own connection"
    );

    // Both workers of the node's runtime sleep at once: nothing else runs on them meanwhile.
    let barrier = Arc::new(Barrier::new(2));
    let blocked_at = Instant::now();
    let blockers: Vec<_> = (0..2)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait();
                std::thread::sleep(Duration::from_millis(1_500));
            })
        })
        .collect();
    for blocker in blockers {
        blocker.await.unwrap();
    }
    let unblocked_at = Instant::now();

    // From 300 ms after the blocking began (time for both workers to be taken) to its end:
    // about 1.2 s, or 24 periods of 50 ms.
    let from = blocked_at + Duration::from_millis(300);
    let heartbeats = Recorder::between(&recorder.heartbeats, from, unblocked_at);
    let renewals = Recorder::between(&recorder.renewals, from, unblocked_at);
    assert!(heartbeats >= 12, "only {heartbeats} heartbeats while the workers were blocked");
    assert!(renewals >= 12, "only {renewals} lease renewals while the workers were blocked");
    node.shutdown().await;
}
