//! The egress policy end to end: the node's own API port stays denied although the harness
//! allows loopback, metadata addresses are refused at create time, and a bad `[egress]`
//! prefix stops the node naming the key.

use std::net::IpAddr;

use serde_json::json;
use warp::Filter;

use crate::common::{Node, assert_error, free_port, id_of, secs};

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

/// Serves on 127.0.0.1 a redirect of every request to `location`; returns the port.
async fn redirector(location: String) -> u16 {
    let route = warp::any().map(move || {
        warp::http::Response::builder()
            .status(302)
            .header("Location", location.as_str())
            .body(String::new())
            .expect("a redirect response")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    port
}

/// Issue 7: with loopback allowed, neither a name that resolves to loopback nor a redirect hop
/// from an allowed target reaches the node's own API port.
#[tokio::test]
async fn a_redirect_to_the_node_own_port_fails_naming_the_rule() {
    let node = Node::start().await;
    for target in [
        format!("http://127.0.0.1:{}/api/v1/monitors", node.port),
        format!("http://localhost:{}/api/v1/monitors", node.port),
    ] {
        let hop = redirector(target.clone()).await;
        let check = json!({
            "type": "http-get-statuscode", "url": format!("http://127.0.0.1:{hop}/"),
            "follow_redirects": true, "timeout_ms": 2000,
        });
        let monitor =
            node.create_monitor(json!({"name": "redirected", "check": check, "interval_secs": 1}));
        let id = id_of(&monitor.await);
        let state = node
            .wait_state(&id, secs(15), "failed naming the node-port rule", |s| {
                s["status"] == "failed"
                    && s["last_reason"].as_str().is_some_and(|r| r.contains("allow_node_ports"))
            })
            .await;
        let reason = state["last_reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("the node's own port {}", node.port)),
            "{target}: {reason}"
        );
    }
}

/// Returns a non-loopback IPv4 address of this machine, if it has one.
fn non_loopback_ipv4() -> Option<IpAddr> {
    let interfaces = nix::ifaddrs::getifaddrs().ok()?;
    interfaces
        .filter_map(|interface| interface.address?.as_sockaddr_in().map(|sin| IpAddr::V4(sin.ip())))
        .find(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// Issue 7: a node whose API binds every interface counts its LAN address as its own: with
/// egress allowing that address, a monitor on it at the API port is refused naming the
/// node-port rule, while another port there is accepted. The monitors are created disabled:
/// only the policy is exercised, nothing is sent to the LAN address.
#[tokio::test]
async fn the_node_own_port_is_refused_on_its_other_interface_addresses() {
    let Some(lan) = non_loopback_ipv4() else {
        eprintln!("skipped: this machine has no non-loopback IPv4 address");
        return;
    };
    let allow = ("CLOUDROUTES_EGRESS_ALLOW", format!("127.0.0.0/8,::1,{lan}/32"));
    let node = Node::start_on_every_interface(&[allow]).await;
    let tcp = |port: u16| {
        json!({
            "name": "lan", "enabled": false, "interval_secs": 60,
            "check": {"type": "tcp-check", "host": lan.to_string(), "port": port},
        })
    };
    let own = node.post("/monitors", tcp(node.port)).await;
    assert_error(&own, 400, "invalid_field", Some("check.host"));
    let message = own.1["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("the node's own port {}", node.port)), "{message}");
    assert!(message.contains(&lan.to_string()), "{message}");

    let url = format!("http://{lan}:{}/healthz", node.port);
    let http = json!({
        "name": "lan api", "enabled": false, "interval_secs": 60,
        "check": {"type": "http-get-statuscode", "url": url},
    });
    assert_error(&node.post("/monitors", http).await, 400, "invalid_field", Some("check.url"));

    let (status, other) = node.post("/monitors", tcp(free_port())).await;
    assert_eq!(status, 201, "another port on the allowed address is accepted: {other}");
    assert!(node.logs().contains(&lan.to_string()), "the policy's node addresses are logged");
}
