use std::time::Instant;

use cloudroutes_engine::egress::Egress;

use serde_json::json;

use super::*;
use crate::http_options::test_servers::{Reply, reply, serve};
use crate::test_support::{refused_port, silent_server};
use crate::{CheckConfig, check_types};

fn config(url: &str, body: &str) -> Config {
    Config {
        url: url.to_owned(),
        body: RequestBody(body.to_owned()),
        content_type: default_content_type(),
        codes: default_post_codes(),
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
    HttpPostCheck::new(&config, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
        .unwrap()
        .run()
        .await
}

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

#[tokio::test]
async fn posts_the_body_with_its_content_type_exactly() {
    let mut server = serve(|_| reply(201, &[], r#"{"id": 7}"#)).await;
    let body = "{\"probe\": \"cloudroutes\", \"n\": [1, 2]}\n";
    let outcome = run(config(&server.url("/api/v1/probe"), body)).await;
    assert_eq!(outcome, CheckOutcome::Healthy { reason: "HTTP 201".into() });
    let request = server.next_request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v1/probe");
    assert_eq!(request.body, body.as_bytes());
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("content-length"), Some(body.len().to_string().as_str()));
}

#[tokio::test]
async fn sends_another_content_type_headers_and_host_when_configured() {
    let mut server = serve(|_| reply(204, &[], "")).await;
    let form = Config {
        content_type: "application/x-www-form-urlencoded; charset=utf-8".into(),
        headers: CustomHeaders([("X-Api-Key".to_owned(), "k".to_owned())].into()),
        host: Some("api.example.com".into()),
        ..config(&server.url("/login"), "user=probe&pass=x")
    };
    assert_eq!(run(form).await, CheckOutcome::Healthy { reason: "HTTP 204".into() });
    let request = server.next_request().await;
    assert_eq!(request.body, b"user=probe&pass=x");
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    assert_eq!(request.header("content-type"), Some(content_type));
    assert_eq!(request.header("x-api-key"), Some("k"));
    assert_eq!(request.header("host"), Some("api.example.com"));
}

#[tokio::test]
async fn an_empty_body_is_posted_with_length_zero() {
    let mut server = serve(|_| reply(200, &[], "")).await;
    let outcome = run(config(&server.url("/"), "")).await;
    assert_eq!(outcome, CheckOutcome::Healthy { reason: "HTTP 200".into() });
    let request = server.next_request().await;
    assert_eq!(request.method, "POST");
    assert!(request.body.is_empty());
    assert_eq!(request.header("content-length"), Some("0"));
}

#[tokio::test]
async fn failed_on_a_status_outside_the_default_codes() {
    let server = serve(|_| reply(500, &[], "boom")).await;
    let reason = "HTTP 500, expected one of 200, 201, 202, 204".to_owned();
    assert_eq!(run(config(&server.url("/"), "{}")).await, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn expect_json_judges_the_response_body() {
    let server = serve(|_| {
        reply(200, &[("Content-Type", "application/json")], r#"{"data": {"status": "queued"}}"#)
    })
    .await;
    let url = server.url("/jobs");
    let expect = |value| Some(ExpectJson { path: "/data/status".into(), value });
    let queued = Config { expect_json: expect(json!("queued")), ..config(&url, "{}") };
    let reason = r#"HTTP 200, json at /data/status is "queued""#.to_owned();
    assert_eq!(run(queued).await, CheckOutcome::Healthy { reason });
    let done = Config { expect_json: expect(json!("done")), ..config(&url, "{}") };
    let reason = r#"json at /data/status is "queued", expected "done""#.to_owned();
    assert_eq!(run(done).await, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn a_307_repeats_the_post_and_a_303_continues_with_a_get() {
    let mut server = serve(|request| match request.path.as_str() {
        "/v1" => reply(307, &[("Location", "/v2")], ""),
        "/v2" => reply(303, &[("Location", "/result")], ""),
        _ => reply(200, &[], "done"),
    })
    .await;
    let follow = Config { follow_redirects: true, ..config(&server.url("/v1"), "payload") };
    assert_eq!(run(follow).await, CheckOutcome::Healthy { reason: "HTTP 200".into() });
    let first = server.next_request().await;
    let repeated = server.next_request().await;
    assert_eq!((repeated.method.as_str(), repeated.path.as_str()), ("POST", "/v2"));
    assert_eq!(repeated.body, first.body);
    assert_eq!(repeated.header("content-type"), Some("application/json"));
    let result = server.next_request().await;
    assert_eq!((result.method.as_str(), result.path.as_str()), ("GET", "/result"));
    assert!(result.body.is_empty());
    assert_eq!(result.header("content-type"), None);
}

#[tokio::test]
async fn without_follow_redirects_a_redirect_is_the_status() {
    let mut server = serve(|_| reply(302, &[("Location", "/elsewhere")], "")).await;
    let reason = "HTTP 302, expected one of 200, 201, 202, 204".to_owned();
    assert_eq!(run(config(&server.url("/"), "{}")).await, CheckOutcome::Failed { reason });
    server.next_request().await;
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn failed_when_slower_than_max_response_ms() {
    let server =
        serve(|_| Reply { delay: Duration::from_millis(300), ..reply(201, &[], "") }).await;
    let slow = Config { max_response_ms: Some(100), ..config(&server.url("/"), "{}") };
    let CheckOutcome::Failed { reason } = run(slow).await else { panic!("expected failed") };
    assert!(
        reason.starts_with("HTTP 201 in ") && reason.ends_with(" ms, slower than 100 ms"),
        "{reason}"
    );
}

#[tokio::test]
async fn failed_when_the_connection_is_refused() {
    let port = refused_port().await;
    let outcome = run(config(&format!("http://127.0.0.1:{port}/"), "{}")).await;
    let reason = format!("connection refused: 127.0.0.1:{port}");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn failed_in_time_when_the_server_never_answers() {
    let addr = silent_server().await;
    let started = Instant::now();
    let outcome = run(Config { timeout_ms: 300, ..config(&format!("http://{addr}/"), "{}") }).await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no answer within 300 ms".into() });
}

#[test]
fn defaults_post_json_expecting_a_2xx() {
    let Ok(CheckConfig::HttpPost(config)) = parse(json!({"type": "http-post", "url": "http://x/"}))
    else {
        panic!("expected an http-post config");
    };
    assert_eq!(config.body, RequestBody::default());
    assert_eq!(config.content_type, "application/json");
    assert_eq!(config.codes, vec![200, 201, 202, 204]);
    assert_eq!(config.timeout_ms, 5000);
    assert!(!config.follow_redirects);
    assert!(config.verify_tls);
    let check =
        HttpPostCheck::new(&config, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
            .unwrap();
    assert_eq!(check.kind(), "http-post");
    assert_eq!(check.timeout(), Duration::from_secs(5));
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let big = "x".repeat(MAX_REQUEST_BODY_BYTES + 1);
    let cases = [
        (json!({"type": "http-post", "url": "ftp://x/"}), "url"),
        (json!({"type": "http-post"}), "url"),
        (json!({"type": "http-post", "url": "http://x/", "body": big}), "body"),
        (json!({"type": "http-post", "url": "http://x/", "body": {"a": 1}}), "body"),
        (json!({"type": "http-post", "url": "http://x/", "content_type": ""}), "content_type"),
        (json!({"type": "http-post", "url": "http://x/", "content_type": "json"}), "content_type"),
        (
            json!({"type": "http-post", "url": "http://x/", "content_type": "text/plain\n"}),
            "content_type",
        ),
        (
            json!({"type": "http-post", "url": "http://x/", "content_type": "tëxt/plain"}),
            "content_type",
        ),
        (json!({"type": "http-post", "url": "http://x/", "codes": []}), "codes"),
        (json!({"type": "http-post", "url": "http://x/", "codes": [99]}), "codes[0]"),
        (json!({"type": "http-post", "url": "http://x/", "timeout_ms": 0}), "timeout_ms"),
        (json!({"type": "http-post", "url": "http://x/", "host": "a b"}), "host"),
        (
            json!({"type": "http-post", "url": "http://x/", "headers": {"Content-Type": "a/b"}}),
            "headers.Content-Type",
        ),
        (
            json!({"type": "http-post", "url": "http://x/", "headers": {"Host": "h"}}),
            "headers.Host",
        ),
        (
            json!({"type": "http-post", "url": "http://x/", "headers": {"X(bad)": "v"}}),
            "headers.X(bad)",
        ),
        (
            json!({"type": "http-post", "url": "http://x/", "max_response_ms": 120_001}),
            "max_response_ms",
        ),
        (
            json!({"type": "http-post", "url": "http://x/",
                   "expect_json": {"path": "status", "value": "ok"}}),
            "expect_json.path",
        ),
        (json!({"type": "http-post", "url": "http://x/", "method": "PUT"}), "method"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
    let at_limit = "x".repeat(MAX_REQUEST_BODY_BYTES);
    assert!(parse(json!({"type": "http-post", "url": "http://x/", "body": at_limit})).is_ok());
}

#[test]
fn debug_output_never_shows_the_body() {
    let secret = config("http://127.0.0.1/", r#"{"password": "hunter2"}"#);
    let check =
        HttpPostCheck::new(&secret, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
            .unwrap();
    for debug in [format!("{secret:?}"), format!("{check:?}")] {
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("23 bytes"), "{debug}");
    }
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "http-post").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    let fields = [
        "url",
        "body",
        "content_type",
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
    assert_eq!(properties["codes"]["default"], json!([200, 201, 202, 204]));
    assert_eq!(properties["content_type"]["default"], json!("application/json"));
    assert_eq!(properties["body"]["maxLength"], json!(65_536));
    assert_eq!(info.schema["required"], json!(["url"]));
    assert_eq!(info.schema["additionalProperties"], json!(false));
}
