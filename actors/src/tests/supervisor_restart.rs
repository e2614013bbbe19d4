//! When the monitor supervisor fails, the root starts it again with every monitor on the board:
//! the board keeps listings, so each definition is decoded again from its text.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use cloudroutes_engine::PluginSpec;
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use tokio::net::TcpListener;

use super::wait_until;
use crate::supervisor::SupervisorMsg;
use crate::{MonitorDraft, Node};

#[tokio::test]
async fn a_failed_supervisor_comes_back_with_every_monitor_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    let mut config = NodeConfig::default();
    config.egress.allow = vec!["127.0.0.0/8".into()];
    let node = Node::start(config, "n1".into(), store).await.unwrap();

    // A TCP target that counts the connections of each monitor's check, told apart by port.
    let mut counts = Vec::new();
    for i in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let check = serde_json::json!({"type": "tcp-check", "host": "127.0.0.1", "port": port});
        let serde_json::Value::Object(check) = check else { unreachable!() };
        let draft = MonitorDraft {
            name: format!("tcp {i}"),
            check: PluginSpec(check),
            interval_secs: Some(1),
            reactions: vec![],
            enabled: true,
            tags: vec![],
        };
        node.create_monitor(draft).await.unwrap();
        counts.push(accepted);
    }
    let all_checked = async |since: &[u32]| {
        counts.iter().zip(since).all(|(count, before)| count.load(Ordering::SeqCst) > *before)
    };
    wait_until("every monitor checks", async || all_checked(&[0, 0, 0]).await).await;

    let first = node.supervisor().unwrap();
    first.kill();
    wait_until("the root starts another supervisor", async || {
        node.supervisor().is_ok_and(|now| now.get_id() != first.get_id())
    })
    .await;
    let supervised = async || {
        let supervisor = node.supervisor().unwrap();
        supervisor.call(SupervisorMsg::Count, None).await.unwrap().unwrap()
    };
    wait_until("the new supervisor runs all three", async || supervised().await == 3).await;
    let after_restart: Vec<u32> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    wait_until("every monitor checks again", async || all_checked(&after_restart).await).await;
    node.shutdown().await;
}
