//! The egress policy end to end: the node's own API port stays denied although the harness
//! allows loopback, metadata addresses are refused at create time, and a bad `[egress]`
//! prefix stops the node naming the key.

use serde_json::json;

use crate::common::{Node, assert_error, id_of, secs};

#[tokio::test]
async fn a_monitor_aimed_at_the_node_own_api_port_is_refused_or_fails_naming_the_rule() {
    let node = Node::start().await;
    let literal = node
        .post(
            "/monitors",
            json!({
                "name": "own api by address",
                "check": {"type": "http-get-statuscode", "url": format!("http://127.0.0.1:{}/healthz", node.port)},
                "interval_secs": 1,
            }),
        )
        .await;
    assert_error(&literal, 400, "invalid_field", Some("check.url"));
    let message = literal.1["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("the node's own port {}", node.port)), "{message}");

    let monitor = node
        .create_monitor(json!({
            "name": "own api by name",
            "check": {"type": "http-get-statuscode", "url": format!("http://localhost:{}/healthz", node.port), "timeout_ms": 2000},
            "interval_secs": 1,
        }))
        .await;
    let id = id_of(&monitor);
    let state = node
        .wait_state(&id, secs(15), "failed naming the node-port rule", |s| {
            s["status"] == "failed"
                && s["last_reason"].as_str().is_some_and(|r| r.contains("egress.allow_node_ports"))
        })
        .await;
    let reason = state["last_reason"].as_str().unwrap();
    assert!(reason.contains(&format!("the node's own port {}", node.port)), "{reason}");
    assert!(reason.contains("localhost"), "{reason}");
}

#[tokio::test]
async fn metadata_and_private_literals_are_refused_at_create_time() {
    let node = Node::start().await;
    let reaction = node
        .post(
            "/reactions",
            json!({
                "name": "steal credentials",
                "action": {"type": "http-webhook", "url": "http://169.254.169.254/latest/meta-data/"},
            }),
        )
        .await;
    assert_error(&reaction, 400, "invalid_field", Some("action.url"));
    let message = reaction.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("169.254.169.254/32 (cloud metadata)"), "{message}");

    let private = node
        .post(
            "/monitors",
            json!({
                "name": "internal db",
                "check": {"type": "tcp-check", "host": "10.1.2.3", "port": 5432},
                "interval_secs": 5,
            }),
        )
        .await;
    assert_error(&private, 400, "invalid_field", Some("check.host"));
    let message = private.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("10.0.0.0/8 (private)"), "{message}");
    let (status, monitors) = node.get("/monitors").await;
    assert_eq!(status, 200);
    assert_eq!(monitors["items"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn a_bad_egress_prefix_stops_the_node_naming_the_key() {
    let mut node = Node::spawn_with_env(&[("CLOUDROUTES_EGRESS_DENY", "10.0.0.1/8".to_owned())]);
    let (code, stderr) = node.exit_code_and_stderr().await;
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("egress.deny[0]"), "{stderr}");
    assert!(stderr.contains("the network is 10.0.0.0/8"), "{stderr}");
}
