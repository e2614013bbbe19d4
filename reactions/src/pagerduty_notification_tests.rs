use std::time::Duration;

use cloudroutes_engine::Status;
use serde_json::json;

use super::*;
use crate::notify::sample_incident;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ReactionConfig, reaction_types};

const KEY: &str = "R0123456789abcdefR0123456789abcd";

fn config(api_base_url: String) -> Config {
    Config {
        routing_key: Secret::new(KEY),
        severity: Severity::Critical,
        source: None,
        component: None,
        api_base_url,
        timeout_ms: 2000,
    }
}

fn reaction(config: &Config) -> PagerdutyNotificationReaction {
    config.validate().unwrap();
    PagerdutyNotificationReaction::new(
        config,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap()
}

fn accepted() -> Reply {
    Reply::json(
        202,
        json!({
            "status": "success",
            "message": "Event processed",
            "dedup_key": "cloudroutes-01hmonitor-4",
        }),
    )
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

fn expected_event(action: &str, status: &str) -> serde_json::Value {
    let summary = format!(
        "{}: shop front page (episode 4): HTTP 503, expected one of 200",
        status.to_uppercase()
    );
    json!({
        "routing_key": KEY,
        "event_action": action,
        "dedup_key": "cloudroutes-01hmonitor-4",
        "client": "CloudRoutes",
        "payload": {
            "summary": summary,
            "source": "shop front page",
            "severity": "critical",
            "component": "01hmonitor",
            "timestamp": "2024-05-01T12:30:00Z",
            "custom_details": {
                "monitor_id": "01hmonitor",
                "monitor": "shop front page",
                "status": status,
                "episode": 4,
                "reason": "HTTP 503, expected one of 200",
                "method": "automatic",
                "reaction": "tell the on-call",
                "node": "node-a",
            },
        },
    })
}

#[tokio::test]
async fn a_failure_triggers_and_the_recovery_resolves_with_the_same_dedup_key() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/v2/enqueue", vec![accepted()]);
    let reaction = reaction(&config(fake.base_url()));

    let fired = reaction.fire(&sample_incident(Status::Failed)).await.unwrap();
    let detail = "HTTP 202, trigger cloudroutes-01hmonitor-4: Event processed";
    assert_eq!(fired, Fired::Executed(detail.into()));
    let fired = reaction.fire(&sample_incident(Status::Healthy)).await.unwrap();
    let detail = "HTTP 202, resolve cloudroutes-01hmonitor-4: Event processed";
    assert_eq!(fired, Fired::Executed(detail.into()));

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v2/enqueue"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        // The Events API authenticates by the routing key in the body, not a header.
        assert_eq!(request.header("authorization"), None);
    }
    assert_eq!(requests[0].json(), expected_event("trigger", "failed"));
    assert_eq!(requests[1].json(), expected_event("resolve", "healthy"));
    assert_eq!(requests[0].json()["dedup_key"], requests[1].json()["dedup_key"]);
}

#[tokio::test]
async fn severity_source_and_component_come_from_the_config_and_the_base_url_may_have_a_path() {
    let fake = FakeApi::start().await;
    let mut config = config(format!("{}/pagerduty", fake.base_url()));
    config.severity = Severity::Warning;
    config.source = Some("shop.example.com".into());
    config.component = Some("nginx".into());
    let mut incident = sample_incident(Status::Failed);
    incident.reason = "x".repeat(2000);
    reaction(&config).fire(&incident).await.unwrap();
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/pagerduty/v2/enqueue");
    let payload = &request.json()["payload"];
    assert_eq!(payload["severity"], "warning");
    assert_eq!(payload["source"], "shop.example.com");
    assert_eq!(payload["component"], "nginx");
    let summary = payload["summary"].as_str().unwrap();
    assert_eq!(summary.chars().count(), 1024, "pagerduty's limit");
    assert!(
        summary.starts_with("FAILED: shop front page (episode 4): xxx") && summary.ends_with('…')
    );
}

#[tokio::test]
async fn an_unknown_status_is_skipped_without_a_call() {
    let fake = FakeApi::start().await;
    let fired = reaction(&config(fake.base_url())).fire(&sample_incident(Status::Unknown)).await;
    assert!(matches!(fired, Ok(Fired::Skipped(_))), "{fired:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_invalid_event_is_rejected_quoting_pagerdutys_errors() {
    let fake = FakeApi::start().await;
    let answer = json!({
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"],
    });
    fake.reply("POST", "/v2/enqueue", vec![Reply::json(400, answer)]);
    let error = reaction(&config(fake.base_url())).fire(&sample_incident(Status::Failed)).await;
    let error = error.unwrap_err();
    assert_eq!(
        error.to_string(),
        "pagerduty-notification: target answered HTTP 400 invalid event: Event object is \
         invalid: Length of 'routing_key' is incorrect (should be 32 characters)"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_echoed_routing_key_is_hidden_and_429_and_5xx_are_retryable() {
    let fake = FakeApi::start().await;
    let echo = json!({"status": "invalid event", "errors": [format!("unknown key {KEY}")]});
    fake.reply("POST", "/v2/enqueue", vec![Reply::json(400, echo)]);
    let reaction = reaction(&config(fake.base_url()));
    let error = reaction.fire(&sample_incident(Status::Failed)).await.unwrap_err();
    assert!(!error.to_string().contains(KEY) && error.to_string().contains("***"), "{error}");

    let throttled = json!({
        "status": "throttle exceeded",
        "message": "Requests for this service are arriving too quickly.",
    });
    for (status, body) in [(429, throttled), (500, json!({})), (503, json!({}))] {
        fake.reply("POST", "/v2/enqueue", vec![Reply::json(status, body)]);
        let error = reaction.fire(&sample_incident(Status::Failed)).await.unwrap_err();
        assert!(matches!(error, ReactionError::Rejected { status: s, .. } if s == status));
        assert!(error.is_retryable(), "{error}");
    }
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_refused_connection_is_a_transport_error() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/v2/enqueue", vec![Reply::slow(Duration::from_secs(5))]);
    let mut slow = config(fake.base_url());
    slow.timeout_ms = 200;
    let error = reaction(&slow).fire(&sample_incident(Status::Failed)).await.unwrap_err();
    assert!(matches!(error, ReactionError::Timeout { timeout_ms: 200, .. }), "{error:?}");

    let (_closed, port) = closed_port();
    let refused = config(format!("http://127.0.0.1:{port}"));
    let error = reaction(&refused).fire(&sample_incident(Status::Failed)).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(error.is_retryable());
}

#[test]
fn defaults_to_critical_on_the_real_events_api() {
    let Ok(ReactionConfig::PagerdutyNotification(config)) =
        parse(json!({"type": "pagerduty-notification", "routing_key": KEY}))
    else {
        panic!("expected a pagerduty-notification config")
    };
    assert_eq!(config.severity, Severity::Critical);
    assert_eq!(config.api_base_url, "https://events.pagerduty.com");
    assert_eq!(config.timeout_ms, 10_000);
    let reaction = reaction(&config);
    assert_eq!(reaction.url.as_str(), "https://events.pagerduty.com/v2/enqueue");
    assert_eq!(
        (reaction.kind(), reaction.effect()),
        ("pagerduty-notification", Effect::Idempotent)
    );
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let key = KEY;
    let cases = [
        (json!({"type": "pagerduty-notification"}), "routing_key"),
        (json!({"type": "pagerduty-notification", "routing_key": ""}), "routing_key"),
        (json!({"type": "pagerduty-notification", "routing_key": "has space"}), "routing_key"),
        (json!({"type": "pagerduty-notification", "routing_key": "***"}), "routing_key"),
        (
            json!({"type": "pagerduty-notification", "routing_key": key, "severity": "high"}),
            "severity",
        ),
        (json!({"type": "pagerduty-notification", "routing_key": key, "source": " "}), "source"),
        (
            json!({"type": "pagerduty-notification", "routing_key": key, "component": "a\nb"}),
            "component",
        ),
        (
            json!({
                "type": "pagerduty-notification", "routing_key": key, "api_base_url": "ftp://x",
            }),
            "api_base_url",
        ),
        (
            json!({"type": "pagerduty-notification", "routing_key": key, "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            json!({"type": "pagerduty-notification", "routing_key": key, "dedup_key": "x"}),
            "dedup_key",
        ),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert!(!error.message.contains(KEY), "{error}");
    }
    for severity in ["critical", "error", "warning", "info"] {
        let value =
            json!({"type": "pagerduty-notification", "routing_key": key, "severity": severity});
        assert!(parse(value).is_ok(), "{severity}");
    }
}

#[test]
fn the_routing_key_never_appears_in_debug_output_and_is_write_only() {
    let config = config(DEFAULT_API_BASE_URL.into());
    assert!(!format!("{config:?}").contains(KEY));
    assert!(!format!("{:?}", reaction(&config)).contains(KEY));

    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "pagerduty-notification").unwrap();
    assert_eq!((info.secret_fields, info.effect), (&["routing_key"][..], Effect::Idempotent));
    let properties = info.schema["properties"].as_object().unwrap();
    let mut fields: Vec<_> = properties.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["api_base_url", "component", "routing_key", "severity", "source", "timeout_ms"]
    );
    assert_eq!(properties["routing_key"]["writeOnly"], json!(true));
    assert_eq!(info.schema["required"], json!(["routing_key"]));
}
