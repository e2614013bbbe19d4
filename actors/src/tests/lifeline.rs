//! The lifeline keeps a cluster member's heartbeat and lease renewals going while the node's
//! main runtime is too busy to run anything else.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cloudroutes_engine::StoreError;
use cloudroutes_engine::cluster::{Coordinator, Fences};
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::store::embedded::EmbeddedStore;

use super::scripted::Scripted;
use crate::{ClusterSetup, Lifeline, Node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_renewals_go_on_while_every_worker_of_the_node_is_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    let recorder = Arc::new(Scripted::alone());
    let main = Arc::new(Scripted::beside(&recorder));
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
                #[allow(clippy::disallowed_methods, reason = "blocking the worker is the test")]
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
    let heartbeats = Scripted::between(&recorder.heartbeats, from, unblocked_at);
    let renewals = Scripted::between(&recorder.renewals, from, unblocked_at);
    assert!(heartbeats >= 12, "only {heartbeats} heartbeats while the workers were blocked");
    assert!(renewals >= 12, "only {renewals} lease renewals while the workers were blocked");
    node.shutdown().await;
}
