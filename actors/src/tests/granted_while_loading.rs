//! A partition whose lease is granted while its standby load is still under way is run by that
//! load when it finishes: it is neither loaded a second time nor dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cloudroutes_engine::StoreError;
use cloudroutes_engine::cluster::{Coordinator, Fences, Member};
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::partition::Assignment;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::scripted::Scripted;
use super::{monitor, wait_until};
use crate::{ClusterSetup, Lifeline, Node};

const ME: &str = "n1";
const MONITORS: usize = 5;

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
        heartbeat_ms: 100,
    };
    let monitors = (0..MONITORS).map(|i| monitor(&format!("m{i}"))).collect();
    let scripted = Arc::new(Scripted::with_peer(peer, monitors));
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
