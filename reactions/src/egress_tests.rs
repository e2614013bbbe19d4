//! The egress policy as reactions apply it: refusals at build time for IP literals, final
//! errors naming the rule at run time, redirect hops, the node's own ports, raw connects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloudroutes_engine::egress::Egress;
use serde_json::json;
use tokio::net::TcpListener;
use warp::Filter;

use super::connect_tcp;
use crate::digitalocean::tests::incident;
use crate::{Reaction, ReactionConfig, ReactionContext, ReactionError};

/// Serves `location` as a 307 redirect on every request and counts them.
async fn redirecting_server(location: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let route = warp::any().map(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        warp::http::Response::builder().status(307).header("Location", location).body("")
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (addr, hits)
}

/// Serves 200 on every request and counts them.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let route = warp::any().map(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        "ok"
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (addr, hits)
}

fn webhook(egress: Egress, url: &str) -> Result<Box<dyn Reaction>, crate::ConfigError> {
    let spec = json!({"type": "http-webhook", "url": url, "timeout_ms": 2000});
    let config = ReactionConfig::parse(&serde_json::from_value(spec).unwrap()).unwrap();
    config.build(&ReactionContext::new(egress).unwrap())
}

#[track_caller]
fn assert_final_naming(error: &ReactionError, wanted: &[&str]) {
    assert!(matches!(error, ReactionError::Failed { .. }), "{error:?}");
    assert!(!error.is_retryable(), "a denial is final: {error}");
    let text = error.to_string();
    for part in wanted {
        assert!(text.contains(part), "`{part}` missing from {text}");
    }
}

#[test]
fn a_webhook_to_a_metadata_literal_is_refused_at_build_time() {
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[::ffff:169.254.169.254]/",
    ] {
        for egress in [Egress::default(), Egress::loopback_for_tests()] {
            let error = webhook(egress, url).unwrap_err();
            assert_eq!(error.field, "url", "{url}");
            assert!(error.message.contains("(cloud metadata)"), "{url}: {error}");
        }
    }
    assert!(webhook(Egress::default(), "https://hooks.example.com/").is_ok());
}

#[tokio::test]
async fn a_webhook_to_a_name_resolving_to_loopback_fails_finally_naming_the_rule() {
    let (addr, hits) = counting_server().await;
    let url = format!("http://localhost:{}/hook", addr.port());
    let reaction = webhook(Egress::default(), &url).unwrap();
    let error = reaction.fire(&incident()).await.unwrap_err();
    assert_final_naming(&error, &["http-webhook", "localhost", "(loopback)"]);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was sent");
    let allowed = webhook(Egress::loopback_for_tests(), &url).unwrap();
    allowed.fire(&incident()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_redirect_to_metadata_is_refused_hop_by_hop() {
    let (addr, hits) = redirecting_server("http://169.254.169.254/latest/meta-data/").await;
    let reaction = webhook(Egress::loopback_for_tests(), &format!("http://{addr}/")).unwrap();
    let error = reaction.fire(&incident()).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("redirect to 169.254.169.254"), "{text}");
    assert!(text.contains("169.254.169.254/32 (cloud metadata)"), "{text}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "only the allowed first hop");
}

#[tokio::test]
async fn the_node_own_port_is_refused_even_with_loopback_allowed() {
    let (addr, hits) = counting_server().await;
    let egress = Egress::loopback_for_tests().with_node_ports(&[addr.port()], &[], false);
    let literal = webhook(egress.clone(), &format!("http://{addr}/")).unwrap_err();
    assert!(literal.message.contains("the node's own port"), "{literal}");
    let by_name = webhook(egress, &format!("http://localhost:{}/", addr.port())).unwrap();
    let error = by_name.fire(&incident()).await.unwrap_err();
    assert_final_naming(&error, &[&format!("the node's own port {}", addr.port())]);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn api_reactions_and_raw_connects_are_judged_too() {
    let spec = json!({
        "type": "digitalocean-snapshot", "droplet_id": 1, "api_token": "t",
        "snapshot_name": "{monitor} at {date}",
        "api_base_url": "http://localhost:9/", "timeout_ms": 2000,
    });
    let config = ReactionConfig::parse(&serde_json::from_value(spec).unwrap()).unwrap();
    let reaction = config.build(&ReactionContext::new(Egress::default()).unwrap()).unwrap();
    let error = reaction.fire(&incident()).await.unwrap_err();
    assert_final_naming(&error, &["localhost", "(loopback)"]);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let unreachable = |error: std::io::Error| ReactionError::Transport {
        kind: "ssh",
        message: error.to_string(),
    };
    let denied = connect_tcp(&Egress::default(), "ssh", "localhost", port, unreachable).await;
    assert_final_naming(&denied.unwrap_err(), &["ssh", "localhost", "(loopback)"]);
    let loopback = Egress::loopback_for_tests();
    assert!(connect_tcp(&loopback, "ssh", "127.0.0.1", port, unreachable).await.is_ok());
}
