//! Standby in cluster mode: when a peer goes silent, a survivor spawns the monitors it would
//! take over ahead of time, holds them back until their leases are granted, and reloads any
//! partition written to in between.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::cluster::{PARTITIONS, Probe, SlowSink, TestCluster, probe_monitors};
use crate::common::{Node, id_of, secs, wait_until};

/// Leases long enough (8 s) that the silence is noticed well before they expire: the
/// heartbeat (every 500 ms) looks silent after 1 s, and its record lives as long as a lease.
const LEASE_MS: u64 = 8_000;
const RENEW_MS: u64 = 1_000;
const INTERVAL_SECS: u32 = 1;
const COUNT: usize = 60;

/// Copies monitor `from`'s stored state to monitor `to` and raises the states version of `to`'s
/// partition, as a fenced write would (the partitions are found by their id sets).
const COPY_STATE: &str = "local function part(id) \
     for p = 0, tonumber(ARGV[3]) - 1 do \
       if redis.call('SISMEMBER', 'cr:{p' .. p .. '}:ids', id) == 1 then return p end \
     end end \
     local from, to = part(ARGV[1]), part(ARGV[2]) \
     local state = redis.call('HGET', 'cr:{p' .. from .. '}:state', ARGV[1]) \
     redis.call('HSET', 'cr:{p' .. to .. '}:state', ARGV[2], state) \
     return redis.call('INCR', 'cr:{p' .. to .. '}:states_version')";

/// Returns the lease (`node|epoch`) of the partition holding monitor `ARGV[1]` (a raw RESP
/// reply).
const LEASE_OF: &str = "for p = 0, tonumber(ARGV[2]) - 1 do \
       if redis.call('SISMEMBER', 'cr:{p' .. p .. '}:ids', ARGV[1]) == 1 then \
         return redis.call('GET', 'cr:{p' .. p .. '}:lease') \
       end \
     end";

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
    // Monitors that check once an hour, never in this test.
    let mut hourly = Vec::new();
    for i in 0..8 {
        let monitor = cluster
            .node(0)
            .create_monitor(json!({
                "name": format!("hourly {i}"),
                "check": {"type": "http-get-statuscode", "url": probe.url("/hourly")},
                "interval_secs": 3600,
            }))
            .await;
        hourly.push(id_of(&monitor));
    }
    // One monitor fails: its stored state is copied to an hourly one during the standby.
    probe.set_failing("/m/0", true);
    wait_until(secs(15), "every monitor checked", || async {
        probe.all_hits().keys().filter(|path| path.starts_with("/m/")).count() == COUNT
    })
    .await;
    cluster.node(0).wait_state(&ids[0], secs(10), "failed", |s| s["status"] == "failed").await;
    tokio::time::sleep(secs(2)).await;
    let mut on_node_2 = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if cluster.node(0).state(id).await["owner"] == "node-2" {
            on_node_2.push((i, id.clone()));
        }
    }
    assert!(on_node_2.len() >= 3, "node-2 runs a share: {on_node_2:?}");
    let partitions = PARTITIONS.to_string();
    let hourly_on_node_2: Vec<String> = hourly
        .iter()
        .filter(|id| {
            let lease = cluster.redis.command(&["EVAL", LEASE_OF, "0", id, &partitions]);
            lease.contains("node-2|")
        })
        .cloned()
        .collect();
    let hourly = hourly_on_node_2.first().expect("an hourly monitor on node-2").clone();
    assert_ne!(cluster.node(0).state(&hourly).await["status"], "failed");
    assert_eq!(metric(cluster.node(0), "cloudroutes_monitors_standby").await, 0.0);
    let owned_before = metric(cluster.node(0), "cloudroutes_monitors_owned").await;

    // node-2 dies; its leases were renewed at most one renew period ago.
    let killed_at = Instant::now();
    cluster.nodes[1].kill().await;
    let survivor = cluster.node(0);
    let earliest_expiry = killed_at + Duration::from_millis(LEASE_MS - RENEW_MS);
    let spawned = (on_node_2.len() + hourly_on_node_2.len()) as f64;
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
    // And a state written (as node-2 would have, had it still been writing).
    cluster.redis.command(&["EVAL", COPY_STATE, "0", &ids[0], &hourly, &partitions]);
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
        (COUNT - 1 + 8) as f64,
        "every monitor left runs on node-1"
    );
    let state = survivor.state(&hourly).await;
    assert_eq!(state["status"], "failed", "runs with the state stored at the grant: {state}");
    let logs = survivor.logs();
    assert!(logs.contains("from_standby="), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_peers_partitions_are_spawned_ahead_and_run_with_its_last_states() {
    let mut cluster = TestCluster::start(2).await;
    cluster.wait_balanced().await;
    let probe = Probe::start().await;
    probe_monitors(&[cluster.node(0)], &probe, COUNT, INTERVAL_SECS, &[]).await;
    wait_until(secs(15), "every monitor checked", || async { probe.all_hits().len() == COUNT })
        .await;
    // A reaction in flight on node-2 when it stops: its shutdown waits for it (3 s), and the
    // survivor sees it leaving meanwhile.
    let sink = SlowSink::start(1, secs(60)).await;
    let reaction = cluster
        .node(0)
        .create_reaction(json!({
            "name": "slow hook",
            "action": {"type": "http-webhook", "url": sink.url("/hook"), "timeout_ms": 3000},
            "trigger": 1, "call_on": "failed",
        }))
        .await;
    let reaction = id_of(&reaction);
    let partitions = PARTITIONS.to_string();
    let mut on_node_2 = false;
    for i in 0..20 {
        let monitor = cluster
            .node(0)
            .create_monitor(json!({
                "name": format!("pushed {i}"), "check": {"type": "webhook"}, "reactions": [reaction],
            }))
            .await;
        let id = id_of(&monitor);
        let lease = cluster.redis.command(&["EVAL", LEASE_OF, "0", &id, &partitions]);
        if lease.contains("node-2|") {
            let (status, failed) =
                cluster.node(0).post_empty(&format!("/monitors/{id}/fail")).await;
            assert_eq!(status, 200, "{failed}");
            on_node_2 = true;
            break;
        }
    }
    assert!(on_node_2, "a pushed monitor on node-2");
    wait_until(secs(10), "the firing reaches the sink", || async { sink.calls().len() == 1 }).await;
    let stopped_at = Instant::now();
    cluster.nodes[1].stop().await;
    assert!(stopped_at.elapsed() > secs(2), "node-2 stopped before its reaction ended");
    cluster.wait_held_by(0, &["node-1"], secs(10)).await;
    wait_until(secs(10), "every monitor checked after the stop", || async {
        let hits = probe.all_hits();
        hits.values().all(|h| h.iter().any(|t| *t > stopped_at))
    })
    .await;
    let survivor = cluster.node(0);
    let logs = survivor.logs();
    let from_standby: Vec<u64> = logs
        .lines()
        .filter(|line| line.contains("took over partitions"))
        .filter_map(|line| line.split("from_standby=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        from_standby.iter().any(|n| *n > 0),
        "node-2's partitions came from standby: {from_standby:?}\n{logs}"
    );
    assert_eq!(metric(survivor, "cloudroutes_monitors_owned").await, COUNT as f64);
    assert_eq!(metric(survivor, "cloudroutes_monitors_standby").await, 0.0);
}
