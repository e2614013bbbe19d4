//! `cloudflare-rec-remove` against a fake of Cloudflare API v4: list, then delete
//! (<https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/delete/>).

use std::time::Duration;

use cloudroutes_engine::Status;
use serde_json::{Value, json};

use super::*;
use crate::cloudflare::tests::{
    RECORDS, ZONE, assert_shared_rejections, base, failure, incident, ok, page, parse, record,
    record_path,
};
use crate::test_api::{FakeApi, Reply};
use crate::{ReactionConfig, reaction_types};

fn action(base_url: &str) -> Value {
    json!({
        "type": "cloudflare-rec-remove", "zone_id": ZONE, "name": "www.example.com",
        "record_type": "A", "api_token": "cf-token", "api_base_url": base_url,
        "timeout_ms": 2000,
    })
}

fn reaction(action: Value) -> RecRemoveReaction {
    let ReactionConfig::CloudflareRecRemove(config) = parse(action).unwrap() else { panic!() };
    RecRemoveReaction::new(
        &config,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap()
}

fn round_robin() -> Reply {
    page(
        vec![
            record("a1", "A", "www.example.com", "192.0.2.1"),
            record("a2", "A", "www.example.com", "192.0.2.2"),
            // A lax API may list more than asked: another name is never deleted.
            record("a3", "A", "www2.example.com", "192.0.2.1"),
        ],
        1,
        1,
    )
}

fn deletes(fake: &FakeApi) -> Vec<String> {
    let requests = fake.requests().into_iter().filter(|r| r.method == "DELETE");
    requests.map(|r| r.path).collect()
}

#[tokio::test]
async fn deletes_every_record_of_the_name_and_type() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![round_robin()]);
    fake.reply("DELETE", &record_path("a1"), vec![ok(json!({"id": "a1"}))]);
    fake.reply("DELETE", &record_path("a2"), vec![ok(json!({"id": "a2"}))]);
    let fired = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap();
    assert_eq!(
        fired,
        Fired::Executed(
            "deleted 2: A www.example.com 192.0.2.1, A www.example.com 192.0.2.2".into()
        )
    );
    let requests = fake.requests();
    assert_eq!(
        requests[0].query.as_deref(),
        Some("type=A&name=www.example.com&page=1&per_page=100")
    );
    assert_eq!(deletes(&fake), [record_path("a1"), record_path("a2")]);
    let delete = requests.iter().find(|r| r.method == "DELETE").unwrap();
    assert_eq!(delete.header("authorization"), Some("Bearer cf-token"));
    assert!(delete.body.is_empty());
}

#[tokio::test]
async fn a_content_narrows_the_deletion_and_a_repeat_run_skips() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![round_robin()]);
    let mut one = action(&base(&fake));
    one["content"] = json!("192.0.2.2");
    fake.reply("DELETE", &record_path("a2"), vec![ok(json!({"id": "a2"}))]);
    let reaction = reaction(one);
    reaction.fire(&incident(Status::Failed)).await.unwrap();
    assert_eq!(deletes(&fake), [record_path("a2")]);
    fake.reply(
        "GET",
        RECORDS,
        vec![page(vec![record("a1", "A", "www.example.com", "192.0.2.1")], 1, 1)],
    );
    let fired = reaction.fire(&incident(Status::Failed)).await.unwrap();
    let reason = format!(
        "no A record named www.example.com with content 192.0.2.2 in zone {ZONE}: nothing to delete"
    );
    assert_eq!(fired, Fired::Skipped(reason));
    assert_eq!(deletes(&fake).len(), 1);
}

#[tokio::test]
async fn api_failures_are_errors() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![round_robin()]);
    fake.reply("DELETE", &record_path("a1"), vec![failure(403, 10000, "Authentication error")]);
    let error = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("HTTP 403 10000 Authentication error"), "{error}");
    fake.reply("DELETE", &record_path("a1"), vec![Reply::slow(Duration::from_secs(5))]);
    let mut quick = action(&base(&fake));
    quick["timeout_ms"] = json!(200);
    let error = reaction(quick).fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(matches!(error, ReactionError::Timeout { timeout_ms: 200, .. }), "{error}");
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let valid = action("https://api.cloudflare.com/client/v4");
    assert_shared_rejections(&valid);
    for (change, field) in [
        (json!({"name": "a b"}), "name"),
        (json!({"record_type": "a"}), "record_type"),
        (json!({"content": "not-an-ip"}), "content"),
        (json!({"ttl": 60}), "ttl"),
    ] {
        let mut action = valid.clone();
        for (key, value) in change.as_object().unwrap() {
            action[key] = value.clone();
        }
        assert_eq!(parse(action.clone()).unwrap_err().field, field, "{action}");
    }
}

#[test]
fn schema_and_effect() {
    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "cloudflare-rec-remove").unwrap();
    assert_eq!(info.effect, Effect::Idempotent);
    let properties = info.schema["properties"].as_object().unwrap();
    assert_eq!(properties.len(), 9, "{properties:?}");
    assert_eq!(properties["api_key"]["writeOnly"], json!(true));
    assert_eq!(info.schema["required"], json!(["zone_id", "name", "record_type"]));
    let reaction = reaction(action("https://api.cloudflare.com/client/v4"));
    assert_eq!(reaction.effect(), Effect::Idempotent);
    assert!(!format!("{reaction:?}").contains("cf-token"));
}
