use std::time::Duration;

use cloudroutes_engine::Status;
use serde_json::json;

use super::*;
use crate::notify::sample_incident;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ReactionConfig, reaction_types};

const HOOK_PATH: &str = "/services/T0001/B0002/abcdefSECRETpath";

/// Slack answers with plain text, not JSON.
fn text(status: u16, body: &str) -> Reply {
    Reply { status, body: body.into(), delay: Duration::ZERO }
}

fn config(url: String) -> Config {
    Config { webhook_url: Secret::new(url), timeout_ms: 2000 }
}

fn reaction(fake: &FakeApi) -> SlackWebhookReaction {
    let config = config(format!("{}{HOOK_PATH}", fake.base_url()));
    config.validate().unwrap();
    SlackWebhookReaction::new(
        &config,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap()
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

#[tokio::test]
async fn posts_a_red_summary_with_the_reason_episode_time_and_node() {
    let fake = FakeApi::start().await;
    fake.reply("POST", HOOK_PATH, vec![text(200, "ok")]);
    let fired = reaction(&fake).fire(&sample_incident(Status::Failed)).await.unwrap();
    assert_eq!(fired, Fired::Executed("HTTP 200 ok".into()));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", HOOK_PATH));
    assert_eq!(request.query, None);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(request.header("user-agent").unwrap().starts_with("CloudRoutes/"));
    assert_eq!(request.header("authorization"), None);
    let expected = json!({
        "text": ":red_circle: FAILED: shop front page (episode 4): HTTP 503, expected one of 200",
        "blocks": [
            {"type": "section", "text": {
                "type": "mrkdwn",
                "text": ":red_circle: *FAILED*: *shop front page* (episode 4)",
            }},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Reason*\nHTTP 503, expected one of 200"},
                {"type": "mrkdwn", "text": "*Time*\n2024-05-01T12:30:00Z"},
                {"type": "mrkdwn", "text": "*Episode*\n4"},
                {"type": "mrkdwn", "text": "*Node*\nnode-a"},
            ]},
            {"type": "context", "elements": [{
                "type": "mrkdwn",
                "text": "CloudRoutes reaction _tell the on-call_ · monitor `01hmonitor` \
                         · automatic result",
            }]},
        ],
    });
    assert_eq!(request.json(), expected);
}

#[tokio::test]
async fn a_recovery_is_green_and_slack_markup_in_names_is_escaped() {
    let fake = FakeApi::start().await;
    fake.reply("POST", HOOK_PATH, vec![text(200, "ok")]);
    let mut incident = sample_incident(Status::Healthy);
    incident.monitor_name = "<!channel> shop & co".into();
    incident.reason = "HTTP 200 <fast>".into();
    reaction(&fake).fire(&incident).await.unwrap();
    let body = fake.requests()[0].json();
    assert_eq!(
        body["text"],
        ":large_green_circle: HEALTHY: &lt;!channel&gt; shop &amp; co (episode 4): \
         HTTP 200 &lt;fast&gt;"
    );
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        ":large_green_circle: *HEALTHY*: *&lt;!channel&gt; shop &amp; co* (episode 4)"
    );
    assert_eq!(body["blocks"][1]["fields"][0]["text"], "*Reason*\nHTTP 200 &lt;fast&gt;");
}

#[tokio::test]
async fn slacks_error_texts_are_quoted_and_only_429_and_5xx_are_retried() {
    let fake = FakeApi::start().await;
    let cases = [
        (404, "no_service", false),
        (400, "invalid_payload", false),
        (410, "channel_is_archived", false),
        (429, "rate_limited", true),
        (500, "rollup_error", true),
    ];
    let reaction = reaction(&fake);
    for (status, answer, retryable) in cases {
        fake.reply("POST", HOOK_PATH, vec![text(status, answer)]);
        let error = reaction.fire(&sample_incident(Status::Failed)).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("slack-webhook: target answered HTTP {status} {answer}")
        );
        assert_eq!(error.is_retryable(), retryable, "{error}");
    }
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_refused_connection_is_retryable() {
    let fake = FakeApi::start().await;
    fake.reply("POST", HOOK_PATH, vec![Reply::slow(Duration::from_secs(5))]);
    let mut slow = config(format!("{}{HOOK_PATH}", fake.base_url()));
    slow.timeout_ms = 200;
    let slow = SlackWebhookReaction::new(
        &slow,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap();
    let error = slow.fire(&sample_incident(Status::Failed)).await.unwrap_err();
    assert!(matches!(error, ReactionError::Timeout { kind: "slack-webhook", timeout_ms: 200 }));

    let (_closed, port) = closed_port();
    let refused = config(format!("http://127.0.0.1:{port}{HOOK_PATH}"));
    let refused = SlackWebhookReaction::new(
        &refused,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap();
    let error = refused.fire(&sample_incident(Status::Failed)).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(!message.contains("SECRET"), "{message}");
    assert!(error.is_retryable());
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let url = "https://hooks.slack.com/services/T0/B0/x";
    let cases = [
        (json!({"type": "slack-webhook"}), "webhook_url"),
        (
            json!({"type": "slack-webhook", "webhook_url": "hooks.slack.com/services/x"}),
            "webhook_url",
        ),
        (json!({"type": "slack-webhook", "webhook_url": "ftp://hooks.slack.com/x"}), "webhook_url"),
        (json!({"type": "slack-webhook", "webhook_url": "***"}), "webhook_url"),
        (json!({"type": "slack-webhook", "webhook_url": 7}), "webhook_url"),
        (json!({"type": "slack-webhook", "webhook_url": url, "timeout_ms": 0}), "timeout_ms"),
        (json!({"type": "slack-webhook", "webhook_url": url, "timeout_ms": 120_001}), "timeout_ms"),
        (json!({"type": "slack-webhook", "webhook_url": url, "channel": "#ops"}), "channel"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert!(!error.message.contains("hooks.slack.com"), "{error}");
    }
    let Ok(ReactionConfig::SlackWebhook(config)) =
        parse(json!({"type": "slack-webhook", "webhook_url": url}))
    else {
        panic!("expected a slack-webhook config")
    };
    assert_eq!(config.timeout_ms, 10_000);
    let reaction = config
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap();
    assert_eq!((reaction.kind(), reaction.effect()), ("slack-webhook", Effect::Idempotent));
}

#[test]
fn the_webhook_url_never_appears_in_debug_output_and_is_write_only() {
    let config = config("https://hooks.slack.com/services/T0/B0/SECRETpath".into());
    assert!(!format!("{config:?}").contains("SECRET"));
    let reaction = SlackWebhookReaction::new(
        &config,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap();
    let shown = format!("{reaction:?}");
    assert!(!shown.contains("SECRET") && shown.contains("hooks.slack.com"), "{shown}");

    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "slack-webhook").unwrap();
    assert_eq!((info.secret_fields, info.effect), (&["webhook_url"][..], Effect::Idempotent));
    let properties = info.schema["properties"].as_object().unwrap();
    let mut fields: Vec<_> = properties.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["timeout_ms", "webhook_url"]);
    assert_eq!(properties["webhook_url"]["writeOnly"], json!(true));
    assert_eq!(info.schema["required"], json!(["webhook_url"]));
}
