//! The seven DigitalOcean types against a fake API: each request as DigitalOcean documents it
//! (<https://docs.digitalocean.com/reference/api/api-reference/#operation/dropletActions_post>,
//! `#operation/floatingIPsAction_post`; the curl examples send `Content-Type: application/json`
//! and `Authorization: Bearer $TOKEN`), and each kind of failure.

use std::time::{Duration, Instant};

use cloudroutes_engine::{Method, MonitorId, ReactionId, Status};
use serde_json::{Value, json};

use super::*;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ReactionConfig, reaction_types};

pub(crate) const TOKEN: &str = "dop_v1_s3cr3t";
const DROPLET: u64 = 3_164_444;

pub(crate) fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop front page".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "reboot the shop".into(),
        status: Status::Failed,
        episode: 4,
        reason: "HTTP 503, expected one of 200".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00.25 UTC),
        idempotency_key: "01hmonitor:01hreaction:4:failed:0".into(),
        node: "node-a".into(),
    }
}

pub(crate) fn parse(value: Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

pub(crate) fn build(value: Value) -> Box<dyn Reaction> {
    parse(value)
        .unwrap()
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap()
}

/// A 201 answer as the API reference's example shows it.
pub(crate) fn action_answer(id: u64, action_type: &str, status: &str) -> Reply {
    Reply::json(
        201,
        json!({"action": {
            "id": id, "status": status, "type": action_type,
            "started_at": "2014-11-14T16:29:21Z", "completed_at": null,
            "resource_id": DROPLET, "resource_type": "droplet", "region_slug": "nyc3",
        }}),
    )
}

/// One DigitalOcean type: its config fields besides the common ones, and what it must send.
struct Case {
    kind: &'static str,
    fields: Value,
    path: String,
    body: Value,
    effect: Effect,
}

fn cases() -> Vec<Case> {
    let droplet = |kind, action: &str, effect| Case {
        kind,
        fields: json!({"droplet_id": DROPLET}),
        path: format!("/v2/droplets/{DROPLET}/actions"),
        body: json!({"type": action}),
        effect,
    };
    vec![
        droplet("digitalocean-reboot", "reboot", Effect::Destructive),
        droplet("digitalocean-powercycle", "power_cycle", Effect::Destructive),
        droplet("digitalocean-poweron", "power_on", Effect::Idempotent),
        droplet("digitalocean-poweroff", "power_off", Effect::Destructive),
        droplet("digitalocean-shutdown", "shutdown", Effect::Destructive),
        Case {
            kind: "digitalocean-snapshot",
            fields: json!({"droplet_id": DROPLET, "snapshot_name": "{monitor} at {date}"}),
            path: format!("/v2/droplets/{DROPLET}/actions"),
            body: json!({"type": "snapshot", "name": "shop front page at 2024-05-01T12:30:00Z"}),
            effect: Effect::Destructive,
        },
        Case {
            kind: "digitalocean-assign-floatingip",
            fields: json!({"floating_ip": "45.55.96.47", "droplet_id": 758_604_968}),
            path: "/v2/floating_ips/45.55.96.47/actions".into(),
            body: json!({"type": "assign", "droplet_id": 758_604_968}),
            effect: Effect::Idempotent,
        },
    ]
}

fn config(case: &Case, base_url: &str, timeout_ms: u64) -> Value {
    let mut config = json!({
        "type": case.kind, "api_token": TOKEN, "api_base_url": base_url, "timeout_ms": timeout_ms,
    });
    for (field, value) in case.fields.as_object().unwrap() {
        config[field] = value.clone();
    }
    config
}

#[tokio::test]
async fn each_type_posts_its_documented_body_with_the_bearer_token() {
    for case in cases() {
        let fake = FakeApi::start().await;
        let action_type = case.body["type"].as_str().unwrap();
        fake.reply("POST", &case.path, vec![action_answer(36_804_636, action_type, "in-progress")]);
        let reaction = build(config(&case, &fake.base_url(), 2000));
        let fired = reaction.fire(&incident()).await.unwrap();
        let detail = format!("HTTP 201, action 36804636 {action_type} in-progress");
        assert_eq!(fired, Fired::Executed(detail), "{}", case.kind);

        let requests = fake.requests();
        assert_eq!(requests.len(), 1, "{}", case.kind);
        let request = &requests[0];
        assert_eq!((request.method.as_str(), &request.path), ("POST", &case.path), "{}", case.kind);
        assert_eq!(request.query, None);
        assert_eq!(request.header("authorization"), Some("Bearer dop_v1_s3cr3t"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.json(), case.body, "{}", case.kind);
    }
}

#[test]
fn each_type_declares_its_effect_and_secret_token() {
    let types = reaction_types();
    for case in cases() {
        let info = types.iter().find(|t| t.name == case.kind).unwrap();
        assert_eq!(info.effect, case.effect, "{}", case.kind);
        assert_eq!(info.secret_fields, ["api_token"], "{}", case.kind);
        let parsed = parse(config(&case, DEFAULT_API_BASE_URL, 2000)).unwrap();
        assert_eq!((parsed.name(), parsed.effect()), (case.kind, case.effect));
        let reaction = build(config(&case, DEFAULT_API_BASE_URL, 2000));
        assert_eq!((reaction.kind(), reaction.effect()), (case.kind, case.effect));
    }
}

#[test]
fn schemas_list_every_field_and_mark_the_token_write_only() {
    let types = reaction_types();
    for case in cases() {
        let info = types.iter().find(|t| t.name == case.kind).unwrap();
        let properties = info.schema["properties"].as_object().unwrap();
        let mut fields = vec!["api_token", "api_base_url", "timeout_ms"];
        fields.extend(case.fields.as_object().unwrap().keys().map(String::as_str));
        let mut listed: Vec<_> = properties.keys().map(String::as_str).collect();
        fields.sort_unstable();
        listed.sort_unstable();
        assert_eq!(listed, fields, "{}", case.kind);
        assert_eq!(properties["api_token"]["writeOnly"], json!(true), "{}", case.kind);
        assert_eq!(properties["droplet_id"]["minimum"], json!(1), "{}", case.kind);
    }
}

#[tokio::test]
async fn a_missing_droplet_is_rejected_quoting_digitaloceans_message() {
    let message = "The resource you were accessing could not be found.";
    for case in cases() {
        let fake = FakeApi::start().await;
        fake.reply(
            "POST",
            &case.path,
            vec![Reply::json(404, json!({"id": "not_found", "message": message}))],
        );
        let reaction = build(config(&case, &fake.base_url(), 2000));
        let error = reaction.fire(&incident()).await.unwrap_err();
        let ReactionError::Rejected { kind, status: 404, ref body } = error else {
            panic!("{}: {error:?}", case.kind)
        };
        assert_eq!((kind, body.as_str()), (case.kind, message));
        assert!(!error.is_retryable(), "{}", case.kind);
        assert!(!format!("{error} {error:?}").contains(TOKEN));
    }
}

#[tokio::test]
async fn power_on_of_a_running_droplet_is_rejected_as_final() {
    // DigitalOcean documents no message for this 422 (a locked droplet answers 422 too), so it
    // is reported as it comes rather than guessed to be harmless.
    let fake = FakeApi::start().await;
    let path = format!("/v2/droplets/{DROPLET}/actions");
    let answer = json!({"id": "unprocessable_entity", "message": "Droplet is already powered on."});
    fake.reply("POST", &path, vec![Reply::json(422, answer)]);
    let case = cases().into_iter().find(|c| c.kind == "digitalocean-poweron").unwrap();
    let error = build(config(&case, &fake.base_url(), 2000)).fire(&incident()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "digitalocean-poweron: target answered HTTP 422 Droplet is already powered on."
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    for case in cases() {
        let fake = FakeApi::start().await;
        let too_many = json!({"id": "too_many_requests", "message": "API Rate limit exceeded."});
        let server = json!({"id": "server_error", "message": "Unexpected server-side error"});
        fake.reply("POST", &case.path, vec![Reply::json(429, too_many), Reply::json(500, server)]);
        let reaction = build(config(&case, &fake.base_url(), 2000));
        for (status, message) in
            [(429, "API Rate limit exceeded."), (500, "Unexpected server-side error")]
        {
            let error = reaction.fire(&incident()).await.unwrap_err();
            let expected = format!("{}: target answered HTTP {status} {message}", case.kind);
            assert_eq!(error.to_string(), expected);
            assert!(error.is_retryable(), "{error}");
        }
    }
}

#[tokio::test]
async fn a_slow_api_times_out_within_the_timeout() {
    for case in cases() {
        let fake = FakeApi::start().await;
        fake.reply("POST", &case.path, vec![Reply::slow(Duration::from_secs(5))]);
        let reaction = build(config(&case, &fake.base_url(), 150));
        let started = Instant::now();
        let error = reaction.fire(&incident()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(matches!(error, ReactionError::Timeout { timeout_ms: 150, .. }), "{error:?}");
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_transport_error() {
    let (_closed, port) = closed_port();
    for case in cases() {
        let reaction = build(config(&case, &format!("http://127.0.0.1:{port}"), 2000));
        let error = reaction.fire(&incident()).await.unwrap_err();
        let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
        assert!(message.to_lowercase().contains("refused"), "{message}");
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn an_answer_without_an_action_fails_without_retry() {
    let fake = FakeApi::start().await;
    let path = format!("/v2/droplets/{DROPLET}/actions");
    fake.reply("POST", &path, vec![Reply::json(201, json!({"message": "ok"}))]);
    let case = cases().remove(0);
    let error = build(config(&case, &fake.base_url(), 2000)).fire(&incident()).await.unwrap_err();
    let ReactionError::Failed { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.contains("no action id") && message.contains("ok"), "{message}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_base_url_with_a_path_prefixes_the_api_paths() {
    let fake = FakeApi::start().await;
    let path = format!("/proxy/do/v2/droplets/{DROPLET}/actions");
    fake.reply("POST", &path, vec![action_answer(7, "reboot", "completed")]);
    let case = cases().remove(0);
    let reaction = build(config(&case, &format!("{}/proxy/do/", fake.base_url()), 2000));
    let fired = reaction.fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("HTTP 201, action 7 reboot completed".into()));
    assert_eq!(fake.requests()[0].path, path);
}

#[test]
fn defaults_to_the_real_api_and_ten_seconds() {
    let Ok(ReactionConfig::DigitaloceanReboot(config)) =
        parse(json!({"type": "digitalocean-reboot", "api_token": TOKEN, "droplet_id": 1}))
    else {
        panic!("expected a digitalocean-reboot config");
    };
    assert_eq!(config.api_base_url, "https://api.digitalocean.com");
    assert_eq!(config.timeout_ms, 10_000);
}

#[test]
fn rejects_invalid_common_fields_naming_them() {
    for case in cases() {
        let good = config(&case, DEFAULT_API_BASE_URL, 2000);
        let with = |field: &str, value: Value| {
            let mut config = good.clone();
            config[field] = value;
            config
        };
        let without = |field: &str| {
            let mut config = good.clone();
            config.as_object_mut().unwrap().remove(field);
            config
        };
        let bad = [
            (without("api_token"), "api_token"),
            (with("api_token", json!("")), "api_token"),
            (with("api_token", json!("dop v1")), "api_token"),
            (with("api_token", json!("***")), "api_token"),
            (without("droplet_id"), "droplet_id"),
            (with("droplet_id", json!(0)), "droplet_id"),
            (with("droplet_id", json!("3164444")), "droplet_id"),
            (with("droplet_id", json!(-1)), "droplet_id"),
            (with("api_base_url", json!("ftp://api.digitalocean.com")), "api_base_url"),
            (with("api_base_url", json!("https://api.digitalocean.com/?x=1")), "api_base_url"),
            (with("timeout_ms", json!(0)), "timeout_ms"),
            (with("timeout_ms", json!(120_001)), "timeout_ms"),
            (with("token", json!(TOKEN)), "token"),
        ];
        for (value, field) in bad {
            let error = parse(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{}: {value} gave {error}", case.kind);
            assert_eq!(error.message, error.message.to_lowercase(), "{error}");
            assert!(!error.message.contains("s3cr3t"), "{error}");
        }
    }
}

#[test]
fn debug_output_never_shows_the_token() {
    for case in cases() {
        let config = config(&case, DEFAULT_API_BASE_URL, 2000);
        let parsed = parse(config.clone()).unwrap();
        assert!(!format!("{parsed:?}").contains("s3cr3t"), "{}", case.kind);
        assert!(!format!("{:?}", build(config)).contains("s3cr3t"), "{}", case.kind);
    }
}
