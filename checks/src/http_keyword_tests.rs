use std::time::Instant;

use cloudroutes_engine::egress::Egress;

use serde_json::json;

use super::*;
use crate::http_options::test_servers::{Reply, reply, serve};
use crate::test_support::{refused_port, serve_http, silent_server};
use crate::{CheckConfig, check_types};

fn config(url: String, keyword: &str) -> Config {
    Config {
        url,
        keyword: keyword.into(),
        regex: false,
        present: true,
        codes: None,
        timeout_ms: 2000,
        host: None,
        follow_redirects: false,
        verify_tls: true,
        headers: CustomHeaders::default(),
        max_response_ms: None,
    }
}

async fn run(config: Config) -> CheckOutcome {
    HttpKeywordCheck::new(&config, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
        .unwrap()
        .run()
        .await
}

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

#[tokio::test]
async fn healthy_when_the_keyword_is_present() {
    let addr = serve_http(200, b"status: OK, all good".to_vec()).await;
    let outcome = run(config(format!("http://{addr}/"), "OK")).await;
    assert_eq!(outcome, CheckOutcome::Healthy { reason: r#"keyword "OK" found"#.into() });
}

#[tokio::test]
async fn failed_when_the_keyword_is_missing() {
    let addr = serve_http(200, b"status: degraded".to_vec()).await;
    let outcome = run(config(format!("http://{addr}/"), "OK")).await;
    let reason = r#"keyword "OK" not found in 16 bytes"#.to_owned();
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn keyword_match_is_case_sensitive() {
    let addr = serve_http(200, b"status: ok".to_vec()).await;
    let outcome = run(config(format!("http://{addr}/"), "OK")).await;
    assert!(matches!(outcome, CheckOutcome::Failed { .. }), "{outcome:?}");
}

#[tokio::test]
async fn with_present_false_healthy_when_absent_and_failed_when_found() {
    let addr = serve_http(200, b"all fine".to_vec()).await;
    let absent = Config { present: false, ..config(format!("http://{addr}/"), "ERROR") };
    let outcome = run(absent).await;
    let reason = r#"keyword "ERROR" not found in 8 bytes"#.to_owned();
    assert_eq!(outcome, CheckOutcome::Healthy { reason });

    let addr = serve_http(200, b"ERROR: disk full".to_vec()).await;
    let found = Config { present: false, ..config(format!("http://{addr}/"), "ERROR") };
    let outcome = run(found).await;
    let reason = r#"keyword "ERROR" found, expected it absent"#.to_owned();
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn regex_matches_and_literal_keywords_are_not_regexes() {
    let addr = serve_http(200, b"queue depth: 42 items".to_vec()).await;
    let url = format!("http://{addr}/");
    let regex = Config { regex: true, ..config(url.clone(), r"depth: \d+") };
    let outcome = run(regex).await;
    assert_eq!(outcome, CheckOutcome::Healthy { reason: r#"regex "depth: \\d+" found"#.into() });

    let literal = config(url, r"depth: \d+");
    assert!(matches!(run(literal).await, CheckOutcome::Failed { .. }));
}

#[tokio::test]
async fn only_the_first_mebibyte_is_searched() {
    let mut body = vec![b'.'; 2 * MAX_BODY_BYTES];
    body[..5].copy_from_slice(b"START");
    body[MAX_BODY_BYTES + 10..MAX_BODY_BYTES + 13].copy_from_slice(b"END");
    let addr = serve_http(200, body).await;
    let url = format!("http://{addr}/");

    let early = run(config(url.clone(), "START")).await;
    assert_eq!(early, CheckOutcome::Healthy { reason: r#"keyword "START" found"#.into() });

    let late = run(config(url, "END")).await;
    let reason = format!(r#"keyword "END" not found in the first {MAX_BODY_BYTES} bytes"#);
    assert_eq!(late, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn codes_when_given_must_match_too() {
    let addr = serve_http(503, b"OK".to_vec()).await;
    let url = format!("http://{addr}/");
    let strict = Config { codes: Some(vec![200]), ..config(url.clone(), "OK") };
    let reason = "HTTP 503, expected one of 200".to_owned();
    assert_eq!(run(strict).await, CheckOutcome::Failed { reason });

    let any_status = config(url, "OK");
    assert!(matches!(run(any_status).await, CheckOutcome::Healthy { .. }));
}

#[tokio::test]
async fn failed_when_the_connection_is_refused() {
    let port = refused_port().await;
    let outcome = run(config(format!("http://127.0.0.1:{port}/"), "OK")).await;
    let reason = format!("connection refused: 127.0.0.1:{port}");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn failed_in_time_when_the_server_never_answers() {
    let addr = silent_server().await;
    let started = Instant::now();
    let outcome = run(Config { timeout_ms: 300, ..config(format!("http://{addr}/"), "OK") }).await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no answer within 300 ms".into() });
}

#[test]
fn defaults_are_literal_present_any_status_5000_ms() {
    let Ok(CheckConfig::HttpKeyword(config)) =
        parse(json!({"type": "http-keyword", "url": "http://x/", "keyword": "OK"}))
    else {
        panic!("expected an http-keyword config");
    };
    assert!(!config.regex);
    assert!(config.present);
    assert_eq!(config.codes, None);
    assert_eq!(config.timeout_ms, 5000);
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let cases = [
        (json!({"type": "http-keyword", "url": "gopher://x/", "keyword": "OK"}), "url"),
        (json!({"type": "http-keyword", "url": "http://x/", "keyword": ""}), "keyword"),
        (json!({"type": "http-keyword", "url": "http://x/"}), "keyword"),
        (
            json!({"type": "http-keyword", "url": "http://x/", "keyword": "(", "regex": true}),
            "keyword",
        ),
        (json!({"type": "http-keyword", "url": "http://x/", "keyword": "a", "codes": []}), "codes"),
        (
            json!({"type": "http-keyword", "url": "http://x/", "keyword": "a", "present": "yes"}),
            "present",
        ),
        (
            json!({"type": "http-keyword", "url": "http://x/", "keyword": "a", "timeout_ms": 0}),
            "timeout_ms",
        ),
        (json!({"type": "http-keyword", "url": "http://x/", "keyword": "a", "bogus": 1}), "bogus"),
        (json!({"type": "http-keyword", "url": "http://x/", "keyword": "a", "host": ""}), "host"),
        (
            json!({"type": "http-keyword", "url": "http://x/", "keyword": "a",
                   "headers": {"Connection": "close"}}),
            "headers.Connection",
        ),
        (
            json!({"type": "http-keyword", "url": "http://x/", "keyword": "a",
                   "max_response_ms": 6000}),
            "max_response_ms",
        ),
        (
            json!({"type": "http-keyword", "url": "http://x/", "keyword": "a",
                   "expect_json": {"path": "", "value": 1}}),
            "expect_json",
        ),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
}

#[test]
fn a_bad_regex_is_reported_on_one_line() {
    let mut bad = config("http://x/".into(), "(unclosed");
    bad.regex = true;
    let error =
        HttpKeywordCheck::new(&bad, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
            .unwrap_err();
    assert_eq!(error.field, "keyword");
    assert_eq!(error.message, "invalid regex: unclosed group");
    // The same text is fine as a literal keyword.
    bad.regex = false;
    assert!(
        HttpKeywordCheck::new(&bad, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
            .is_ok()
    );
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "http-keyword").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    let fields = [
        "url",
        "keyword",
        "regex",
        "present",
        "codes",
        "timeout_ms",
        "host",
        "follow_redirects",
        "verify_tls",
        "headers",
        "max_response_ms",
    ];
    assert_eq!(properties.len(), fields.len(), "{properties:?}");
    for field in fields {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    assert_eq!(info.schema["required"], json!(["url", "keyword"]));
}

#[tokio::test]
async fn sends_the_host_override_and_custom_headers() {
    let mut server = serve(|request| {
        let vhost = request.header("host") == Some("status.example.com");
        reply(200, &[], if vhost { "vhost OK" } else { "default site" })
    })
    .await;
    let headers = CustomHeaders([("X-Probe".to_owned(), "cloudroutes".to_owned())].into());
    let vhost = Config {
        host: Some("status.example.com".into()),
        headers,
        ..config(server.url("/"), "vhost OK")
    };
    assert_eq!(
        run(vhost).await,
        CheckOutcome::Healthy { reason: r#"keyword "vhost OK" found"#.into() }
    );
    let request = server.next_request().await;
    assert_eq!(request.header("host"), Some("status.example.com"));
    assert_eq!(request.header("x-probe"), Some("cloudroutes"));
}

#[tokio::test]
async fn follows_redirects_to_search_the_final_body_when_asked() {
    let server = serve(|request| match request.path.as_str() {
        "/" => reply(302, &[("Location", "/home")], "moved"),
        _ => reply(200, &[], "welcome home"),
    })
    .await;
    let stays = config(server.url("/"), "welcome");
    assert!(matches!(run(stays).await, CheckOutcome::Failed { .. }));
    let follows = Config { follow_redirects: true, ..config(server.url("/"), "welcome") };
    assert_eq!(
        run(follows).await,
        CheckOutcome::Healthy { reason: r#"keyword "welcome" found"#.into() }
    );
}

#[tokio::test]
async fn failed_when_slower_than_max_response_ms_even_with_the_keyword() {
    let server =
        serve(|_| Reply { delay: Duration::from_millis(300), ..reply(200, &[], "OK") }).await;
    let slow = Config { max_response_ms: Some(100), ..config(server.url("/"), "OK") };
    let CheckOutcome::Failed { reason } = run(slow).await else { panic!("expected failed") };
    assert!(
        reason.starts_with("HTTP 200 in ") && reason.ends_with(" ms, slower than 100 ms"),
        "{reason}"
    );
}
