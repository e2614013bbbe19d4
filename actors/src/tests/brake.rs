//! The blast-radius brake holds destructive reactions back, unclaimed, and lets each run once
//! when it lets go: past the budget, and while most monitors of a lone node fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cloudroutes_engine::ReactionOutcome::{self, Skipped};
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_engine::{
    CallOn, CheckOutcome, EventKind, Method, MonitorId, PluginSpec, ReactionId, Store,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{wait_until, webhook_draft};
use crate::metrics::BrakeLabel;
use crate::{Node, ReactionDraft};

/// A DigitalOcean API that counts droplet actions and answers each as the real one does (201
/// with the action).
async fn droplet_api() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let actions = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&actions);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0_u8; 4096];
                loop {
                    let Ok(read @ 1..) = stream.read(&mut chunk).await else { return };
                    request.extend_from_slice(&chunk[..read]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        if head.starts_with("post /v2/droplets/42/actions ") {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        break;
                    }
                }
                let body = r#"{"action":{"id":7,"status":"in-progress","type":"reboot"}}"#;
                let answer = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, actions)
}

fn reboot(port: u16) -> ReactionDraft {
    let serde_json::Value::Object(action) = serde_json::json!({
        "type": "digitalocean-reboot", "api_token": "dop_v1_brake", "droplet_id": 42,
        "api_base_url": format!("http://127.0.0.1:{port}"),
    }) else {
        unreachable!()
    };
    ReactionDraft {
        name: "reboot".into(),
        action: PluginSpec(action),
        trigger: 1,
        frequency_secs: 0,
        call_on: CallOn::Failed,
    }
}

async fn node_with(
    config: impl FnOnce(&mut NodeConfig),
) -> (Node, Arc<EmbeddedStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    let mut settings = NodeConfig::default();
    settings.egress.allow = vec!["127.0.0.0/8".into()];
    config(&mut settings);
    (Node::start(settings, "n1".into(), store.clone()).await.unwrap(), store, dir)
}

/// The reaction outcomes in a monitor's history, oldest first, with their detail.
async fn outcomes(store: &EmbeddedStore, id: &MonitorId) -> Vec<(ReactionOutcome, String)> {
    let events = store.list_events(id, None, 50).await.unwrap();
    let reactions = events.into_iter().rev().filter_map(|event| match event.kind {
        EventKind::Reaction { outcome, detail, .. } => Some((outcome, detail)),
        _ => None,
    });
    reactions.collect()
}

async fn monitors(node: &Node, count: usize, reactions: &[ReactionId]) -> Vec<MonitorId> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let created = node.create_monitor(webhook_draft(reactions.to_vec())).await.unwrap();
        ids.push(created.monitor.id);
    }
    ids
}

async fn observe(node: &Node, id: &MonitorId, healthy: bool) {
    let outcome = if healthy {
        CheckOutcome::Healthy { reason: "up".into() }
    } else {
        CheckOutcome::Failed { reason: "down".into() }
    };
    node.observe(id, outcome, Method::Webhook).await.unwrap();
}

fn braked(node: &Node, reason: &'static str) -> u64 {
    node.metrics().firings_braked.get_or_create(&BrakeLabel { reason }).get()
}

#[tokio::test]
async fn destructive_reactions_past_the_budget_wait_and_run_once_the_window_frees_up() {
    let (port, actions) = droplet_api().await;
    let (node, store, _dir) = node_with(|config| {
        config.engine.destructive_budget = 2;
        config.engine.destructive_window_secs = 2;
        config.engine.brake_min_monitors = 1_000; // the share stays out of this test
    })
    .await;
    let reaction = node.create_reaction(reboot(port)).await.unwrap().reaction.id;
    let ids = monitors(&node, 3, &[reaction]).await;
    for id in &ids {
        observe(&node, id, false).await;
    }
    let count = async || actions.load(Ordering::SeqCst);
    wait_until("two reboots reach the API", async || count().await == 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count().await, 2, "the third reboot waits for the budget");
    assert_eq!(braked(&node, "budget"), 1);
    let mut noted = Vec::new();
    for id in &ids {
        noted.extend(outcomes(&store, id).await.into_iter().filter(|(o, _)| *o == Skipped));
    }
    assert_eq!(noted.len(), 1, "the waiting reboot is noted in its history: {noted:?}");
    assert!(noted[0].1.contains("started 2 destructive reactions in the last 2 s"), "{noted:?}");

    // Once the window has passed, each monitor's next failed result decides again: only the
    // one whose reboot waited fires (the others fired once in this episode already).
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    for id in &ids {
        observe(&node, id, false).await;
    }
    wait_until("the waiting reboot runs", async || count().await == 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count().await, 3, "every reboot ran exactly once");
    node.shutdown().await;
}

#[tokio::test]
async fn destructive_reactions_wait_while_most_monitors_of_a_lone_node_fail() {
    let (port, actions) = droplet_api().await;
    let (node, store, _dir) = node_with(|config| {
        config.engine.brake_min_monitors = 4;
        config.engine.brake_failed_percent = 50;
    })
    .await;
    let reaction = node.create_reaction(reboot(port)).await.unwrap().reaction.id;
    let guarded = monitors(&node, 1, &[reaction]).await.remove(0);
    let others = monitors(&node, 3, &[]).await;
    for id in &others {
        observe(&node, id, true).await;
    }
    observe(&node, &others[0], false).await;
    observe(&node, &others[1], false).await;
    // Three of four failed: this node alone sees most of its monitors down.
    observe(&node, &guarded, false).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let count = async || actions.load(Ordering::SeqCst);
    assert_eq!(count().await, 0, "no reboot while this node's view is suspect");
    observe(&node, &guarded, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count().await, 0, "nor at the next failed result");
    assert_eq!(braked(&node, "suspect"), 2);
    let noted = outcomes(&store, &guarded).await;
    assert_eq!(noted.len(), 1, "noted once, however often it waits: {noted:?}");
    assert_eq!(noted[0].0, Skipped);
    assert!(noted[0].1.contains("may be cut off"), "{noted:?}");

    observe(&node, &others[0], true).await;
    observe(&node, &others[1], true).await;
    // One of four failed now; the verdict is counted again after a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    observe(&node, &guarded, false).await;
    wait_until("the reboot runs once the share falls", async || count().await == 1).await;
    observe(&node, &guarded, false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count().await, 1, "and only once in the episode");
    let outcomes: Vec<_> = outcomes(&store, &guarded).await.into_iter().map(|(o, _)| o).collect();
    assert_eq!(outcomes, [Skipped, ReactionOutcome::Executed]);
    node.shutdown().await;
}
