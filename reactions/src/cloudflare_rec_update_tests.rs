//! `cloudflare-rec-update` against a fake of Cloudflare API v4: list, then edit
//! (<https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/edit/>).

use cloudroutes_engine::Status;
use serde_json::{Value, json};

use super::*;
use crate::cloudflare::tests::{
    RECORDS, ZONE, assert_shared_rejections, base, failure, incident, ok, page, parse, record,
    record_path,
};
use crate::test_api::FakeApi;
use crate::{ReactionConfig, reaction_types};

fn action(base_url: &str) -> Value {
    json!({
        "type": "cloudflare-rec-update", "zone_id": ZONE, "name": "www.example.com",
        "record_type": "A", "content": "198.51.100.7", "api_token": "cf-token",
        "api_base_url": base_url, "timeout_ms": 2000,
    })
}

fn reaction(action: Value) -> RecUpdateReaction {
    let ReactionConfig::CloudflareRecUpdate(config) = parse(action).unwrap() else { panic!() };
    RecUpdateReaction::new(
        &config,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap()
}

fn patches(fake: &FakeApi) -> Vec<(String, Value)> {
    let requests = fake.requests().into_iter().filter(|r| r.method == "PATCH");
    requests.map(|r| (r.path.clone(), r.json())).collect()
}

#[tokio::test]
async fn patches_only_the_fields_that_differ() {
    let fake = FakeApi::start().await;
    fake.reply(
        "GET",
        RECORDS,
        vec![page(vec![record("a1", "A", "www.example.com", "192.0.2.1")], 1, 1)],
    );
    fake.reply(
        "PATCH",
        &record_path("a1"),
        vec![ok(record("a1", "A", "www.example.com", "198.51.100.7"))],
    );
    let mut update = action(&base(&fake));
    update["ttl"] = json!(1); // already automatic: not sent
    update["proxied"] = json!(true);
    let fired = reaction(update).fire(&incident(Status::Failed)).await.unwrap();
    assert_eq!(
        fired,
        Fired::Executed(
            "updated A www.example.com (record a1): content 192.0.2.1 → 198.51.100.7, proxied false → true"
                .into()
        )
    );
    let requests = fake.requests();
    assert_eq!(
        requests[0].query.as_deref(),
        Some("type=A&name=www.example.com&page=1&per_page=100")
    );
    assert_eq!(
        patches(&fake),
        [(record_path("a1"), json!({"content": "198.51.100.7", "proxied": true}))]
    );
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(patch.header("authorization"), Some("Bearer cf-token"));
    assert_eq!(patch.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_record_already_set_is_skipped_and_a_missing_one_is_not_created() {
    let fake = FakeApi::start().await;
    fake.reply(
        "GET",
        RECORDS,
        vec![page(vec![record("a1", "A", "www.example.com", "198.51.100.7")], 1, 1)],
    );
    let fired = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap();
    assert_eq!(fired, Fired::Skipped("A www.example.com already holds 198.51.100.7".into()));
    fake.reply("GET", RECORDS, vec![page(vec![], 1, 1)]);
    let fired = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap();
    let reason = format!("no A record named www.example.com in zone {ZONE}: nothing to update");
    assert_eq!(fired, Fired::Skipped(reason));
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn several_records_of_the_name_are_refused() {
    let fake = FakeApi::start().await;
    let two = vec![
        record("a1", "A", "www.example.com", "192.0.2.1"),
        record("a2", "A", "www.example.com", "192.0.2.2"),
    ];
    fake.reply("GET", RECORDS, vec![page(two, 1, 1)]);
    let error = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(matches!(error, ReactionError::Failed { .. }), "{error}");
    assert!(error.to_string().contains("2 A records are named www.example.com"), "{error}");
    assert!(patches(&fake).is_empty());
}

#[tokio::test]
async fn api_failures_are_errors() {
    let fake = FakeApi::start().await;
    fake.reply(
        "GET",
        RECORDS,
        vec![page(vec![record("a1", "A", "www.example.com", "192.0.2.1")], 1, 1)],
    );
    fake.reply(
        "PATCH",
        &record_path("a1"),
        vec![failure(429, 971, "Please wait and consider throttling your request speed")],
    );
    let error = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("HTTP 429 971 Please wait"), "{error}");
    fake.reply("PATCH", &record_path("a1"), vec![failure(200, 1004, "DNS Validation Error")]);
    let error = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("1004 DNS Validation Error"), "{error}");
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let valid = action("https://api.cloudflare.com/client/v4");
    assert_shared_rejections(&valid);
    for (change, field) in [
        (json!({"content": "www.example.com"}), "content"),
        (json!({"ttl": 10}), "ttl"),
        (json!({"record_type": "TXT", "content": "x", "proxied": true}), "proxied"),
        (json!({"priority": 5}), "priority"),
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
    let info = types.iter().find(|t| t.name == "cloudflare-rec-update").unwrap();
    assert_eq!(info.effect, Effect::Idempotent);
    let properties = info.schema["properties"].as_object().unwrap();
    assert_eq!(properties.len(), 12, "{properties:?}");
    assert_eq!(properties["api_token"]["writeOnly"], json!(true));
    let required = json!(["zone_id", "name", "record_type", "content"]);
    assert_eq!(info.schema["required"], required);
    let reaction = reaction(action("https://api.cloudflare.com/client/v4"));
    assert_eq!(reaction.effect(), Effect::Idempotent);
    assert!(!format!("{reaction:?}").contains("cf-token"));
}
