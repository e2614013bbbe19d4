//! Cluster mode end to end: a real `redis-server` and several node processes on loopback.
//! Nodes share the monitors, a killed or frozen node's monitors move to the survivors, no
//! reaction fires twice or goes missing, and any node answers the whole API.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::common::cluster::{
    PARTITIONS, Probe, SlowSink, TAKEOVER_BOUND, TestCluster, probe_monitors, worst_gap,
};
use crate::common::{
    Node, Receiver, Recorded, parse_time, secs, wait_for, wait_until, webhook_reaction,
};

/// Requests to `/hook` counted by their `Idempotency-Key` (monitor:reaction:episode:phase:window).
fn calls_per_key(requests: &[Recorded]) -> HashMap<String, usize> {
    let mut per_key = HashMap::new();
    for request in requests {
        let key = request.header("idempotency-key").unwrap_or("missing").to_owned();
        *per_key.entry(key).or_insert(0) += 1;
    }
    per_key
}

#[track_caller]
fn assert_each_once(requests: &[Recorded], expected_keys: usize) {
    let per_key = calls_per_key(requests);
    let repeated: Vec<_> = per_key.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "firings that reached the sink more than once: {repeated:?}");
    assert_eq!(per_key.len(), expected_keys, "one call per firing; got keys {:?}", per_key.keys());
}

fn paths(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("/m/{i}")).collect()
}

async fn wait_all_checked(probe: &Probe, paths: &[String], since: Instant, timeout: Duration) {
    wait_until(timeout, "every monitor checked", || async {
        let hits = probe.all_hits();
        paths.iter().all(|p| hits.get(p).is_some_and(|h| h.iter().any(|t| *t >= since)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_moves_monitors_to_survivors_and_fires_each_reaction_once() {
    const COUNT: usize = 2_000;
    const INTERVAL: u64 = 4;
    let mut cluster = TestCluster::start(3).await;
    let probe = Probe::start().await;
    let sink = Receiver::start().await;
    let hook = webhook_reaction(cluster.node(0), &sink, "/hook", 1, 0, "failed").await;
    let failing: Vec<usize> = (0..COUNT).step_by(50).collect();
    for i in &failing {
        probe.set_failing(&format!("/m/{i}"), true);
    }
    let nodes: Vec<&Node> = cluster.nodes.iter().collect();
    probe_monitors(&nodes, &probe, COUNT, INTERVAL as u32, &[&hook]).await;
    let paths = paths(COUNT);
    wait_all_checked(&probe, &paths, Instant::now() - secs(60), secs(30)).await;
    sink.wait_count_to("/hook", failing.len(), secs(30)).await;
    let view = cluster.view(1).await;
    for node in view["nodes"].as_array().expect("nodes") {
        assert!(node["monitors"].as_u64() > Some(0), "every node runs a share: {view}");
    }

    // Outcomes are recorded; now one node dies without a word.
    tokio::time::sleep(secs(1)).await;
    let killed_at = Instant::now();
    cluster.nodes[2].kill().await;
    cluster.wait_held_by(0, &["node-1", "node-2"], secs(20)).await;
    tokio::time::sleep(secs(2 * INTERVAL)).await;
    let (path, gap) = worst_gap(&probe.all_hits(), &paths, killed_at, Instant::now());
    let bound = secs(INTERVAL) + TAKEOVER_BOUND + secs(1);
    assert!(gap <= bound, "{path} went {gap:?} without a check (bound {bound:?})");
    assert_each_once(&sink.requests_to("/hook"), failing.len());

    // A new episode after the takeover fires once more per monitor, on the survivors.
    for i in &failing {
        probe.set_failing(&format!("/m/{i}"), false);
    }
    tokio::time::sleep(secs(2 * INTERVAL + 1)).await;
    for i in &failing {
        probe.set_failing(&format!("/m/{i}"), true);
    }
    sink.wait_count_to("/hook", 2 * failing.len(), secs(30)).await;
    tokio::time::sleep(secs(INTERVAL)).await;
    assert_each_once(&sink.requests_to("/hook"), 2 * failing.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_is_fenced_off_and_rejoins_cleanly() {
    const COUNT: usize = 300;
    let cluster = TestCluster::start(3).await;
    let probe = Probe::start().await;
    let sink = Receiver::start().await;
    let hook = webhook_reaction(cluster.node(0), &sink, "/hook", 1, 0, "failed").await;
    let ids = probe_monitors(&[cluster.node(0)], &probe, COUNT, 1, &[&hook]).await;
    let paths = paths(COUNT);
    wait_all_checked(&probe, &paths, Instant::now() - secs(60), secs(30)).await;
    tokio::time::sleep(secs(2)).await;
    // The monitors node-3 runs.
    let mut frozen_ones = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if cluster.node(0).state(id).await["owner"] == "node-3" {
            frozen_ones.push((i, id.clone()));
        }
    }
    assert!(!frozen_ones.is_empty(), "node-3 runs some monitors");

    cluster.node(2).suspend();
    cluster.wait_held_by(0, &["node-1", "node-2"], secs(20)).await;
    // Its monitors fail while it sleeps: the survivors react.
    let failing: Vec<usize> = frozen_ones.iter().take(10).map(|(i, _)| *i).collect();
    for i in &failing {
        probe.set_failing(&format!("/m/{i}"), true);
    }
    sink.wait_count_to("/hook", failing.len(), secs(20)).await;
    let woke_at = SystemTime::now();
    cluster.node(2).resume();
    // It wakes with overdue timers and stale leases: everything it tries must be refused.
    tokio::time::sleep(secs(4)).await;
    let requests = sink.requests_to("/hook");
    let by_node_3: Vec<&str> = requests
        .iter()
        .filter(|r| r.body["node"] == "node-3")
        .filter_map(|r| r.header("idempotency-key"))
        .collect();
    assert!(by_node_3.is_empty(), "a fenced node fired reactions after waking: {by_node_3:?}");
    assert_each_once(&requests, failing.len());
    for (_, id) in &frozen_ones {
        for event in cluster.node(0).events(id).await {
            let at = parse_time(event["at"].as_str().expect("at"));
            assert!(
                !(event["node"] == "node-3" && at > woke_at),
                "a fenced node wrote history after waking: {event}"
            );
        }
    }
    // And it takes its share again.
    cluster.wait_held_by(0, &["node-1", "node-2", "node-3"], secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_loses_no_monitor_and_repeats_no_reaction() {
    const COUNT: usize = 600;
    let mut cluster = TestCluster::start(3).await;
    let probe = Probe::start().await;
    let sink = Receiver::start().await;
    let hook = webhook_reaction(cluster.node(0), &sink, "/hook", 1, 0, "failed").await;
    let failing: Vec<usize> = (0..COUNT).step_by(30).collect();
    for i in &failing {
        probe.set_failing(&format!("/m/{i}"), true);
    }
    let nodes: Vec<&Node> = cluster.nodes.iter().collect();
    probe_monitors(&nodes, &probe, COUNT, 2, &[&hook]).await;
    let paths = paths(COUNT);
    wait_all_checked(&probe, &paths, Instant::now() - secs(60), secs(30)).await;
    sink.wait_count_to("/hook", failing.len(), secs(30)).await;

    let rolling_from = Instant::now();
    for i in 0..3 {
        cluster.nodes[i].stop().await;
        cluster.nodes[i].start_again().await;
        cluster.wait_balanced().await;
    }
    let after = Instant::now();
    wait_all_checked(&probe, &paths, after, secs(30)).await;
    // A graceful hand-over is faster than a crash's takeover.
    let (path, gap) = worst_gap(&probe.all_hits(), &paths, rolling_from, Instant::now());
    let bound = secs(2) + TAKEOVER_BOUND;
    assert!(gap <= bound, "{path} went {gap:?} without a check during the rolling restart");
    let (status, page) = cluster.node(1).get("/monitors?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(COUNT), "no monitor lost");
    tokio::time::sleep(secs(2)).await;
    assert_each_once(&sink.requests_to("/hook"), failing.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_holds_reactions_keeps_checking_and_loses_nothing() {
    const COUNT: usize = 100;
    let mut cluster = TestCluster::start(2).await;
    let probe = Probe::start().await;
    let sink = Receiver::start().await;
    let hook = webhook_reaction(cluster.node(0), &sink, "/hook", 1, 0, "failed").await;
    let nodes: Vec<&Node> = cluster.nodes.iter().collect();
    let ids = probe_monitors(&nodes, &probe, COUNT, 1, &[&hook]).await;
    let paths = paths(COUNT);
    wait_all_checked(&probe, &paths, Instant::now() - secs(60), secs(30)).await;

    cluster.redis.kill().await;
    let down_at = Instant::now();
    let failing: Vec<usize> = (0..COUNT).step_by(10).collect();
    for i in &failing {
        probe.set_failing(&format!("/m/{i}"), true);
    }
    tokio::time::sleep(secs(5)).await;
    // Monitoring goes on without Redis; reactions do not (nothing can be claimed).
    let checked = paths
        .iter()
        .filter(|p| probe.hits(p).iter().any(|t| t.duration_since(down_at) > secs(3)))
        .count();
    assert!(
        checked >= COUNT * 9 / 10,
        "only {checked} of {COUNT} monitors checked during the outage"
    );
    assert_eq!(sink.count_to("/hook"), 0, "no reaction may fire while Redis is down");

    cluster.redis.restart().await;
    sink.wait_count_to("/hook", failing.len(), secs(30)).await;
    tokio::time::sleep(secs(3)).await;
    assert_each_once(&sink.requests_to("/hook"), failing.len());
    // Every acknowledged definition survived (appendfsync always).
    for id in &ids {
        let (status, monitor) = cluster.node(1).get(&format!("/monitors/{id}")).await;
        assert_eq!(status, 200, "monitor {id} after the Redis restart: {monitor}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_answers_for_any_monitor() {
    let cluster = TestCluster::start(3).await;
    let probe = Probe::start().await;
    let nodes: Vec<&Node> = cluster.nodes.iter().collect();
    let ids = probe_monitors(&nodes[..1], &probe, 30, 1, &[]).await;
    wait_all_checked(&probe, &paths(30), Instant::now() - secs(60), secs(20)).await;
    tokio::time::sleep(secs(1)).await;
    let mut routed = 0;
    for id in &ids {
        let owner = cluster.node(0).state(id).await["owner"].as_str().expect("owner").to_owned();
        for (i, node) in cluster.nodes.iter().enumerate() {
            if format!("node-{}", i + 1) == owner {
                continue;
            }
            // Run it now through a node that does not own it: the owner runs it.
            let (status, ran) = node.post_empty(&format!("/monitors/{id}/run")).await;
            assert_eq!(status, 200, "run-now via node-{}: {ran}", i + 1);
            assert_eq!(ran["outcome"], "healthy", "{ran}");
            assert_eq!(ran["monitor"]["state"]["owner"], json!(owner), "{ran}");
            routed += 1;
        }
    }
    assert_eq!(routed, 60, "each monitor ran through both nodes that do not own it");

    // A webhook monitor's results, sent to each node in turn, land on its owner.
    let (status, hooked) = cluster
        .node(0)
        .post("/monitors", json!({"name": "pushed", "check": {"type": "webhook"}}))
        .await;
    assert_eq!(status, 201, "{hooked}");
    let url = hooked["webhook_url"].as_str().expect("webhook_url");
    let path = url.split_once("/api/v1").expect("api path").1.to_owned();
    let id = hooked["id"].as_str().expect("id").to_owned();
    let mut owners = HashSet::new();
    for (round, node) in cluster.nodes.iter().chain(cluster.nodes.iter()).enumerate() {
        let action = if round % 2 == 0 { "failed" } else { "healthy" };
        let (status, answer) = node.post(&path, json!({"action": action})).await;
        assert_eq!(status, 200, "webhook via {}: {answer}", node.base);
        let state = node.state(&id).await;
        assert_eq!(state["status"], action, "{state}");
        owners.insert(state["owner"].as_str().expect("owner").to_owned());
    }
    assert_eq!(owners.len(), 1, "one owner recorded every result: {owners:?}");
    let changes: Vec<Value> = cluster.node(1).events(&id).await;
    assert_eq!(changes.len(), 6, "six status changes, each recorded once: {changes:?}");

    // Alert updates go to the owner's alert book, whichever node receives them: the book
    // sees web-1 resolve while web-2 still fires, and a resend through a third node is known.
    let (status, hooked) = cluster
        .node(0)
        .post("/monitors", json!({"name": "alerts", "check": {"type": "alertmanager-webhook"}}))
        .await;
    assert_eq!(status, 201, "{hooked}");
    let url = hooked["webhook_url"].as_str().expect("webhook_url");
    let path = url.split_once("/api/v1").expect("api path").1.to_owned();
    let alert = |status: &str, instance: &str| {
        json!({"status": status, "labels": {"alertname": "Down", "instance": instance},
               "annotations": {}, "fingerprint": instance})
    };
    let firing =
        json!({"status": "firing", "alerts": [alert("firing", "web-1"), alert("firing", "web-2")]});
    let one = json!({"status": "firing", "alerts": [alert("resolved", "web-1"), alert("firing", "web-2")]});
    let mut seen = Vec::new();
    for (via, body) in [(0, &firing), (1, &firing), (2, &one), (0, &one)] {
        let (status, answer) = cluster.node(via).post(&path, body.clone()).await;
        assert_eq!(status, 200, "alerts via node-{}: {answer}", via + 1);
        seen.push((answer["status"].clone(), answer["streak"].clone()));
    }
    let expected = [("failed", 1), ("failed", 1), ("failed", 2), ("failed", 2)];
    let expected: Vec<(Value, Value)> =
        expected.iter().map(|(s, n)| (json!(s), json!(n))).collect();
    assert_eq!(seen, expected, "resends through other nodes recorded nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletes_reach_the_owner_at_once_and_drain_moves_partitions() {
    let cluster =
        TestCluster::start_with(3, &[("CLOUDROUTES_CLUSTER_RECONCILE_MS", "600000")]).await;
    let probe = Probe::start().await;
    let ids = probe_monitors(&[cluster.node(0)], &probe, 12, 1, &[]).await;
    wait_all_checked(&probe, &paths(12), Instant::now() - secs(60), secs(20)).await;
    for (i, id) in ids.iter().enumerate() {
        let owner = cluster.node(0).state(id).await["owner"].as_str().expect("owner").to_owned();
        let other = (1..=3).map(|n| format!("node-{n}")).find(|n| *n != owner).expect("another");
        let via = cluster.node(other[5..].parse::<usize>().expect("n") - 1);
        let moved = format!("/edited/{i}");
        let (status, body) = via
            .put(
                &format!("/monitors/{id}"),
                json!({"name": format!("m{i}"), "interval_secs": 1,
                       "check": {"type": "http-get-statuscode", "url": probe.url(&moved)}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        wait_until(secs(4), "the owner checks the edited URL", || async {
            !probe.hits(&moved).is_empty()
        })
        .await;
        let (status, body) = via.delete(&format!("/monitors/{id}")).await;
        assert_eq!(status, 204, "{body}");
        tokio::time::sleep(secs(2)).await;
        let settled = Instant::now();
        tokio::time::sleep(secs(2)).await;
        let late = probe.hits(&moved).into_iter().filter(|t| *t > settled).count();
        assert_eq!(late, 0, "a monitor deleted via {other} kept running on {owner}");
    }

    let (status, body) = cluster.node(0).post_empty("/cluster/nodes/node-2/drain").await;
    assert_eq!(status, 202, "{body}");
    cluster.wait_held_by(0, &["node-1", "node-3"], secs(10)).await;
    let view = cluster.view(2).await;
    let drained = view["nodes"].as_array().expect("nodes").iter().find(|n| n["id"] == "node-2");
    let drained = drained.expect("node-2 is listed");
    assert_eq!(drained["draining"], true, "{view}");
    assert_eq!(drained["partitions"], 0, "{view}");
    let table = cluster.ctl(0, &["ctl", "cluster"]);
    assert!(table.contains("node-2") && table.contains("cluster mode"), "{table}");
    let (status, body) = cluster.node(0).post_empty("/cluster/nodes/node-9/drain").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_on_the_embedded_store_is_refused() {
    let mut node = Node::spawn_with_env(&[
        ("CLOUDROUTES_CLUSTER_ADDR", "127.0.0.1:7999".to_owned()),
        ("CLOUDROUTES_COOKIE", "some-cookie-0123456789".to_owned()),
    ]);
    let (code, stderr) = node.exit_code_and_stderr().await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cluster.addr") && stderr.contains("redis"),
        "the refusal names the key and the fix: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_its_node_died_with_is_retried_once_when_idempotent() {
    let mut cluster = TestCluster::start(3).await;
    let sink = SlowSink::start(1, secs(60)).await;
    let reaction = cluster
        .node(0)
        .create_reaction(json!({
            "name": "slow hook",
            "action": {"type": "http-webhook", "url": sink.url("/hook"), "timeout_ms": 60000},
            "trigger": 1, "call_on": "failed",
        }))
        .await;
    let reaction = reaction["id"].as_str().expect("id").to_owned();
    let monitor = cluster
        .node(0)
        .create_monitor(
            json!({"name": "pushed", "check": {"type": "webhook"}, "reactions": [reaction]}),
        )
        .await;
    let id = monitor["id"].as_str().expect("id").to_owned();
    let (status, failed) = cluster.node(0).post_empty(&format!("/monitors/{id}/fail")).await;
    assert_eq!(status, 200, "{failed}");
    let owner = failed["state"]["owner"].as_str().expect("owner").to_owned();
    wait_until(secs(10), "the firing reaches the sink", || async { sink.calls().len() == 1 }).await;
    let first = sink.calls()[0].clone();
    assert_eq!(first.node, owner, "the owner fires");

    // The owner dies with the reaction in flight: its claim has no outcome.
    let index: usize = owner["node-".len()..].parse().expect("node index");
    cluster.nodes[index - 1].kill().await;
    wait_until(secs(30), "a survivor retries the abandoned firing", || async {
        sink.calls().len() >= 2
    })
    .await;
    tokio::time::sleep(secs(5)).await;
    let calls = sink.calls();
    assert_eq!(calls.len(), 2, "retried exactly once: {calls:?}");
    assert_eq!(calls[1].key, first.key, "the retry carries the same Idempotency-Key");
    assert_ne!(calls[1].node, owner, "a survivor retried it");
    let survivor = cluster.nodes.iter().find(|n| n.pid_if_running().is_some()).expect("alive");
    let events = survivor.events(&id).await;
    let outcome = events.iter().find(|e| e["kind"] == "reaction").expect("a reaction outcome");
    assert_eq!(outcome["outcome"], "executed", "{outcome}");
    assert_eq!(outcome["node"], json!(calls[1].node), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_its_node_died_with_is_never_fired_again() {
    let mut cluster = TestCluster::start(3).await;
    // A DigitalOcean API that takes the reboot and answers only after a minute: the owner dies
    // while its destructive firing is in flight.
    let api = SlowSink::start(1, secs(60)).await;
    let reaction = cluster
        .node(0)
        .create_reaction(json!({
            "name": "reboot web-1",
            "action": {"type": "digitalocean-reboot", "api_token": "dop_v1_test", "droplet_id": 3164444,
                       "api_base_url": api.url(""), "timeout_ms": 60000},
            "trigger": 1, "call_on": "failed",
        }))
        .await;
    let reaction = reaction["id"].as_str().expect("id").to_owned();
    let monitor = cluster
        .node(0)
        .create_monitor(
            json!({"name": "web-1", "check": {"type": "webhook"}, "reactions": [reaction]}),
        )
        .await;
    let id = monitor["id"].as_str().expect("id").to_owned();
    let (status, failed) = cluster.node(0).post_empty(&format!("/monitors/{id}/fail")).await;
    assert_eq!(status, 200, "{failed}");
    let owner = failed["state"]["owner"].as_str().expect("owner").to_owned();
    wait_until(secs(10), "the reboot reaches the API", || async { api.calls().len() == 1 }).await;

    let index: usize = owner["node-".len()..].parse().expect("node index");
    cluster.nodes[index - 1].kill().await;
    let survivor = cluster.nodes.iter().find(|n| n.pid_if_running().is_some()).expect("alive");
    let closed = wait_for(secs(30), "a survivor closes the abandoned reboot", || async {
        let events = survivor.events(&id).await;
        events.into_iter().find(|e| e["kind"] == "reaction")
    })
    .await;
    assert_ne!(closed["outcome"], "executed", "{closed}");
    let detail = closed["detail"].as_str().expect("detail");
    assert!(detail.contains("never runs twice"), "{detail}");
    tokio::time::sleep(secs(5)).await;
    assert_eq!(api.calls().len(), 1, "the reboot was sent once, and never again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_held_elsewhere_are_taken_soon_after_they_free_up() {
    // A long renew period (8 s), so that waiting for the next regular round shows. The
    // heartbeat keeps its own period (500 ms, TTL 2 s): the node stays alive in between.
    let mut cluster = TestCluster::empty(&[
        ("CLOUDROUTES_CLUSTER_RENEW_MS", "8000"),
        ("CLOUDROUTES_CLUSTER_FENCE_MS", "9000"),
        ("CLOUDROUTES_CLUSTER_LEASE_MS", "12000"),
    ])
    .await;
    // Every lease is held by a node that is gone, for 4 more seconds.
    let plant = "for p = 0, tonumber(ARGV[1]) - 1 do \
                 redis.call('SET', 'cr:{p' .. p .. '}:lease', 'ghost|1', 'PX', ARGV[2]) end";
    let partitions = PARTITIONS.to_string();
    cluster.redis.command(&["EVAL", plant, "0", &partitions, "4000"]);
    let planted = Instant::now();
    cluster.add_node().await;
    let view = cluster.view(0).await;
    let nodes = view["nodes"].as_array().expect("nodes");
    let held_by = |id: &str| nodes.iter().find(|n| n["id"] == id).map(|n| n["partitions"].clone());
    assert_eq!(held_by("ghost"), Some(json!(PARTITIONS)), "the ghost holds every lease: {view}");
    assert_eq!(held_by("node-1"), Some(json!(0)), "{view}");
    assert!(planted.elapsed() < secs(4), "the node took too long to start for this test");

    // The next regular round is 8 s after the first; a round that found partitions held
    // elsewhere is followed by another a quarter of that later (2 s), until they are taken.
    cluster.wait_held_by(0, &["node-1"], secs(10)).await;
    let held = planted.elapsed();
    assert!(held < secs(7), "took the freed partitions {held:?} after planting them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_describes_itself_and_refuses_to_drain() {
    let node = Node::start().await;
    let (status, view) = node.get("/cluster").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["mode"], "single", "{view}");
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(1), "{view}");
    assert_eq!(view["nodes"][0]["alive"], true, "{view}");
    let id = view["node_id"].as_str().expect("node_id").to_owned();
    let (status, body) = node.post_empty(&format!("/cluster/nodes/{id}/drain")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_starts_what_a_lost_message_did_not() {
    let mut cluster =
        TestCluster::start_with(1, &[("CLOUDROUTES_CLUSTER_RECONCILE_MS", "1500")]).await;
    // node-2 cannot tell node-1 anything: every change it makes for node-1's monitors is a
    // lost message that only node-1's reconciliation can repair.
    cluster.add_node_without_transport().await;
    cluster.wait_balanced().await;
    let probe = Probe::start().await;
    let ids = probe_monitors(&[cluster.node(1)], &probe, 40, 1, &[]).await;
    wait_all_checked(&probe, &paths(40), Instant::now() - secs(60), secs(15)).await;
    let mut on_node_1 = 0;
    for id in &ids {
        if cluster.node(1).state(id).await["owner"] == "node-1" {
            on_node_1 += 1;
        }
    }
    assert!(on_node_1 > 0, "node-1 owns some of the monitors node-2 created");
}
