//! The Heroku types against a fake API: each request as the Platform API reference documents it
//! (<https://devcenter.heroku.com/articles/platform-api-reference>: `Accept:
//! application/vnd.heroku+json; version=3`, `Authorization: Bearer $TOKEN`, `#dyno-restart`,
//! `#dyno-restart-all`, `#formation-update`), and each kind of failure.

use std::time::{Duration, Instant};

use cloudroutes_engine::{Method, MonitorId, ReactionId, Status};
use serde_json::{Value, json};

use super::*;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ReactionConfig, reaction_types};

const KEY: &str = "HRKU-s3cr3t";

fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "restart the shop".into(),
        status: Status::Failed,
        episode: 2,
        reason: "HTTP 503".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:2:failed:0".into(),
        node: "node-a".into(),
    }
}

/// One Heroku type: its config, the request it must send and the answer Heroku gives.
struct Case {
    config: Value,
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    answer: Reply,
    detail: &'static str,
    effect: Effect,
}

fn cases(base_url: &str, timeout_ms: u64) -> Vec<Case> {
    let common = json!({"api_key": KEY, "app": "shop-prod", "api_base_url": base_url, "timeout_ms": timeout_ms});
    let with = |fields: Value| {
        let mut config = common.clone();
        for (field, value) in fields.as_object().unwrap() {
            config[field] = value.clone();
        }
        config
    };
    // The formation as the reference's example shows it.
    let formation = json!({
        "app": {"name": "shop-prod", "id": "01234567-89ab-cdef-0123-456789abcdef"},
        "command": "bundle exec rails server -p $PORT", "created_at": "2012-01-01T12:00:00Z",
        "id": "01234567-89ab-cdef-0123-456789abcdef", "quantity": 4, "size": "standard-1X",
        "type": "worker", "updated_at": "2012-01-01T12:00:00Z",
    });
    vec![
        Case {
            config: with(json!({"type": "heroku-restart-dyno", "dyno": "web.1"})),
            method: "DELETE",
            path: "/apps/shop-prod/dynos/web.1",
            body: None,
            answer: Reply::json(202, json!({})),
            detail: "HTTP 202, restart of dyno web.1 of shop-prod requested",
            effect: Effect::Destructive,
        },
        Case {
            config: with(json!({"type": "heroku-restart-all-dynos"})),
            method: "DELETE",
            path: "/apps/shop-prod/dynos",
            body: None,
            answer: Reply::json(202, json!({})),
            detail: "HTTP 202, restart of all dynos of shop-prod requested",
            effect: Effect::Destructive,
        },
        Case {
            config: with(
                json!({"type": "heroku-scale-out", "process_type": "worker", "quantity": 4}),
            ),
            method: "PATCH",
            path: "/apps/shop-prod/formation/worker",
            body: Some(json!({"quantity": 4})),
            answer: Reply::json(200, formation),
            detail: "HTTP 200, worker of shop-prod at 4 dynos (standard-1X)",
            effect: Effect::Idempotent,
        },
    ]
}

fn kind(case: &Case) -> &str {
    case.config["type"].as_str().unwrap()
}

fn parse(value: Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

fn build(value: &Value) -> Box<dyn Reaction> {
    parse(value.clone())
        .unwrap()
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap()
}

#[tokio::test]
async fn each_type_sends_its_documented_request_with_version_3_and_the_key() {
    let fake = FakeApi::start().await;
    for (index, case) in cases(&fake.base_url(), 2000).into_iter().enumerate() {
        fake.reply(case.method, case.path, vec![case.answer.clone()]);
        let fired = build(&case.config).fire(&incident()).await.unwrap();
        assert_eq!(fired, Fired::Executed(case.detail.into()), "{}", kind(&case));

        let requests = fake.requests();
        assert_eq!(requests.len(), index + 1);
        let request = &requests[index];
        assert_eq!((request.method.as_str(), request.path.as_str()), (case.method, case.path));
        assert_eq!(request.query, None);
        assert_eq!(request.header("accept"), Some("application/vnd.heroku+json; version=3"));
        assert_eq!(request.header("authorization"), Some("Bearer HRKU-s3cr3t"));
        match &case.body {
            Some(body) => {
                assert_eq!(request.header("content-type"), Some("application/json"));
                assert_eq!(&request.json(), body);
            }
            None => {
                assert_eq!(request.header("content-type"), None, "{}", kind(&case));
                assert!(request.body.is_empty(), "{}", kind(&case));
            }
        }
    }
}

#[tokio::test]
async fn scale_out_defaults_to_web_and_trusts_its_own_quantity_without_a_formation() {
    let fake = FakeApi::start().await;
    fake.reply("PATCH", "/apps/shop-prod/formation/web", vec![Reply::json(200, json!({}))]);
    let config = json!({"type": "heroku-scale-out", "api_key": KEY, "app": "shop-prod", "quantity": 3, "api_base_url": fake.base_url()});
    let fired = build(&config).fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("HTTP 200, web of shop-prod at 3 dynos".into()));
    assert_eq!(fake.requests()[0].json(), json!({"quantity": 3}));
}

#[test]
fn each_type_declares_its_effect_schema_and_secret_key() {
    let types = reaction_types();
    for case in cases(DEFAULT_API_BASE_URL, 2000) {
        let info = types.iter().find(|t| t.name == kind(&case)).unwrap();
        assert_eq!((info.effect, info.secret_fields), (case.effect, &["api_key"][..]));
        let properties = info.schema["properties"].as_object().unwrap();
        let mut fields: Vec<_> =
            case.config.as_object().unwrap().keys().map(String::as_str).collect();
        fields.retain(|field| *field != "type");
        if kind(&case) == "heroku-scale-out" {
            assert_eq!(properties["process_type"]["default"], json!("web"));
            assert_eq!(properties["quantity"]["maximum"], json!(100));
        }
        let mut listed: Vec<_> = properties.keys().map(String::as_str).collect();
        fields.sort_unstable();
        listed.sort_unstable();
        assert_eq!(listed, fields, "{}", kind(&case));
        assert_eq!(properties["api_key"]["writeOnly"], json!(true));
        let reaction = build(&case.config);
        assert_eq!((reaction.kind(), reaction.effect()), (kind(&case), case.effect));
        assert!(!format!("{reaction:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", parse(case.config.clone())).contains("s3cr3t"));
    }
}

#[tokio::test]
async fn a_missing_app_is_rejected_quoting_herokus_message() {
    let fake = FakeApi::start().await;
    for case in cases(&fake.base_url(), 2000) {
        let answer =
            json!({"id": "not_found", "message": "Couldn't find that app.", "resource": "app"});
        fake.reply(case.method, case.path, vec![Reply::json(404, answer)]);
        let error = build(&case.config).fire(&incident()).await.unwrap_err();
        let expected = format!("{}: target answered HTTP 404 Couldn't find that app.", kind(&case));
        assert_eq!(error.to_string(), expected);
        assert!(!error.is_retryable());
        assert!(!format!("{error:?}").contains("s3cr3t"));
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    let fake = FakeApi::start().await;
    for case in cases(&fake.base_url(), 2000) {
        let limited = json!({"id": "rate_limit", "message": "Your account reached the API rate limit\nPlease wait a few minutes before making new requests"});
        let unavailable =
            json!({"id": "unavailable", "message": "API is temporarily unavailable."});
        fake.reply(
            case.method,
            case.path,
            vec![Reply::json(429, limited), Reply::json(503, unavailable)],
        );
        let reaction = build(&case.config);
        let error = reaction.fire(&incident()).await.unwrap_err();
        assert!(error.to_string().ends_with("HTTP 429 Your account reached the API rate limit Please wait a few minutes before making new requests"), "{error}");
        assert!(error.is_retryable());
        let error = reaction.fire(&incident()).await.unwrap_err();
        assert!(error.to_string().ends_with("HTTP 503 API is temporarily unavailable."), "{error}");
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn a_slow_api_times_out_and_a_closed_port_is_refused() {
    let fake = FakeApi::start().await;
    let (_closed, port) = closed_port();
    for case in cases(&fake.base_url(), 150) {
        fake.reply(case.method, case.path, vec![Reply::slow(Duration::from_secs(5))]);
        let started = Instant::now();
        let error = build(&case.config).fire(&incident()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(matches!(error, ReactionError::Timeout { timeout_ms: 150, .. }), "{error:?}");
        assert!(error.is_retryable());
    }
    for case in cases(&format!("http://127.0.0.1:{port}"), 2000) {
        let error = build(&case.config).fire(&incident()).await.unwrap_err();
        let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
        assert!(message.to_lowercase().contains("refused"), "{message}");
        assert!(error.is_retryable());
    }
}

#[test]
fn rejects_invalid_fields_naming_them() {
    for case in cases(DEFAULT_API_BASE_URL, 2000) {
        let with = |field: &str, value: Value| {
            let mut config = case.config.clone();
            config[field] = value;
            config
        };
        let mut bad = vec![
            (with("api_key", json!("")), "api_key"),
            (with("api_key", json!("a b")), "api_key"),
            (with("app", json!("Shop")), "app"),
            (with("app", json!("ab")), "app"),
            (with("app", json!("1shop")), "app"),
            (with("app", json!("shop_prod")), "app"),
            (with("app", json!("a".repeat(31))), "app"),
            (with("app", json!("shop/../x")), "app"),
            (with("api_base_url", json!("https://api.heroku.com/#x")), "api_base_url"),
            (with("timeout_ms", json!(120_001)), "timeout_ms"),
            (with("size", json!("standard-2X")), "size"),
        ];
        match kind(&case) {
            "heroku-restart-dyno" => bad.extend([
                (with("dyno", json!("")), "dyno"),
                (with("dyno", json!("web/1")), "dyno"),
                (with("dyno", json!("../web")), "dyno"),
                (with("dyno", json!(".1")), "dyno"),
            ]),
            "heroku-scale-out" => bad.extend([
                (with("quantity", json!(0)), "quantity"),
                (with("quantity", json!(101)), "quantity"),
                (with("quantity", json!(-2)), "quantity"),
                (with("process_type", json!("web.1")), "process_type"),
                (with("process_type", json!("")), "process_type"),
            ]),
            _ => bad.push((with("dyno", json!("web.1")), "dyno")),
        }
        for (value, field) in bad {
            let error = parse(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{}: {value} gave {error}", kind(&case));
        }
    }
    let longest = json!({"type": "heroku-restart-dyno", "api_key": KEY, "app": format!("a{}", "-9".repeat(14) + "z"), "dyno": "worker_2.12"});
    assert!(parse(longest).is_ok());
}
