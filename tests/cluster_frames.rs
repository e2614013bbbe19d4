//! The cluster port of a real node refuses a frame above `cluster.max_frame_bytes` (set by
//! environment), logs the sender's address with the limit, and the cluster keeps talking.

use std::collections::HashSet;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::cluster::TestCluster;
use crate::common::{secs, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_on_the_cluster_port_is_cut_off_and_logged_and_peers_keep_talking() {
    let limit = [("CLOUDROUTES_CLUSTER_MAX_FRAME_BYTES", "65536")];
    let cluster = TestCluster::start_with(2, &limit).await;
    let view = cluster.view(0).await;
    let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
    let first = nodes.iter().find(|node| node["id"] == "node-1").expect("node-1 in the view");
    let cluster_addr = first["cluster_addr"].as_str().expect("node-1's cluster address");

    // A client that is not a node announces a frame one byte above the limit.
    let mut raw = TcpStream::connect(cluster_addr).await.expect("connect to the cluster port");
    let raw_addr = raw.local_addr().expect("local address").to_string();
    raw.write_all(&65_537u64.to_be_bytes()).await.expect("send a length prefix");
    let mut buf = [0; 64];
    let closed = tokio::time::timeout(secs(5), async {
        while let Ok(read) = raw.read(&mut buf).await {
            if read == 0 {
                break;
            }
        }
    });
    assert!(closed.await.is_ok(), "node-1 kept the connection open");
    let node = cluster.node(0);
    wait_until(secs(5), "the oversized-frame warning", || async {
        node.logs().lines().any(|line| {
            line.contains("WARN")
                && line.contains(&raw_addr)
                && line.contains("frame of 65537 bytes, above cluster.max_frame_bytes (65536)")
        })
    })
    .await;

    // The nodes still talk: of two webhook results, one sent to each node, one goes through
    // the node that does not own the monitor and reaches the owner over the cluster transport.
    let (status, hooked) = cluster
        .node(0)
        .post("/monitors", json!({"name": "pushed", "check": {"type": "webhook"}}))
        .await;
    assert_eq!(status, 201, "{hooked}");
    let id = hooked["id"].as_str().expect("id").to_owned();
    let url = hooked["webhook_url"].as_str().expect("webhook_url");
    let path = url.split_once("/api/v1").expect("api path").1.to_owned();
    let mut owners = HashSet::new();
    for (node, action) in cluster.nodes.iter().zip(["failed", "healthy"]) {
        let (status, answer) = node.post(&path, json!({"action": action})).await;
        assert_eq!(status, 200, "webhook via {}: {answer}", node.base);
        let state = node.state(&id).await;
        assert_eq!(state["status"], action, "{state}");
        owners.insert(state["owner"].as_str().expect("owner").to_owned());
    }
    assert_eq!(owners.len(), 1, "one owner took both results: {owners:?}");
}
