//! `cloudflare-dns-failover` against a fake of Cloudflare API v4: list
//! (<https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/list/>),
//! get, and edit (`PATCH`, <https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/edit/>).

use std::sync::Mutex;

use serde_json::{Value, json};

use super::*;
use crate::cloudflare::tests::{
    RECORDS, ZONE, assert_shared_rejections, base, failure, incident, ok, page, parse, record,
    record_path,
};
use crate::notes::MemoryNotes;
use crate::test_api::{FakeApi, Reply};
use crate::{ReactionConfig, reaction_types};

const KEY: &str = "cloudflare-dns-failover/01hreaction/01hmonitor";

fn action(fake: &FakeApi) -> Value {
    json!({
        "type": "cloudflare-dns-failover", "zone_id": ZONE, "failed_ip": "192.0.2.1",
        "standby_ip": "198.51.100.7", "api_token": "cf-token", "api_base_url": base(fake),
        "timeout_ms": 2000,
    })
}

fn config(action: Value) -> Config {
    match parse(action).unwrap() {
        ReactionConfig::CloudflareDnsFailover(config) => config,
        other => panic!("{other:?}"),
    }
}

fn reaction(config: &Config, notes: Arc<dyn Notes>) -> DnsFailoverReaction {
    let context = ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
        .unwrap()
        .with_notes(notes);
    DnsFailoverReaction::new(config, &context).unwrap()
}

async fn note(notes: &MemoryNotes) -> Option<Note> {
    notes.get(KEY).await.unwrap().map(|value| serde_json::from_value(value).unwrap())
}

fn patches(fake: &FakeApi) -> Vec<(String, Value)> {
    let requests = fake.requests().into_iter().filter(|r| r.method == "PATCH");
    requests.map(|r| (r.path.clone(), r.json())).collect()
}

/// Scripts a successful `PATCH` answer for each record id.
fn accept_patches(fake: &FakeApi, ids: &[&str]) {
    for id in ids {
        fake.reply("PATCH", &record_path(id), vec![ok(json!({"id": id}))]);
    }
}

fn failed_a_records() -> Vec<Reply> {
    vec![
        page(vec![record("a1", "A", "www.example.com", "192.0.2.1")], 1, 2),
        page(vec![record("a2", "A", "api.example.com", "192.0.2.1")], 2, 2),
    ]
}

/// Notes that log each write with how many `PATCH`es the fake had seen by then.
#[derive(Debug)]
struct OrderedNotes {
    inner: MemoryNotes,
    fake: FakeApi,
    log: Mutex<Vec<(&'static str, usize)>>,
}

#[async_trait::async_trait]
impl Notes for OrderedNotes {
    async fn get(&self, key: &str) -> Result<Option<Value>, ReactionError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &Value) -> Result<(), ReactionError> {
        self.log.lock().unwrap().push(("put", patches(&self.fake).len()));
        self.inner.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), ReactionError> {
        self.log.lock().unwrap().push(("delete", patches(&self.fake).len()));
        self.inner.delete(key).await
    }
}

/// Notes that cannot be written.
#[derive(Debug)]
struct BrokenNotes;

#[async_trait::async_trait]
impl Notes for BrokenNotes {
    async fn get(&self, _key: &str) -> Result<Option<Value>, ReactionError> {
        Ok(None)
    }
    async fn put(&self, _key: &str, _value: &Value) -> Result<(), ReactionError> {
        Err(ReactionError::Failed { kind: "store", message: "store is down".into() })
    }
    async fn delete(&self, _key: &str) -> Result<(), ReactionError> {
        Err(ReactionError::Failed { kind: "store", message: "store is down".into() })
    }
}

#[tokio::test]
async fn failover_switches_the_records_on_the_failed_ip_and_notes_them_first() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, failed_a_records());
    accept_patches(&fake, &["a1", "a2"]);
    let notes = Arc::new(OrderedNotes {
        inner: MemoryNotes::default(),
        fake: fake.clone(),
        log: Mutex::default(),
    });
    let reaction = reaction(&config(action(&fake)), notes.clone());
    let fired = reaction.fire(&incident(Status::Failed)).await.unwrap();
    assert_eq!(
        fired,
        Fired::Executed(
            "switched 2 A record(s) from 192.0.2.1 to 198.51.100.7: www.example.com, api.example.com"
                .into()
        )
    );
    let requests = fake.requests();
    assert_eq!(requests[0].query.as_deref(), Some("type=A&content=192.0.2.1&page=1&per_page=100"));
    assert_eq!(requests[1].query.as_deref(), Some("type=A&content=192.0.2.1&page=2&per_page=100"));
    let expected = vec![
        (record_path("a1"), json!({"content": "198.51.100.7"})),
        (record_path("a2"), json!({"content": "198.51.100.7"})),
    ];
    assert_eq!(patches(&fake), expected);
    for request in &requests {
        assert_eq!(request.header("authorization"), Some("Bearer cf-token"), "{}", request.path);
    }
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(patch.header("content-type"), Some("application/json"));
    // Written before the first PATCH, and again after the last.
    assert_eq!(*notes.log.lock().unwrap(), [("put", 0), ("put", 2)]);
    let stored: Note =
        serde_json::from_value(notes.inner.get(KEY).await.unwrap().unwrap()).unwrap();
    assert_eq!(stored.records.len(), 2);
    assert_eq!(
        stored.records[0],
        Switched {
            zone_id: ZONE.into(),
            id: "a1".into(),
            name: "www.example.com".into(),
            record_type: "A".into(),
            old_content: "192.0.2.1".into(),
            new_content: "198.51.100.7".into(),
            done: true,
        }
    );
}

#[tokio::test]
async fn a_failing_patch_leaves_a_note_of_what_may_have_changed() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, failed_a_records());
    accept_patches(&fake, &["a1", "a2"]);
    fake.reply("PATCH", &record_path("a2"), vec![failure(500, 10000, "Internal error")]);
    let notes = Arc::new(MemoryNotes::default());
    let reaction = reaction(&config(action(&fake)), notes.clone());
    let error = reaction.fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("10000 Internal error"), "{error}");
    let kept = note(&notes).await.unwrap();
    let states: Vec<_> = kept.records.iter().map(|r| (r.id.as_str(), r.done)).collect();
    assert_eq!(states, [("a1", true), ("a2", false)]);

    // The retry finds only a2 still on the failed address, and keeps a1 in the note.
    fake.reply(
        "GET",
        RECORDS,
        vec![page(vec![record("a2", "A", "api.example.com", "192.0.2.1")], 1, 1)],
    );
    fake.reply(
        "PATCH",
        &record_path("a2"),
        vec![ok(record("a2", "A", "api.example.com", "198.51.100.7"))],
    );
    reaction.fire(&incident(Status::Failed)).await.unwrap();
    let kept = note(&notes).await.unwrap();
    let states: Vec<_> = kept.records.iter().map(|r| (r.id.as_str(), r.done)).collect();
    assert_eq!(states, [("a1", true), ("a2", true)]);
}

#[tokio::test]
async fn nothing_is_changed_when_the_note_cannot_be_written() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, failed_a_records());
    accept_patches(&fake, &["a1", "a2"]);
    let reaction = reaction(&config(action(&fake)), Arc::new(BrokenNotes));
    let error = reaction.fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(error.to_string().contains("store is down"), "{error}");
    assert!(patches(&fake).is_empty());
}

#[tokio::test]
async fn recovery_restores_exactly_the_switched_records_and_leaves_others_alone() {
    let fake = FakeApi::start().await;
    let three = vec![
        record("a1", "A", "www.example.com", "192.0.2.1"),
        record("a2", "A", "api.example.com", "192.0.2.1"),
        record("a3", "A", "shop.example.com", "192.0.2.1"),
        record("a4", "A", "old.example.com", "192.0.2.1"),
    ];
    fake.reply("GET", RECORDS, vec![page(three, 1, 1)]);
    accept_patches(&fake, &["a1", "a2", "a3", "a4"]);
    let notes = Arc::new(MemoryNotes::default());
    let reaction = reaction(&config(action(&fake)), notes.clone());
    reaction.fire(&incident(Status::Failed)).await.unwrap();
    // A repeat failover finds nothing left on the failed address.
    fake.reply("GET", RECORDS, vec![page(vec![], 1, 1)]);
    let again = reaction.fire(&incident(Status::Failed)).await.unwrap();
    let Fired::Skipped(reason) = again else { panic!("{again:?}") };
    assert!(reason.contains("4 switched earlier are remembered"), "{reason}");

    // Meanwhile someone moved shop to a third address, and deleted old.
    fake.reply(
        "GET",
        &record_path("a1"),
        vec![ok(record("a1", "A", "www.example.com", "198.51.100.7"))],
    );
    fake.reply(
        "GET",
        &record_path("a2"),
        vec![ok(record("a2", "A", "api.example.com", "198.51.100.7"))],
    );
    fake.reply(
        "GET",
        &record_path("a3"),
        vec![ok(record("a3", "A", "shop.example.com", "203.0.113.9"))],
    );
    fake.reply("GET", &record_path("a4"), vec![failure(404, 81044, "Record does not exist.")]);
    let before = fake.requests().len();
    let fired = reaction.fire(&incident(Status::Healthy)).await.unwrap();
    let Fired::Executed(detail) = fired else { panic!("{fired:?}") };
    assert!(detail.contains("restored 2: A www.example.com to 192.0.2.1"), "{detail}");
    assert!(
        detail
            .contains("left alone, changed by someone else: A shop.example.com (now 203.0.113.9)"),
        "{detail}"
    );
    assert!(detail.contains("no longer exist: A old.example.com"), "{detail}");
    let restores: Vec<_> = fake.requests()[before..]
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.path.clone(), r.json()))
        .collect();
    let expected = vec![
        (record_path("a1"), json!({"content": "192.0.2.1"})),
        (record_path("a2"), json!({"content": "192.0.2.1"})),
    ];
    assert_eq!(restores, expected);
    assert_eq!(note(&notes).await, None, "the note is deleted once failback is done");

    // A repeat recovery has nothing left to restore.
    let again = reaction.fire(&incident(Status::Healthy)).await.unwrap();
    assert!(
        matches!(again, Fired::Skipped(ref r) if r.contains("nothing to restore")),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_failing_restore_keeps_the_records_not_yet_restored() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, failed_a_records());
    accept_patches(&fake, &["a1", "a2"]);
    let notes = Arc::new(MemoryNotes::default());
    let reaction = reaction(&config(action(&fake)), notes.clone());
    reaction.fire(&incident(Status::Failed)).await.unwrap();
    fake.reply(
        "GET",
        &record_path("a1"),
        vec![ok(record("a1", "A", "www.example.com", "198.51.100.7"))],
    );
    fake.reply("GET", &record_path("a2"), vec![failure(429, 971, "Please wait")]);
    let error = reaction.fire(&incident(Status::Healthy)).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    let left: Vec<_> = note(&notes).await.unwrap().records.into_iter().map(|r| r.id).collect();
    assert_eq!(left, ["a2"]);
}

#[tokio::test]
async fn manual_failback_leaves_the_records_on_the_standby() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, failed_a_records());
    accept_patches(&fake, &["a1", "a2"]);
    let notes = Arc::new(MemoryNotes::default());
    let mut manual = action(&fake);
    manual["failback"] = json!("manual");
    let reaction = reaction(&config(manual), notes.clone());
    reaction.fire(&incident(Status::Failed)).await.unwrap();
    let before = fake.requests().len();
    let fired = reaction.fire(&incident(Status::Healthy)).await.unwrap();
    assert!(
        matches!(fired, Fired::Skipped(ref r) if r.starts_with("failback is manual")),
        "{fired:?}"
    );
    assert_eq!(fake.requests().len(), before, "no call on a manual failback");
    assert!(note(&notes).await.is_some());
}

#[tokio::test]
async fn only_the_named_records_switch_and_ipv6_uses_aaaa() {
    let fake = FakeApi::start().await;
    let listed = vec![
        record("b1", "AAAA", "www.example.com", "2001:db8::1"),
        record("b2", "AAAA", "mail.example.com", "2001:db8::1"),
        record("b3", "AAAA", "WWW.example.com", "2001:db8::2"),
    ];
    fake.reply("GET", RECORDS, vec![page(listed, 1, 1)]);
    accept_patches(&fake, &["b1", "b2", "b3"]);
    let mut v6 = action(&fake);
    v6["failed_ip"] = json!("2001:DB8:0::1");
    v6["standby_ip"] = json!("2001:db8::99");
    v6["names"] = json!(["WWW.Example.com."]);
    let reaction = reaction(&config(v6), Arc::new(MemoryNotes::default()));
    reaction.fire(&incident(Status::Failed)).await.unwrap();
    let query = fake.requests()[0].query.clone();
    assert_eq!(query.as_deref(), Some("type=AAAA&content=2001%3Adb8%3A%3A1&page=1&per_page=100"));
    // b2 has another name; b3 holds another address (a lax API listed it anyway).
    assert_eq!(patches(&fake), [(record_path("b1"), json!({"content": "2001:db8::99"}))]);
}

#[tokio::test]
async fn no_record_on_the_failed_ip_and_an_unknown_status_are_skipped() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![page(vec![], 1, 1)]);
    let notes = Arc::new(MemoryNotes::default());
    let reaction = reaction(&config(action(&fake)), notes.clone());
    let fired = reaction.fire(&incident(Status::Failed)).await.unwrap();
    let reason = format!("no A record in zone {ZONE} holds 192.0.2.1");
    assert_eq!(fired, Fired::Skipped(reason));
    assert_eq!(note(&notes).await, None);
    let before = fake.requests().len();
    let fired = reaction.fire(&incident(Status::Unknown)).await.unwrap();
    assert!(matches!(fired, Fired::Skipped(_)));
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn a_failed_listing_is_an_error_and_changes_nothing() {
    let fake = FakeApi::start().await;
    fake.reply("GET", RECORDS, vec![failure(403, 10000, "Authentication error")]);
    let notes = Arc::new(MemoryNotes::default());
    let reaction = reaction(&config(action(&fake)), notes.clone());
    let error = reaction.fire(&incident(Status::Failed)).await.unwrap_err();
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        "cloudflare-dns-failover: target answered HTTP 403 10000 Authentication error"
    );
    assert_eq!(note(&notes).await, None);
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let valid = json!({
        "type": "cloudflare-dns-failover", "zone_id": ZONE, "failed_ip": "192.0.2.1",
        "standby_ip": "198.51.100.7", "api_token": "cf-token",
    });
    assert!(parse(valid.clone()).is_ok());
    assert_shared_rejections(&valid);
    let cases = [
        (json!({"failed_ip": "192.0.2"}), "failed_ip"),
        (json!({"standby_ip": "backup.example.com"}), "standby_ip"),
        (json!({"standby_ip": "2001:db8::1"}), "standby_ip"),
        (json!({"standby_ip": "192.0.2.1"}), "standby_ip"),
        (json!({"names": ["www example"]}), "names[0]"),
        (json!({"names": ["ok.example.com", ""]}), "names[1]"),
        (json!({"failback": "sometimes"}), "failback"),
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
    let info = types.iter().find(|t| t.name == "cloudflare-dns-failover").unwrap();
    assert_eq!(info.effect, Effect::Idempotent);
    assert_eq!(info.secret_fields, ["api_token", "api_key"]);
    let properties = info.schema["properties"].as_object().unwrap();
    for field in [
        "zone_id",
        "failed_ip",
        "standby_ip",
        "names",
        "failback",
        "api_token",
        "email",
        "api_key",
        "api_base_url",
        "timeout_ms",
    ] {
        assert!(properties[field]["description"].is_string(), "{field}");
    }
    assert_eq!(properties.len(), 10);
    assert_eq!(properties["api_token"]["writeOnly"], json!(true));
    assert_eq!(properties["api_key"]["writeOnly"], json!(true));
    assert_eq!(info.schema["required"], json!(["zone_id", "failed_ip", "standby_ip"]));

    let config = config(json!({
        "type": "cloudflare-dns-failover", "zone_id": ZONE, "failed_ip": "192.0.2.1",
        "standby_ip": "198.51.100.7", "email": "ops@example.com", "api_key": "gk-secret-1",
    }));
    assert_eq!(config.failback, Failback::Automatic);
    assert_eq!(config.api_base_url, "https://api.cloudflare.com/client/v4");
    assert_eq!(config.timeout_ms, 10_000);
    let reaction = reaction(&config, Arc::new(MemoryNotes::default()));
    assert_eq!(
        (reaction.kind(), reaction.effect()),
        ("cloudflare-dns-failover", Effect::Idempotent)
    );
    assert!(!format!("{config:?}").contains("gk-secret-1"));
    assert!(!format!("{reaction:?}").contains("gk-secret-1"));
}
