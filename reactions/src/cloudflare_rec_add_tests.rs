//! `cloudflare-rec-add` against a fake of Cloudflare API v4: list, then create
//! (<https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/create/>).

use cloudroutes_engine::Status;
use serde_json::{Value, json};

use super::*;
use crate::cloudflare::tests::{
    RECORDS, ZONE, assert_shared_rejections, base, failure, incident, ok, page, parse, record,
    refused_base_url,
};
use crate::test_api::FakeApi;
use crate::{ReactionConfig, reaction_types};

fn action(base_url: &str) -> Value {
    json!({
        "type": "cloudflare-rec-add", "zone_id": ZONE, "name": "backup.example.com",
        "record_type": "A", "content": "198.51.100.7", "ttl": 120, "proxied": true,
        "api_token": "cf-token", "api_base_url": base_url, "timeout_ms": 2000,
    })
}

fn reaction(action: Value) -> RecAddReaction {
    let ReactionConfig::CloudflareRecAdd(config) = parse(action).unwrap() else { panic!() };
    RecAddReaction::new(
        &config,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn creates_the_record_when_the_lookup_finds_none() {
    let fake = FakeApi::start().await;
    // Same name and type, another address: not the record asked for.
    let other = record("a9", "A", "backup.example.com", "198.51.100.8");
    fake.reply("GET", RECORDS, vec![page(vec![other], 1, 1)]);
    fake.reply("POST", RECORDS, vec![ok(record("n1", "A", "backup.example.com", "198.51.100.7"))]);
    let fired = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap();
    assert_eq!(
        fired,
        Fired::Executed("created A backup.example.com 198.51.100.7 (record n1)".into())
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].query.as_deref(),
        Some("type=A&name=backup.example.com&page=1&per_page=100")
    );
    let create = &requests[1];
    assert_eq!((create.method.as_str(), create.path.as_str()), ("POST", RECORDS));
    assert_eq!(create.header("authorization"), Some("Bearer cf-token"));
    assert_eq!(create.header("content-type"), Some("application/json"));
    let expected = json!({
        "type": "A", "name": "backup.example.com", "content": "198.51.100.7", "ttl": 120,
        "proxied": true,
    });
    assert_eq!(create.json(), expected);
}

#[tokio::test]
async fn an_existing_record_is_not_created_again() {
    let fake = FakeApi::start().await;
    let same = record("a1", "A", "Backup.example.com.", "198.51.100.7");
    fake.reply("GET", RECORDS, vec![page(vec![same], 1, 1)]);
    let fired = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap();
    assert_eq!(
        fired,
        Fired::Skipped("A backup.example.com 198.51.100.7 already exists (record a1)".into())
    );
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    // One the lookup missed, refused by the api as identical, is not an error either.
    fake.reply("GET", RECORDS, vec![page(vec![], 1, 1)]);
    fake.reply("POST", RECORDS, vec![failure(400, 81058, "An identical record already exists.")]);
    let fired = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap();
    assert!(matches!(fired, Fired::Skipped(ref r) if r.contains("identical")), "{fired:?}");
}

#[tokio::test]
async fn an_mx_record_carries_its_priority_and_no_proxied_flag() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![page(vec![], 1, 1)]);
    fake.reply("POST", RECORDS, vec![ok(record("m1", "MX", "example.com", "mx2.example.com"))]);
    let mx = json!({
        "type": "cloudflare-rec-add", "zone_id": ZONE, "name": "example.com",
        "record_type": "MX", "content": "mx2.example.com", "priority": 20,
        "email": "ops@example.com", "api_key": "gk-1", "api_base_url": base(&fake),
    });
    reaction(mx).fire(&incident(Status::Failed)).await.unwrap();
    let create = fake.requests().pop().unwrap();
    let expected = json!({
        "type": "MX", "name": "example.com", "content": "mx2.example.com", "ttl": 1,
        "priority": 20,
    });
    assert_eq!(create.json(), expected);
    assert_eq!(create.header("x-auth-email"), Some("ops@example.com"));
    assert_eq!(create.header("x-auth-key"), Some("gk-1"));
}

#[tokio::test]
async fn api_failures_are_errors() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![page(vec![], 1, 1)]);
    fake.reply("POST", RECORDS, vec![failure(400, 9005, "Content for A record is invalid.")]);
    let error = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("HTTP 400 9005 Content for A record is invalid."),
        "{error}"
    );
    fake.reply("POST", RECORDS, vec![failure(503, 10000, "Service unavailable")]);
    let error = reaction(action(&base(&fake))).fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    let refused = reaction(action(&refused_base_url().await));
    let error = refused.fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(matches!(error, ReactionError::Transport { .. }), "{error}");
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let valid = action("https://api.cloudflare.com/client/v4");
    assert_shared_rejections(&valid);
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"record_type": "SRV"}), "record_type"),
        (json!({"content": "2001:db8::1"}), "content"),
        (json!({"record_type": "AAAA"}), "content"),
        (json!({"record_type": "CNAME", "content": "two words"}), "content"),
        (json!({"ttl": 0}), "ttl"),
        (json!({"ttl": 29}), "ttl"),
        (json!({"ttl": 86_401}), "ttl"),
        (json!({"record_type": "TXT", "content": "v=spf1 -all"}), "proxied"),
        (json!({"priority": 10}), "priority"),
        (json!({"record_type": "MX", "content": "mx.example.com", "proxied": false}), "priority"),
    ];
    for (change, field) in cases {
        let mut action = valid.clone();
        for (key, value) in change.as_object().unwrap() {
            action[key] = value.clone();
        }
        let error = parse(action.clone()).unwrap_err();
        assert_eq!(error.field, field, "{action}: {error}");
    }
}

#[test]
fn schema_effect_defaults_and_debug() {
    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "cloudflare-rec-add").unwrap();
    assert_eq!(info.effect, Effect::Idempotent);
    assert_eq!(info.secret_fields, ["api_token", "api_key"]);
    let properties = info.schema["properties"].as_object().unwrap();
    assert_eq!(properties.len(), 12, "{properties:?}");
    assert_eq!(properties["api_token"]["writeOnly"], json!(true));
    assert_eq!(properties["api_key"]["writeOnly"], json!(true));
    let required = json!(["zone_id", "name", "record_type", "content"]);
    assert_eq!(info.schema["required"], required);

    let minimal = json!({
        "type": "cloudflare-rec-add", "zone_id": ZONE, "name": "www.example.com",
        "record_type": "CNAME", "content": "origin.example.com", "api_token": "tok-secret-9",
    });
    let ReactionConfig::CloudflareRecAdd(config) = parse(minimal).unwrap() else { panic!() };
    assert_eq!((config.ttl, config.proxied), (1, false));
    let reaction = RecAddReaction::new(
        &config,
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap();
    assert_eq!(reaction.request_body()["proxied"], json!(false));
    assert_eq!((reaction.kind(), reaction.effect()), ("cloudflare-rec-add", Effect::Idempotent));
    assert!(!format!("{config:?}{reaction:?}").contains("tok-secret-9"));
}
