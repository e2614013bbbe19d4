use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cloudroutes_engine::{MonitorId, ReactionId, Status};
use serde_json::json;
use tokio::net::TcpListener;
use warp::Filter;
use warp::http::HeaderMap as WarpHeaderMap;

use super::*;
use crate::test_api::closed_port;
use crate::{ReactionConfig, reaction_types};

/// One request as the test server saw it.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: WarpHeaderMap,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Recorded>>>;

/// Serves every request with `status` and `reply`, recording what arrived.
async fn recording_server(status: u16, reply: &'static str) -> (SocketAddr, Log) {
    let log = Log::default();
    let writer = log.clone();
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .map(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  headers,
                  body: warp::hyper::body::Bytes| {
                let path = path.as_str().to_owned();
                let body = body.to_vec();
                writer.lock().unwrap().push(Recorded {
                    method: method.to_string(),
                    path,
                    headers,
                    body,
                });
                warp::http::Response::builder().status(status).body(reply).unwrap()
            },
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (addr, log)
}

fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop front page".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "page the on-call".into(),
        status: Status::Failed,
        episode: 4,
        reason: "HTTP 503, expected one of 200".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:4:failed:0".into(),
        node: "node-a".into(),
    }
}

fn config(url: String) -> Config {
    Config { url, method: "POST".into(), headers: BTreeMap::new(), timeout_ms: 2000 }
}

fn reaction(config: &Config) -> HttpWebhookReaction {
    HttpWebhookReaction::new(
        config,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap()
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

#[tokio::test]
async fn posts_the_incident_as_json_with_idempotency_key_and_custom_headers() {
    let (addr, log) = recording_server(202, "accepted").await;
    let mut config = config(format!("http://{addr}/hooks/cloudroutes?team=web"));
    config.headers.insert("X-Api-Token".into(), Secret::new("s3cret"));
    let fired = reaction(&config).fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("HTTP 202".into()));

    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    let request = &log[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/cloudroutes");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["idempotency-key"], "01hmonitor:01hreaction:4:failed:0");
    assert_eq!(request.headers["x-api-token"], "s3cret");
    assert!(request.headers["user-agent"].to_str().unwrap().starts_with("CloudRoutes/"));
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let expected = json!({
        "monitor": {"id": "01hmonitor", "name": "shop front page"},
        "reaction": {"id": "01hreaction", "name": "page the on-call"},
        "status": "failed",
        "episode": 4,
        "reason": "HTTP 503, expected one of 200",
        "method": "automatic",
        "at": "2024-05-01T12:30:00Z",
        "node": "node-a",
        "idempotency_key": "01hmonitor:01hreaction:4:failed:0",
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn a_retry_sends_the_same_idempotency_key() {
    let (addr, log) = recording_server(200, "").await;
    let reaction = reaction(&config(format!("http://{addr}/")));
    reaction.fire(&incident()).await.unwrap();
    reaction.fire(&incident()).await.unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log[0].headers["idempotency-key"], log[1].headers["idempotency-key"]);
    assert_eq!(log[0].body, log[1].body);
}

#[tokio::test]
async fn get_sends_no_body_and_methods_ignore_case() {
    let (addr, log) = recording_server(200, "ok").await;
    let get = Config { method: "get".into(), ..config(format!("http://{addr}/ping")) };
    assert_eq!(reaction(&get).fire(&incident()).await.unwrap(), Fired::Executed("HTTP 200".into()));
    let put = Config { method: "Put".into(), ..config(format!("http://{addr}/state")) };
    reaction(&put).fire(&incident()).await.unwrap();

    let log = log.lock().unwrap();
    assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("GET", "/ping"));
    assert!(log[0].body.is_empty());
    assert!(!log[0].headers.contains_key("content-type"));
    assert_eq!(log[0].headers["idempotency-key"], "01hmonitor:01hreaction:4:failed:0");
    assert_eq!(log[1].method, "PUT");
    assert_eq!(log[1].headers["content-type"], "application/json");
}

#[tokio::test]
async fn http_500_is_rejected_and_retryable_with_a_body_excerpt() {
    let reply = "internal error\n\n  please retry later   ";
    let (addr, _log) = recording_server(500, reply).await;
    let error = reaction(&config(format!("http://{addr}/"))).fire(&incident()).await.unwrap_err();
    let ReactionError::Rejected { kind, status, ref body } = error else { panic!("{error:?}") };
    assert_eq!(
        (kind, status, body.as_str()),
        ("http-webhook", 500, "internal error please retry later")
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn http_400_is_rejected_and_not_retryable() {
    let reply: &'static str = "x".repeat(5000).leak();
    let (addr, _log) = recording_server(400, reply).await;
    let error = reaction(&config(format!("http://{addr}/"))).fire(&incident()).await.unwrap_err();
    let ReactionError::Rejected { status: 400, ref body, .. } = error else { panic!("{error:?}") };
    assert_eq!(body.len(), BODY_EXCERPT_BYTES);
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn refused_connection_is_a_retryable_transport_error() {
    let (_closed, port) = closed_port();
    let error =
        reaction(&config(format!("http://127.0.0.1:{port}/"))).fire(&incident()).await.unwrap_err();
    let ReactionError::Transport { kind: "http-webhook", ref message } = error else {
        panic!("{error:?}")
    };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn silent_server_times_out_in_time() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let config = Config { timeout_ms: 300, ..config(format!("http://{addr}/")) };
    let started = Instant::now();
    let error = reaction(&config).fire(&incident()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert!(matches!(error, ReactionError::Timeout { kind: "http-webhook", timeout_ms: 300 }));
    assert!(error.is_retryable());
}

#[test]
fn defaults_to_post_no_headers_and_10000_ms() {
    let Ok(ReactionConfig::HttpWebhook(config)) =
        parse(json!({"type": "http-webhook", "url": "https://hooks.example.com/x"}))
    else {
        panic!("expected an http-webhook config");
    };
    assert_eq!(config.method, "POST");
    assert!(config.headers.is_empty());
    assert_eq!(config.timeout_ms, 10_000);
    let reaction = reaction(&config);
    assert_eq!((reaction.kind(), reaction.effect()), ("http-webhook", Effect::Idempotent));
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let url = "http://hooks.example.com/";
    let cases = [
        (json!({"type": "http-webhook", "url": "ftp://hooks.example.com/"}), "url"),
        (json!({"type": "http-webhook", "url": "hooks.example.com"}), "url"),
        (json!({"type": "http-webhook"}), "url"),
        (json!({"type": "http-webhook", "url": url, "method": "HEAD"}), "method"),
        (json!({"type": "http-webhook", "url": url, "method": "BREW"}), "method"),
        (json!({"type": "http-webhook", "url": url, "headers": {"bad name": "v"}}), "headers"),
        (json!({"type": "http-webhook", "url": url, "headers": {"X-A": "a\r\nb"}}), "headers"),
        (json!({"type": "http-webhook", "url": url, "headers": {"X-A": "***"}}), "headers"),
        (json!({"type": "http-webhook", "url": url, "headers": {"X-A": 1}}), "headers.X-A"),
        (
            json!({"type": "http-webhook", "url": url, "headers": {"X-A": "1", "x-a": "2"}}),
            "headers",
        ),
        (
            json!({"type": "http-webhook", "url": url, "headers": {"Idempotency-Key": "k"}}),
            "headers",
        ),
        (
            json!({"type": "http-webhook", "url": url, "headers": {"content-type": "text/plain"}}),
            "headers",
        ),
        (json!({"type": "http-webhook", "url": url, "timeout_ms": 0}), "timeout_ms"),
        (json!({"type": "http-webhook", "url": url, "timeout_ms": 120_001}), "timeout_ms"),
        (json!({"type": "http-webhook", "url": url, "bogus": 1}), "bogus"),
        (json!({"type": "http-webhok", "url": url}), "type"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
    }
}

#[test]
fn header_values_never_appear_in_errors_or_debug_output() {
    let config = config("http://hooks.example.com/".into());
    let mut bad = config.clone();
    bad.headers.insert("X-Token".into(), Secret::new("hunter2\n"));
    let error = bad.validate().unwrap_err();
    assert!(error.message.contains("X-Token") && !error.message.contains("hunter2"), "{error}");

    let mut good = config;
    good.headers.insert("X-Token".into(), Secret::new("hunter2"));
    assert!(!format!("{good:?}").contains("hunter2"));
    assert!(!format!("{:?}", reaction(&good)).contains("hunter2"));
}

#[test]
fn schema_lists_every_field_and_marks_headers_write_only() {
    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "http-webhook").unwrap();
    assert_eq!(info.secret_fields, ["headers"]);
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["url", "method", "headers", "timeout_ms"] {
        assert!(properties[field]["description"].is_string(), "{field} in {properties:?}");
    }
    assert_eq!(properties["headers"]["writeOnly"], json!(true));
    assert_eq!(properties["headers"]["additionalProperties"]["type"], "string");
    assert_eq!(info.schema["required"], json!(["url"]));
}
