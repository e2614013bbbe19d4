use std::time::Instant;

use cloudroutes_engine::egress::Egress;

use serde_json::json;

use super::*;
use crate::http_options::test_servers::{Reply, reply, serve};
use crate::test_support::{counting_keep_alive_server, refused_port, serve_http, silent_server};
use crate::{CheckConfig, check_types};

fn config(url: &str) -> Config {
    Config {
        url: url.to_owned(),
        codes: vec![200],
        timeout_ms: 2000,
        host: None,
        follow_redirects: false,
        verify_tls: true,
        headers: CustomHeaders::default(),
        max_response_ms: None,
        expect_json: None,
    }
}

async fn run(config: Config) -> CheckOutcome {
    HttpGetStatuscodeCheck::new(&config, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
        .unwrap()
        .run()
        .await
}

fn expect_json(path: &str, value: serde_json::Value) -> Option<ExpectJson> {
    Some(ExpectJson { path: path.to_owned(), value })
}

fn check(url: String, codes: &[u16], timeout_ms: u64) -> HttpGetStatuscodeCheck {
    let config = Config { url, codes: codes.to_vec(), timeout_ms, ..config("") };
    HttpGetStatuscodeCheck::new(&config, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
        .unwrap()
}

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

#[tokio::test]
async fn healthy_when_the_status_is_expected() {
    let addr = serve_http(200, b"hello".to_vec()).await;
    let outcome = check(format!("http://{addr}/health"), &[200], 2000).run().await;
    assert_eq!(outcome, CheckOutcome::Healthy { reason: "HTTP 200".into() });
}

#[tokio::test]
async fn checks_reuse_one_keep_alive_connection() {
    let (addr, connections) = counting_keep_alive_server().await;
    let check = check(format!("http://{addr}/"), &[200], 2000);
    for _ in 0..5 {
        assert_eq!(check.run().await, CheckOutcome::Healthy { reason: "HTTP 200".into() });
    }
    let opened = connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(opened, 1, "five checks opened {opened} connections");
}

#[tokio::test]
async fn healthy_when_any_listed_status_answers() {
    let addr = serve_http(301, Vec::new()).await;
    let outcome = check(format!("http://{addr}/"), &[200, 301], 2000).run().await;
    assert_eq!(outcome, CheckOutcome::Healthy { reason: "HTTP 301".into() });
}

#[tokio::test]
async fn failed_on_an_unexpected_status() {
    let addr = serve_http(503, b"down".to_vec()).await;
    let outcome = check(format!("http://{addr}/"), &[200], 2000).run().await;
    let reason = "HTTP 503, expected one of 200".to_owned();
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn failed_when_the_connection_is_refused() {
    let port = refused_port().await;
    let outcome = check(format!("http://127.0.0.1:{port}/"), &[200], 2000).run().await;
    let reason = format!("connection refused: 127.0.0.1:{port}");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn failed_in_time_when_the_server_never_answers() {
    let addr = silent_server().await;
    let started = Instant::now();
    let outcome = check(format!("http://{addr}/"), &[200], 300).run().await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    let reason = "no answer within 300 ms".to_owned();
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[test]
fn defaults_to_200_5000_ms_no_redirects_verified_tls() {
    let Ok(CheckConfig::HttpGetStatuscode(config)) =
        parse(json!({"type": "http-get-statuscode", "url": "https://example.com/"}))
    else {
        panic!("expected an http-get-statuscode config");
    };
    assert_eq!(config.codes, vec![200]);
    assert_eq!(config.timeout_ms, 5000);
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let cases = [
        (json!({"type": "http-get-statuscode", "url": "ftp://x/"}), "url"),
        (json!({"type": "http-get-statuscode", "url": "not a url"}), "url"),
        (json!({"type": "http-get-statuscode", "url": "http://x", "codes": []}), "codes"),
        (
            json!({"type": "http-get-statuscode", "url": "http://x", "codes": [200, 700]}),
            "codes[1]",
        ),
        (json!({"type": "http-get-statuscode", "url": "http://x", "codes": [70000]}), "codes[0]"),
        (json!({"type": "http-get-statuscode", "url": "http://x", "timeout_ms": 0}), "timeout_ms"),
        (
            json!({"type": "http-get-statuscode", "url": "http://x", "timeout_ms": 120_001}),
            "timeout_ms",
        ),
        (json!({"type": "http-get-statuscode", "url": "http://x", "bogus": 1}), "bogus"),
        (json!({"type": "http-get-statuscode"}), "url"),
        (json!({"type": "http-get-statuscode", "url": "http://x", "host": "a/b"}), "host"),
        (
            json!({"type": "http-get-statuscode", "url": "http://x", "headers": {"X A": "1"}}),
            "headers.X A",
        ),
        (
            json!({"type": "http-get-statuscode", "url": "http://x", "headers": {"Host": "y"}}),
            "headers.Host",
        ),
        (
            json!({"type": "http-get-statuscode", "url": "http://x", "headers": {"X-A": 1}}),
            "headers.X-A",
        ),
        (
            json!({"type": "http-get-statuscode", "url": "http://x", "follow_redirects": "yes"}),
            "follow_redirects",
        ),
        (json!({"type": "http-get-statuscode", "url": "http://x", "verify_tls": 0}), "verify_tls"),
        (
            json!({"type": "http-get-statuscode", "url": "http://x", "max_response_ms": 0}),
            "max_response_ms",
        ),
        (
            json!({"type": "http-get-statuscode", "url": "http://x", "timeout_ms": 1000,
                   "max_response_ms": 1001}),
            "max_response_ms",
        ),
        (
            json!({"type": "http-get-statuscode", "url": "http://x",
                   "expect_json": {"path": "data/status", "value": "ok"}}),
            "expect_json.path",
        ),
        (
            json!({"type": "http-get-statuscode", "url": "http://x",
                   "expect_json": {"path": "/a~2b", "value": "ok"}}),
            "expect_json.path",
        ),
        (
            json!({"type": "http-get-statuscode", "url": "http://x",
                   "expect_json": {"path": "/a"}}),
            "expect_json.value",
        ),
        (
            json!({"type": "http-get-statuscode", "url": "http://x",
                   "expect_json": {"path": "/a", "value": 1, "extra": 2}}),
            "expect_json.extra",
        ),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "http-get-statuscode").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    let fields = [
        "url",
        "codes",
        "timeout_ms",
        "host",
        "follow_redirects",
        "verify_tls",
        "headers",
        "max_response_ms",
        "expect_json",
    ];
    assert_eq!(properties.len(), fields.len(), "{properties:?}");
    for field in fields {
        let description = properties[field]["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{field} has no description");
    }
    assert_eq!(properties["codes"]["default"], json!([200]));
    assert_eq!(properties["verify_tls"]["default"], json!(true));
    assert_eq!(properties["headers"]["maxProperties"], json!(32));
    assert_eq!(info.schema["additionalProperties"], json!(false));
}

#[tokio::test]
async fn without_follow_redirects_a_301_is_the_status() {
    let mut server = serve(|request| match request.path.as_str() {
        "/old" => reply(301, &[("Location", "/new")], ""),
        _ => reply(200, &[], "new"),
    })
    .await;
    let outcome = run(config(&server.url("/old"))).await;
    let reason = "HTTP 301, expected one of 200".to_owned();
    assert_eq!(outcome, CheckOutcome::Failed { reason });
    assert_eq!(server.next_request().await.path, "/old");
    assert!(server.received().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn with_follow_redirects_the_final_status_decides() {
    let mut server = serve(|request| match request.path.as_str() {
        "/old" => reply(301, &[("Location", "/moved")], ""),
        "/moved" => reply(302, &[("Location", "/new?x=1")], ""),
        _ => reply(200, &[], "new"),
    })
    .await;
    let follow = Config { follow_redirects: true, ..config(&server.url("/old")) };
    assert_eq!(run(follow).await, CheckOutcome::Healthy { reason: "HTTP 200".into() });
    let mut seen = Vec::new();
    for _ in 0..3 {
        let request = server.next_request().await;
        assert_eq!(request.method, "GET");
        seen.push(request.path);
    }
    assert_eq!(seen, ["/old", "/moved", "/new?x=1"]);
}

#[tokio::test]
async fn expect_json_healthy_when_the_value_at_the_path_matches() {
    let body = r#"{"data": {"status": "ok", "replicas": [1, 2.0]}}"#;
    let addr = serve_http(200, body.as_bytes().to_vec()).await;
    let url = format!("http://{addr}/api");
    let matching = Config { expect_json: expect_json("/data/status", json!("ok")), ..config(&url) };
    let reason = r#"HTTP 200, json at /data/status is "ok""#.to_owned();
    assert_eq!(run(matching).await, CheckOutcome::Healthy { reason });

    // Numbers compare by value: 2.0 in the body equals an expected 2.
    let number = Config { expect_json: expect_json("/data/replicas/1", json!(2)), ..config(&url) };
    assert!(matches!(run(number).await, CheckOutcome::Healthy { .. }));
}

#[tokio::test]
async fn expect_json_failed_on_another_value_naming_path_expected_and_actual() {
    let long = "x".repeat(200);
    let body = json!({"data": {"status": "degraded", "detail": long}}).to_string();
    let addr = serve_http(200, body.into_bytes()).await;
    let url = format!("http://{addr}/api");
    let mismatch = Config { expect_json: expect_json("/data/status", json!("ok")), ..config(&url) };
    let reason = r#"json at /data/status is "degraded", expected "ok""#.to_owned();
    assert_eq!(run(mismatch).await, CheckOutcome::Failed { reason });

    let truncated = Config { expect_json: expect_json("/data/detail", json!("y")), ..config(&url) };
    let CheckOutcome::Failed { reason } = run(truncated).await else { panic!("expected failed") };
    let quoted = format!("\"{}…", "x".repeat(79));
    assert_eq!(reason, format!(r#"json at /data/detail is {quoted}, expected "y""#));
}

#[tokio::test]
async fn expect_json_failed_when_the_path_is_missing() {
    let addr = serve_http(200, br#"{"data": {"items": []}}"#.to_vec()).await;
    let url = format!("http://{addr}/api");
    for path in ["/data/status", "/data/items/0", "/data/items/status"] {
        let missing = Config { expect_json: expect_json(path, json!(true)), ..config(&url) };
        let reason = format!("json at {path} is missing, expected true");
        assert_eq!(run(missing).await, CheckOutcome::Failed { reason });
    }
}

#[tokio::test]
async fn expect_json_failed_when_the_body_is_not_json() {
    let addr = serve_http(200, b"<html>OK</html>".to_vec()).await;
    let not_json = Config {
        expect_json: expect_json("/status", json!("ok")),
        ..config(&format!("http://{addr}/"))
    };
    let CheckOutcome::Failed { reason } = run(not_json).await else { panic!("expected failed") };
    assert!(reason.starts_with("response body is not json: expected value"), "{reason}");
}

#[tokio::test]
async fn expect_json_is_judged_only_after_the_status() {
    let addr = serve_http(503, br#"{"status": "ok"}"#.to_vec()).await;
    let down = Config {
        expect_json: expect_json("/status", json!("ok")),
        ..config(&format!("http://{addr}/"))
    };
    let reason = "HTTP 503, expected one of 200".to_owned();
    assert_eq!(run(down).await, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn failed_when_the_answer_is_slower_than_max_response_ms() {
    let server =
        serve(|_| Reply { delay: Duration::from_millis(400), ..reply(200, &[], "ok") }).await;
    let slow = Config { max_response_ms: Some(150), ..config(&server.url("/")) };
    let CheckOutcome::Failed { reason } = run(slow).await else { panic!("expected failed") };
    let elapsed: u64 = reason
        .strip_prefix("HTTP 200 in ")
        .and_then(|rest| rest.strip_suffix(" ms, slower than 150 ms"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("unexpected reason {reason}"));
    assert!((400..2000).contains(&elapsed), "{reason}");

    let patient = Config { max_response_ms: Some(1500), ..config(&server.url("/")) };
    let CheckOutcome::Healthy { reason } = run(patient).await else { panic!("expected healthy") };
    assert!(reason.starts_with("HTTP 200 in ") && reason.ends_with(" ms"), "{reason}");
}
