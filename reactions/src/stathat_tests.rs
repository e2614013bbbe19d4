//! Request shape from StatHat's EZ API docs (<https://www.stathat.com/docs/api>) and its JSON
//! form (<https://blog.stathat.com/2013/03/13/use_json_to_update_many_stats.html>).

use std::time::Duration;

use cloudroutes_engine::{Method, MonitorId, PluginSpec, ReactionId, Status};
use serde_json::json;

use super::*;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ReactionConfig, reaction_types};

const EZKEY: &str = "ops@example.com";

fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop front page".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "count~outages".into(),
        status: Status::Failed,
        episode: 4,
        reason: "HTTP 503, expected one of 200".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:4:failed:0".into(),
        node: "node-a".into(),
    }
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    let spec: PluginSpec = serde_json::from_value(value).unwrap();
    ReactionConfig::parse(&spec)
}

fn reaction(base_url: &str, extra: serde_json::Value) -> Box<dyn Reaction> {
    let mut value =
        json!({"type": "stathat", "ezkey": EZKEY, "api_base_url": base_url, "timeout_ms": 2000});
    for (key, field) in extra.as_object().into_iter().flatten() {
        value[key] = field.clone();
    }
    parse(value)
        .unwrap()
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap()
}

#[tokio::test]
async fn counts_one_in_the_default_stat_with_the_json_ez_api() {
    let fake = FakeApi::start().await;
    fake.reply(
        "POST",
        "/ez",
        vec![Reply::json(200, json!({"status": 200, "msg": "ok", "multiple": 1}))],
    );
    let fired = reaction(&fake.base_url(), json!({})).fire(&incident()).await.unwrap();
    assert_eq!(
        fired,
        Fired::Executed("HTTP 200, counted 1 in `cloudroutes.shop front page.failed`".into())
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str(), request.query.as_deref()),
        ("POST", "/ez", None)
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), None);
    let expected = json!({"ezkey": EZKEY, "data": [{"stat": "cloudroutes.shop front page.failed", "count": 1}]});
    assert_eq!(request.json(), expected);
}

#[tokio::test]
async fn the_stat_template_fills_names_without_tildes_and_is_cut_to_255() {
    let fake = FakeApi::start().await;
    let custom =
        reaction(&fake.base_url(), json!({"stat": "outages~{status},{reaction},{monitor}"}));
    let mut tilde = incident();
    tilde.monitor_name = "shop~eu".into();
    custom.fire(&tilde).await.unwrap();
    let long =
        reaction(&fake.base_url(), json!({"stat": format!("{}.{{monitor}}", "x".repeat(245))}));
    long.fire(&incident()).await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests[0].json()["data"][0]["stat"], "outages~failed,count-outages,shop-eu");
    let cut = requests[1].json()["data"][0]["stat"].as_str().unwrap().to_owned();
    assert_eq!(cut, format!("{}.shop fron", "x".repeat(245)));
}

#[tokio::test]
async fn error_answers_are_reported_without_the_ezkey() {
    let fake = FakeApi::start().await;
    fake.reply(
        "POST",
        "/ez",
        vec![
            Reply::json(200, json!({"status": 500, "msg": format!("invalid ezkey {EZKEY}")})),
            Reply::json(400, json!({"status": 400, "msg": format!("no such account {EZKEY}")})),
            Reply::json(503, json!({"msg": "maintenance"})),
            Reply { status: 200, body: "ok".into(), delay: Duration::ZERO },
        ],
    );
    let reaction = reaction(&fake.base_url(), json!({}));
    let in_body = reaction.fire(&incident()).await.unwrap_err();
    assert_eq!(in_body.to_string(), "stathat: stathat answered status 500: invalid ezkey ***");
    assert!(!in_body.is_retryable());
    let rejected = reaction.fire(&incident()).await.unwrap_err();
    assert!(matches!(rejected, ReactionError::Rejected { status: 400, .. }), "{rejected:?}");
    assert!(!rejected.is_retryable());
    assert!(rejected.to_string().contains("no such account ***"), "{rejected}");
    let unavailable = reaction.fire(&incident()).await.unwrap_err();
    assert!(unavailable.is_retryable());
    assert!(unavailable.to_string().contains("maintenance"), "{unavailable}");
    let plain = reaction.fire(&incident()).await.unwrap();
    assert!(matches!(plain, Fired::Executed(ref detail) if detail.starts_with("HTTP 200")));
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_port_is_a_transport_error() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/ez", vec![Reply::slow(Duration::from_secs(5))]);
    let error =
        reaction(&fake.base_url(), json!({"timeout_ms": 200})).fire(&incident()).await.unwrap_err();
    assert!(
        matches!(error, ReactionError::Timeout { kind: "stathat", timeout_ms: 200 }),
        "{error:?}"
    );
    let (_closed, port) = closed_port();
    let closed = reaction(&format!("http://127.0.0.1:{port}"), json!({}));
    let error = closed.fire(&incident()).await.unwrap_err();
    assert!(matches!(error, ReactionError::Transport { .. }), "{error:?}");
    assert!(error.is_retryable());
}

#[test]
fn rejects_bad_fields_naming_them() {
    let base = json!({"type": "stathat", "ezkey": EZKEY});
    let with = |key: &str, value: serde_json::Value| {
        let mut spec = base.clone();
        spec[key] = value;
        spec
    };
    let cases = [
        (json!({"type": "stathat"}), "ezkey"),
        (with("ezkey", json!(" ")), "ezkey"),
        (with("ezkey", json!("***")), "ezkey"),
        (with("stat", json!("")), "stat"),
        (with("stat", json!("cloudroutes.{monitr}")), "stat"),
        (with("stat", json!("cloudroutes.{monitor")), "stat"),
        (with("stat", json!("cloudroutes.monitor}")), "stat"),
        (with("stat", json!("a\tb")), "stat"),
        (with("stat", json!("x".repeat(256))), "stat"),
        (with("api_base_url", json!("api.stathat.com")), "api_base_url"),
        (with("timeout_ms", json!(0)), "timeout_ms"),
        (with("count", json!(2)), "count"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert!(!error.message.starts_with(char::is_uppercase), "{error}");
    }
}

#[test]
fn defaults_schema_effect_and_debug() {
    let Ok(ReactionConfig::Stathat(config)) = parse(json!({"type": "stathat", "ezkey": EZKEY}))
    else {
        panic!()
    };
    assert_eq!(config.stat, "cloudroutes.{monitor}.{status}");
    assert_eq!(
        (config.api_base_url.as_str(), config.timeout_ms),
        ("https://api.stathat.com", 10_000)
    );
    assert!(!format!("{config:?}").contains(EZKEY));
    let reaction = config
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap();
    assert!(!format!("{reaction:?}").contains(EZKEY));
    assert_eq!((reaction.kind(), reaction.effect()), ("stathat", Effect::Idempotent));

    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "stathat").unwrap();
    assert_eq!(info.secret_fields, ["ezkey"]);
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["ezkey", "stat", "api_base_url", "timeout_ms"] {
        assert!(properties[field]["description"].is_string(), "{field}");
    }
    assert_eq!(properties["ezkey"]["writeOnly"], json!(true));
    assert_eq!(info.schema["required"], json!(["ezkey"]));
}
