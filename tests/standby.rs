//! Standby in cluster mode: when a peer goes silent, a survivor spawns the monitors it would
//! take over ahead of time, holds them back until their leases are granted, and reloads any
//! partition written to in between.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::cluster::{Probe, TestCluster, probe_monitors};
use crate::common::{Node, secs, wait_until};

/// Leases long enough (8 s) that the silence is noticed well before they expire: the
/// heartbeat (every 500 ms) looks silent after 1 s, and its record lives as long as a lease.
const LEASE_MS: u64 = 8_000;
const RENEW_MS: u64 = 1_000;
const INTERVAL_SECS: u32 = 1;
const COUNT: usize = 60;

/// Reads one unlabelled metric of a node.
async fn metric(node: &Node, name: &str) -> f64 {
    let text = reqwest::get(node.url("/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peers_monitors_wait_on_standby_and_run_as_stored_once_their_leases_are_ours() {
    let lease = LEASE_MS.to_string();
    let renew = RENEW_MS.to_string();
    let mut cluster = TestCluster::start_with(
        2,
        &[
            ("CLOUDROUTES_CLUSTER_LEASE_MS", &lease),
            ("CLOUDROUTES_CLUSTER_HEARTBEAT_TTL_MS", &lease),
            ("CLOUDROUTES_CLUSTER_RENEW_MS", &renew),
            ("CLOUDROUTES_CLUSTER_FENCE_MS", "6000"),
        ],
    )
    .await;
    cluster.wait_balanced().await;
    let probe = Probe::start().await;
    let ids = probe_monitors(&[cluster.node(0)], &probe, COUNT, INTERVAL_SECS, &[]).await;
    wait_until(secs(15), "every monitor checked", || async { probe.all_hits().len() == COUNT })
        .await;
    tokio::time::sleep(secs(2)).await;
    let mut on_node_2 = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if cluster.node(0).state(id).await["owner"] == "node-2" {
            on_node_2.push((i, id.clone()));
        }
    }
    assert!(on_node_2.len() >= 3, "node-2 runs a share: {on_node_2:?}");
    assert_eq!(metric(cluster.node(0), "cloudroutes_monitors_standby").await, 0.0);
    let owned_before = metric(cluster.node(0), "cloudroutes_monitors_owned").await;

    // node-2 dies; its leases were renewed at most one renew period ago.
    let killed_at = Instant::now();
    cluster.nodes[1].kill().await;
    let survivor = cluster.node(0);
    let earliest_expiry = killed_at + Duration::from_millis(LEASE_MS - RENEW_MS);
    let spawned = on_node_2.len() as f64;
    wait_until(secs(5), "node-2's monitors on standby on node-1", || async {
        metric(survivor, "cloudroutes_monitors_standby").await == spawned
    })
    .await;
    assert!(Instant::now() < earliest_expiry, "standby came too late for this test");
    assert_eq!(
        metric(survivor, "cloudroutes_monitors_owned").await,
        owned_before,
        "monitors on standby do not count as running"
    );

    // Written to while on standby: one monitor checks another path, another is deleted.
    let (changed_i, changed) = &on_node_2[0];
    let (deleted_i, deleted) = &on_node_2[1];
    let body = json!({
        "name": "changed on standby",
        "check": {"type": "http-get-statuscode", "url": probe.url("/changed"), "timeout_ms": 2000},
        "interval_secs": INTERVAL_SECS,
    });
    let (status, answer) = survivor.put(&format!("/monitors/{changed}"), body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = survivor.delete(&format!("/monitors/{deleted}")).await;
    assert!(status == 204 || status == 200, "{status} {answer}");
    let written_at = Instant::now();
    assert!(written_at < earliest_expiry, "the writes came too late for this test");

    cluster.wait_held_by(0, &["node-1"], secs(20)).await;
    wait_until(secs(10), "every remaining monitor of node-2 checked on node-1", || async {
        let hits = probe.all_hits();
        let checked = |path: &str| hits.get(path).is_some_and(|h| h.iter().any(|t| *t > killed_at));
        checked("/changed") && on_node_2[2..].iter().all(|(i, _)| checked(&format!("/m/{i}")))
    })
    .await;
    tokio::time::sleep(secs(2)).await;
    let hits = probe.all_hits();
    // Nothing checked while held back: node-2's paths are quiet from its death until its
    // leases could expire.
    for (i, _) in &on_node_2 {
        let early: Vec<_> = hits
            .get(&format!("/m/{i}"))
            .into_iter()
            .flatten()
            .filter(|t| **t > killed_at + Duration::from_millis(200) && **t < earliest_expiry)
            .collect();
        assert!(early.is_empty(), "/m/{i} was checked before the lease could be granted");
    }
    let after_write =
        |path: &str| hits.get(path).into_iter().flatten().filter(|t| **t > written_at).count();
    assert_eq!(after_write(&format!("/m/{changed_i}")), 0, "the old definition ran");
    assert_eq!(after_write(&format!("/m/{deleted_i}")), 0, "the deleted monitor ran");
    assert_eq!(metric(survivor, "cloudroutes_monitors_standby").await, 0.0);
    assert_eq!(
        metric(survivor, "cloudroutes_monitors_owned").await,
        (COUNT - 1) as f64,
        "every monitor left runs on node-1"
    );
}
