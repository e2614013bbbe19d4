//! The Linode types against a fake API: each request as the API reference documents it
//! (<https://techdocs.akamai.com/linode-api/reference/post-reboot-linode-instance>: `POST`,
//! `Authorization: Bearer $TOKEN`, `Content-Type: application/json`, answer 200 `{}`), and
//! each kind of failure.

use std::time::{Duration, Instant};

use cloudroutes_engine::{Method, MonitorId, ReactionId, Status};
use serde_json::{Value, json};

use super::*;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ReactionConfig, reaction_types};

const TOKEN: &str = "linode-pat-s3cr3t";
const CASES: [(&str, &str, Effect); 3] = [
    ("linode-reboot", "reboot", Effect::Destructive),
    ("linode-boot", "boot", Effect::Idempotent),
    ("linode-shutdown", "shutdown", Effect::Destructive),
];

fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "api".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "reboot the api".into(),
        status: Status::Failed,
        episode: 1,
        reason: "connection refused".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:1:failed:0".into(),
        node: "node-a".into(),
    }
}

fn config(kind: &str, base_url: &str, timeout_ms: u64) -> Value {
    json!({
        "type": kind, "api_token": TOKEN, "linode_id": 123,
        "api_base_url": base_url, "timeout_ms": timeout_ms,
    })
}

fn parse(value: Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

fn build(value: Value) -> Box<dyn Reaction> {
    parse(value)
        .unwrap()
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap()
}

#[tokio::test]
async fn each_type_posts_to_its_endpoint_with_the_bearer_token() {
    for (kind, action, _) in CASES {
        let fake = FakeApi::start().await;
        let path = format!("/v4/linode/instances/123/{action}");
        fake.reply("POST", &path, vec![Reply::json(200, json!({}))]);
        let fired = build(config(kind, &fake.base_url(), 2000)).fire(&incident()).await.unwrap();
        assert_eq!(fired, Fired::Executed(format!("HTTP 200, {action} of linode 123 queued")));

        let requests = fake.requests();
        assert_eq!(requests.len(), 1, "{kind}");
        let request = &requests[0];
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", path.as_str()));
        assert_eq!(request.query, None);
        assert_eq!(request.header("authorization"), Some("Bearer linode-pat-s3cr3t"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.json(), json!({}), "{kind}");
    }
}

#[test]
fn each_type_declares_its_effect_schema_and_secret_token() {
    let types = reaction_types();
    for (kind, _, effect) in CASES {
        let info = types.iter().find(|t| t.name == kind).unwrap();
        assert_eq!((info.effect, info.secret_fields), (effect, &["api_token"][..]), "{kind}");
        let properties = info.schema["properties"].as_object().unwrap();
        let mut listed: Vec<_> = properties.keys().map(String::as_str).collect();
        listed.sort_unstable();
        assert_eq!(listed, ["api_base_url", "api_token", "linode_id", "timeout_ms"], "{kind}");
        assert_eq!(properties["api_token"]["writeOnly"], json!(true));
        let reaction = build(config(kind, DEFAULT_API_BASE_URL, 2000));
        assert_eq!((reaction.kind(), reaction.effect()), (kind, effect));
        assert!(!format!("{reaction:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", parse(config(kind, DEFAULT_API_BASE_URL, 1))).contains("s3cr3t"));
    }
}

#[tokio::test]
async fn a_missing_linode_is_rejected_quoting_the_reasons() {
    for (kind, action, _) in CASES {
        let fake = FakeApi::start().await;
        let path = format!("/v4/linode/instances/123/{action}");
        let errors = json!({"errors": [{"reason": "Not found"}]});
        let busy = json!({"errors": [{"reason": "Linode busy."}, {"field": "config_id", "reason": "No config"}]});
        fake.reply("POST", &path, vec![Reply::json(404, errors), Reply::json(400, busy)]);
        let reaction = build(config(kind, &fake.base_url(), 2000));
        let error = reaction.fire(&incident()).await.unwrap_err();
        assert_eq!(error.to_string(), format!("{kind}: target answered HTTP 404 Not found"));
        assert!(!error.is_retryable());
        let error = reaction.fire(&incident()).await.unwrap_err();
        let expected =
            format!("{kind}: target answered HTTP 400 Linode busy.; config_id: No config");
        assert_eq!(error.to_string(), expected);
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    for (kind, action, _) in CASES {
        let fake = FakeApi::start().await;
        let path = format!("/v4/linode/instances/123/{action}");
        let too_many = json!({"errors": [{"reason": "Too Many Requests"}]});
        let server =
            Reply { status: 502, body: "<html>bad gateway</html>".into(), delay: Duration::ZERO };
        fake.reply("POST", &path, vec![Reply::json(429, too_many), server]);
        let reaction = build(config(kind, &fake.base_url(), 2000));
        let limited = reaction.fire(&incident()).await.unwrap_err();
        assert_eq!(
            limited.to_string(),
            format!("{kind}: target answered HTTP 429 Too Many Requests")
        );
        assert!(limited.is_retryable());
        let failed = reaction.fire(&incident()).await.unwrap_err();
        let expected = format!("{kind}: target answered HTTP 502 <html>bad gateway</html>");
        assert_eq!(failed.to_string(), expected);
        assert!(failed.is_retryable());
    }
}

#[tokio::test]
async fn a_slow_api_times_out_and_a_closed_port_is_refused() {
    let (_closed, port) = closed_port();
    for (kind, action, _) in CASES {
        let fake = FakeApi::start().await;
        let path = format!("/v4/linode/instances/123/{action}");
        fake.reply("POST", &path, vec![Reply::slow(Duration::from_secs(5))]);
        let started = Instant::now();
        let error = build(config(kind, &fake.base_url(), 150)).fire(&incident()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(matches!(error, ReactionError::Timeout { timeout_ms: 150, .. }), "{error:?}");
        assert!(error.is_retryable());

        let closed = config(kind, &format!("http://127.0.0.1:{port}"), 2000);
        let error = build(closed).fire(&incident()).await.unwrap_err();
        let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
        assert!(message.to_lowercase().contains("refused"), "{message}");
        assert!(error.is_retryable());
    }
}

#[test]
fn defaults_and_rejections_name_the_field() {
    let Ok(ReactionConfig::LinodeBoot(boot)) =
        parse(json!({"type": "linode-boot", "api_token": TOKEN, "linode_id": 9}))
    else {
        panic!("expected a linode-boot config");
    };
    assert_eq!((boot.api_base_url.as_str(), boot.timeout_ms), ("https://api.linode.com", 10_000));
    for (kind, _, _) in CASES {
        let good = config(kind, DEFAULT_API_BASE_URL, 2000);
        let with = |field: &str, value: Value| {
            let mut config = good.clone();
            config[field] = value;
            config
        };
        let bad = [
            (with("api_token", json!("")), "api_token"),
            (with("api_token", json!("a\tb")), "api_token"),
            (with("linode_id", json!(0)), "linode_id"),
            (with("linode_id", json!("123")), "linode_id"),
            (with("api_base_url", json!("api.linode.com")), "api_base_url"),
            (with("timeout_ms", json!(0)), "timeout_ms"),
            (with("config_id", json!(5)), "config_id"),
        ];
        for (value, field) in bad {
            let error = parse(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{kind}: {value} gave {error}");
        }
    }
}
