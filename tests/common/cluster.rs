//! A cluster for end-to-end tests: a real `redis-server` and several `cloudroutes node`
//! processes on loopback, with short lease timings; and a [`Probe`], an HTTP server that
//! records when each path was checked and fails the paths it is told to.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warp::Filter;

use super::{Node, RedisServer, free_port, id_of, wait_for};

/// Partitions in test clusters (fewer than the default: faster takeovers, same code).
pub const PARTITIONS: u64 = 64;
/// Lease length in test clusters.
pub const LEASE_MS: u64 = 3_000;
/// Renew period in test clusters.
pub const RENEW_MS: u64 = 500;
/// The documented takeover bound for these timings: a crashed node's partitions are running
/// again on the survivors within lease + renew, plus up to a second over which overdue first
/// checks are spread (README, "Cluster").
pub const TAKEOVER_BOUND: Duration = Duration::from_millis(LEASE_MS + RENEW_MS + 1_000);

/// The cookie test nodes share.
const COOKIE: &str = "e2e-cluster-cookie-0123456789";

/// The secrets key test nodes share (base64 of 32 bytes): every node of a cluster needs the
/// same one.
pub const SECRETS_KEY: &str = "ZTJlLWNsdXN0ZXItc2VjcmV0cy1rZXktMDEyMzQ1Njc=";

/// Redis and the node processes of one test cluster.
pub struct TestCluster {
    /// The shared store.
    pub redis: RedisServer,
    /// The nodes, `node-1` first.
    pub nodes: Vec<Node>,
    /// Environment every node gets on top of [`TestCluster::env`].
    overrides: Vec<(&'static str, String)>,
}

impl TestCluster {
    /// Starts Redis and `n` nodes, and waits until every node is ready and all partitions
    /// are held.
    pub async fn start(n: usize) -> TestCluster {
        Self::start_with(n, &[]).await
    }

    /// [`TestCluster::start`] with extra environment for every node (later entries win).
    pub async fn start_with(n: usize, overrides: &[(&'static str, &str)]) -> TestCluster {
        let mut cluster = Self::empty(overrides).await;
        for _ in 0..n {
            cluster.add_node().await;
        }
        cluster.wait_balanced().await;
        cluster
    }

    /// Starts Redis only: nodes come with [`TestCluster::add_node`], with `overrides` on top
    /// of [`TestCluster::env`] (later entries win).
    pub async fn empty(overrides: &[(&'static str, &str)]) -> TestCluster {
        let redis = RedisServer::start().await;
        let overrides = overrides.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        TestCluster { redis, nodes: Vec::new(), overrides }
    }

    /// Returns the environment of a cluster node.
    pub fn env(&self, id: &str, cluster_port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("CLOUDROUTES_STORE", self.redis.url()),
            ("CLOUDROUTES_NODE_ID", id.to_owned()),
            ("CLOUDROUTES_CLUSTER_ADDR", format!("127.0.0.1:{cluster_port}")),
            ("CLOUDROUTES_COOKIE", COOKIE.to_owned()),
            ("CLOUDROUTES_SECRETS_KEY", SECRETS_KEY.to_owned()),
            ("CLOUDROUTES_CLUSTER_PARTITIONS", PARTITIONS.to_string()),
            ("CLOUDROUTES_CLUSTER_LEASE_MS", LEASE_MS.to_string()),
            ("CLOUDROUTES_CLUSTER_RENEW_MS", RENEW_MS.to_string()),
            ("CLOUDROUTES_CLUSTER_FENCE_MS", "2000".into()),
            ("CLOUDROUTES_CLUSTER_HEARTBEAT_TTL_MS", "2000".into()),
            ("CLOUDROUTES_CLUSTER_HEARTBEAT_MS", "500".into()),
            ("CLOUDROUTES_CLUSTER_RECONCILE_MS", "2000".into()),
            ("CLOUDROUTES_CLUSTER_QUARANTINE_MS", "1000".into()),
            ("CLOUDROUTES_CLUSTER_REDIS_TIMEOUT_MS", "500".into()),
            ("CLOUDROUTES_ENGINE_STATE_FLUSH_MS", "200".into()),
        ]
        .into_iter()
        .filter(|(key, _)| !self.overrides.iter().any(|(k, _)| k == key))
        .chain(self.overrides.iter().cloned())
        .collect()
    }

    /// Runs `cloudroutes ARGS` against node `via` (`--url`, `--token` by environment) and
    /// returns its stdout; panics unless it exits 0.
    pub fn ctl(&self, via: usize, args: &[&str]) -> String {
        let node = &self.nodes[via];
        let output = std::process::Command::new(super::binary())
            .args(args)
            .env("CLOUDROUTES_URL", &node.base)
            .env("CLOUDROUTES_TOKEN", &node.token)
            .output()
            .expect("run cloudroutes ctl");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "cloudroutes {args:?} failed: {stderr}\n{stdout}");
        stdout
    }

    /// Starts one more node (`node-N`) and waits until it is ready.
    pub async fn add_node(&mut self) -> &Node {
        let id = format!("node-{}", self.nodes.len() + 1);
        let env = self.env(&id, free_port());
        self.nodes.push(Node::start_with_env(&env).await);
        self.nodes.last().expect("just added")
    }

    /// Starts one more node (`node-N`) with no cluster transport: it shares the partitions
    /// but can neither send nor receive node-to-node messages.
    pub async fn add_node_without_transport(&mut self) -> &Node {
        let id = format!("node-{}", self.nodes.len() + 1);
        let mut env = self.env(&id, free_port());
        env.retain(|(key, _)| !["CLOUDROUTES_CLUSTER_ADDR", "CLOUDROUTES_COOKIE"].contains(key));
        self.nodes.push(Node::start_with_env(&env).await);
        self.nodes.last().expect("just added")
    }

    /// The node with id `node-{i+1}`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// `GET /api/v1/cluster` through node `via`.
    pub async fn view(&self, via: usize) -> Value {
        let (status, view) = self.nodes[via].get("/cluster").await;
        assert_eq!(status, 200, "cluster view: {view}");
        view
    }

    /// Waits until, seen through node `via`, the nodes holding partitions are exactly `ids`,
    /// all alive, and together hold every partition; returns the view.
    pub async fn wait_held_by(&self, via: usize, ids: &[&str], timeout: Duration) -> Value {
        let want: HashSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        let what = format!("partitions held by exactly {ids:?}");
        wait_for(timeout, &what, || async {
            let view = self.view(via).await;
            let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
            let holders: HashSet<String> = nodes
                .iter()
                .filter(|n| n["partitions"].as_u64().unwrap_or(0) > 0 && n["alive"] == true)
                .filter_map(|n| n["id"].as_str().map(str::to_owned))
                .collect();
            let held: u64 = nodes.iter().filter_map(|n| n["partitions"].as_u64()).sum();
            (holders == want && held == PARTITIONS).then_some(view)
        })
        .await
    }

    /// Waits until every started node is alive and holds a share.
    pub async fn wait_balanced(&self) -> Value {
        let ids: Vec<String> = (1..=self.nodes.len()).map(|i| format!("node-{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.wait_held_by(0, &ids, Duration::from_secs(30)).await
    }
}

struct ProbeInner {
    hits: Mutex<HashMap<String, Vec<Instant>>>,
    failing: Mutex<HashSet<String>>,
}

/// An HTTP server for checks: records when each path was requested and answers 500 on the
/// paths set failing, 200 elsewhere.
#[derive(Clone)]
pub struct Probe {
    addr: std::net::SocketAddr,
    inner: Arc<ProbeInner>,
}

impl Probe {
    /// Starts a probe on 127.0.0.1.
    pub async fn start() -> Probe {
        let inner = Arc::new(ProbeInner {
            hits: Mutex::new(HashMap::new()),
            failing: Mutex::new(HashSet::new()),
        });
        let shared = Arc::clone(&inner);
        let route = warp::path::full().map(move |path: warp::path::FullPath| {
            let path = path.as_str().to_owned();
            let failing = shared.failing.lock().unwrap().contains(&path);
            shared.hits.lock().unwrap().entry(path).or_default().push(Instant::now());
            let status = if failing { 500 } else { 200 };
            warp::http::Response::builder().status(status).body("probe").unwrap()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Probe { addr, inner }
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Makes `path` answer 500 (`true`) or 200.
    pub fn set_failing(&self, path: &str, failing: bool) {
        let mut set = self.inner.failing.lock().unwrap();
        if failing {
            set.insert(path.to_owned());
        } else {
            set.remove(path);
        }
    }

    /// When `path` was requested.
    pub fn hits(&self, path: &str) -> Vec<Instant> {
        self.inner.hits.lock().unwrap().get(path).cloned().unwrap_or_default()
    }

    /// Every path's request times.
    pub fn all_hits(&self) -> HashMap<String, Vec<Instant>> {
        self.inner.hits.lock().unwrap().clone()
    }
}

/// Creates `count` `http-get-statuscode` monitors on `probe` at `/m/{i}` through node `via`
/// (round robin over `nodes` when it has several), each with `reactions`; returns their ids
/// in order.
pub async fn probe_monitors(
    nodes: &[&Node],
    probe: &Probe,
    count: usize,
    interval_secs: u32,
    reactions: &[&str],
) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let node = nodes[i % nodes.len()];
        let monitor = node
            .create_monitor(json!({
                "name": format!("m{i}"),
                "check": {"type": "http-get-statuscode", "url": probe.url(&format!("/m/{i}")), "timeout_ms": 2000},
                "interval_secs": interval_secs,
                "reactions": reactions,
            }))
            .await;
        ids.push(id_of(&monitor));
    }
    ids
}

/// The largest gap between consecutive hits of each path in `hits` within `[from, to]`,
/// counting from `from` to the first hit and from the last hit to `to`; returns the worst
/// path and its gap.
pub fn worst_gap(
    hits: &HashMap<String, Vec<Instant>>,
    paths: &[String],
    from: Instant,
    to: Instant,
) -> (String, Duration) {
    let mut worst = (String::new(), Duration::ZERO);
    for path in paths {
        let mut times: Vec<Instant> = hits
            .get(path)
            .map(|t| t.iter().copied().filter(|t| *t >= from && *t <= to).collect())
            .unwrap_or_default();
        times.sort();
        let mut previous = from;
        for t in times.iter().copied().chain(std::iter::once(to)) {
            let gap = t.duration_since(previous);
            if gap > worst.1 {
                worst = (path.clone(), gap);
            }
            previous = t;
        }
    }
    worst
}

/// One request a [`SlowSink`] received.
#[derive(Debug, Clone)]
pub struct SinkCall {
    /// The `Idempotency-Key` header.
    pub key: String,
    /// The body's `node` (who fired).
    pub node: String,
}

/// A reaction target that records each request on arrival and holds its answer for `delay`
/// on the first `slow` requests (a reaction still in flight when its node dies).
#[derive(Clone)]
pub struct SlowSink {
    addr: std::net::SocketAddr,
    calls: Arc<Mutex<Vec<SinkCall>>>,
}

impl SlowSink {
    /// Starts a sink on 127.0.0.1.
    pub async fn start(slow: usize, delay: Duration) -> SlowSink {
        let calls: Arc<Mutex<Vec<SinkCall>>> = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&calls);
        let route = warp::header::optional::<String>("idempotency-key")
            .and(warp::body::json::<Value>())
            .then(move |key: Option<String>, body: Value| {
                let shared = Arc::clone(&shared);
                async move {
                    let node = body["node"].as_str().unwrap_or_default().to_owned();
                    let seen = {
                        let mut calls = shared.lock().unwrap();
                        calls.push(SinkCall { key: key.unwrap_or_default(), node });
                        calls.len()
                    };
                    if seen <= slow {
                        tokio::time::sleep(delay).await;
                    }
                    warp::http::Response::builder().status(200).body("ok").unwrap()
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(warp::serve(route).incoming(listener).run());
        SlowSink { addr, calls }
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<SinkCall> {
        self.calls.lock().unwrap().clone()
    }
}
