//! The blast-radius brake in a cluster: the destructive-reaction budget is counted in Redis
//! across nodes, and a firing held past it is not claimed, so it runs once the window frees up.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::cluster::{SlowSink, TestCluster};
use crate::common::{id_of, secs, wait_until};

const WINDOW_SECS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_past_the_clusters_budget_waits_unclaimed_and_runs_when_the_window_frees_up() {
    let window = WINDOW_SECS.to_string();
    let cluster = TestCluster::start_with(
        2,
        &[
            ("CLOUDROUTES_ENGINE_DESTRUCTIVE_BUDGET", "1"),
            ("CLOUDROUTES_ENGINE_DESTRUCTIVE_WINDOW_SECS", &window),
        ],
    )
    .await;
    let api = SlowSink::start(0, Duration::ZERO).await;
    let (status, reaction) = cluster
        .node(0)
        .post(
            "/reactions",
            json!({
                "name": "reboot",
                "action": {"type": "digitalocean-reboot", "api_token": "dop_v1_test",
                           "droplet_id": 3164444, "api_base_url": api.url("")},
                "trigger": 1, "call_on": "failed",
            }),
        )
        .await;
    assert_eq!(status, 201, "{reaction}");
    // One webhook monitor owned by each node, so the budget must be shared to hold.
    let mut by_owner: HashMap<String, (String, String)> = HashMap::new();
    for n in 0..32 {
        let body = json!({"name": format!("web-{n}"), "check": {"type": "webhook"},
                          "reactions": [id_of(&reaction)]});
        let (status, monitor) = cluster.node(0).post("/monitors", body).await;
        assert_eq!(status, 201, "{monitor}");
        let url = monitor["webhook_url"].as_str().expect("webhook_url");
        let path = url.split_once("/api/v1").expect("api path").1.to_owned();
        let (status, answer) = cluster.node(0).post(&path, json!({"action": "healthy"})).await;
        assert_eq!(status, 200, "{answer}");
        let owner = cluster.node(0).state(&id_of(&monitor)).await["owner"].clone();
        let owner = owner.as_str().expect("owner").to_owned();
        by_owner.entry(owner).or_insert((id_of(&monitor), path));
        if by_owner.len() == 2 {
            break;
        }
    }
    let monitors: Vec<(String, String)> = by_owner.into_values().collect();
    assert_eq!(monitors.len(), 2, "no monitor landed on one of the nodes");
    let fail_all = async || {
        for (_, path) in &monitors {
            let (status, answer) = cluster.node(1).post(path, json!({"action": "failed"})).await;
            assert_eq!(status, 200, "{answer}");
        }
    };

    fail_all().await;
    let first = Instant::now();
    wait_until(secs(10), "one reboot reaches the API", || async { api.calls().len() == 1 }).await;
    tokio::time::sleep(secs(1)).await;
    assert_eq!(api.calls().len(), 1, "the other node's reboot waits: the budget is shared");
    let mut outcomes = Vec::new();
    for (id, _) in &monitors {
        let events = cluster.node(0).events(id).await;
        outcomes.extend(events.into_iter().filter(|e| e["kind"] == "reaction"));
    }
    let (noted, ran): (Vec<_>, Vec<_>) = outcomes.iter().partition(|e| e["outcome"] == "skipped");
    assert_eq!(ran.len(), 1, "the waiting reboot was neither run nor closed: {outcomes:?}");
    assert_eq!(noted.len(), 1, "its history says it waits: {outcomes:?}");
    let detail = noted[0]["detail"].as_str().expect("detail");
    assert!(detail.contains("started 1 destructive reactions in the last 4 s"), "{detail}");
    assert!(noted[0]["claim"].is_null(), "a held firing claims nothing: {:?}", noted[0]);

    // Past the window, the next failed results decide again: the waiting reboot was not
    // claimed, so it runs now; the one that ran does not run again in its episode.
    tokio::time::sleep((first + secs(WINDOW_SECS) + Duration::from_millis(300)) - Instant::now())
        .await;
    fail_all().await;
    wait_until(secs(10), "the waiting reboot runs", || async { api.calls().len() == 2 }).await;
    tokio::time::sleep(secs(1)).await;
    assert_eq!(api.calls().len(), 2, "no reboot ran twice");
    for (id, _) in &monitors {
        let reactions: Vec<_> = cluster
            .node(0)
            .events(id)
            .await
            .into_iter()
            .filter(|e| e["kind"] == "reaction" && e["outcome"] != "skipped")
            .collect();
        // (The sink answers `ok`, not DigitalOcean's JSON: the outcome says so; sent it was.)
        assert_eq!(reactions.len(), 1, "one reboot per monitor: {reactions:?}");
    }
}
