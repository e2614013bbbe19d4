use serde_json::json;

use super::{KeyCheck, SealedStore, SecretFields};
use crate::model::{Monitor, PluginSpec, Reaction};
use crate::seal::SealKey;
use crate::store::Store;
use crate::store::conformance::{self, sample_monitor, sample_reaction};
use crate::store::embedded::EmbeddedStore;

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";
const CANARY: &str = "canary-7f3c2a9e";

/// Test registry: the conformance samples' `host` and `url` count as secret, so the whole
/// conformance suite runs through sealing; `mysql.password` and `http-webhook.headers` too.
fn check_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "tcp-check" => &["host"],
        "mysql" => &["password"],
        _ => &[],
    }
}

fn action_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "http-webhook" => &["url", "headers"],
        _ => &[],
    }
}

const FIELDS: SecretFields = SecretFields { check: check_fields, action: action_fields };

fn spec(value: serde_json::Value) -> PluginSpec {
    match value {
        serde_json::Value::Object(map) => PluginSpec(map),
        _ => PluginSpec(serde_json::Map::new()),
    }
}

fn open(dir: &tempfile::TempDir, key: &str) -> SealedStore<EmbeddedStore> {
    let path = dir.path().join("store.redb");
    let store = EmbeddedStore::open(&path, conformance::HISTORY_MAX_EVENTS).expect("open store");
    SealedStore::new(store, SealKey::from_base64(key).expect("key"), FIELDS)
}

fn secret_monitor() -> Monitor {
    let mut monitor = sample_monitor("secret");
    monitor.check = spec(json!({"type": "mysql", "host": "db", "password": CANARY}));
    monitor
}

fn secret_reaction() -> Reaction {
    let mut reaction = sample_reaction("secret");
    reaction.action = spec(json!({
        "type": "http-webhook", "url": "http://127.0.0.1:9/", "headers": {"Authorization": CANARY}
    }));
    reaction
}

#[tokio::test]
async fn the_sealed_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&open(&dir, KEY_A)).await;
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_open_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, KEY_A);
    let monitor = secret_monitor();
    let reaction = secret_reaction();
    store.put_monitor(&monitor).await.unwrap();
    store.put_reaction(&reaction).await.unwrap();
    assert_eq!(store.get_monitor(&monitor.id).await.unwrap(), Some(monitor.clone()));
    assert_eq!(store.get_reaction(&reaction.id).await.unwrap(), Some(reaction.clone()));
    assert_eq!(store.list_monitors(None, 10).await.unwrap(), vec![monitor.clone()]);
    assert_eq!(store.list_reactions(None, 10).await.unwrap(), vec![reaction.clone()]);

    let raw = store.inner().get_monitor(&monitor.id).await.unwrap().unwrap();
    let password = raw.check.0["password"].as_str().unwrap();
    assert!(password.starts_with("sealed:v1:"), "{password}");
    assert_eq!(raw.check.0["host"], "db", "fields that are not secret stay readable");
    let raw = store.inner().get_reaction(&reaction.id).await.unwrap().unwrap();
    assert!(raw.action.0["headers"].as_str().unwrap().starts_with("sealed:v1:"));
    drop(store);
    let bytes = std::fs::read(dir.path().join("store.redb")).unwrap();
    let found = bytes.windows(CANARY.len()).any(|window| window == CANARY.as_bytes());
    assert!(!found, "the canary is in the store file in plain text");
}

#[tokio::test]
async fn a_sealed_value_moved_to_another_record_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, KEY_A);
    let monitor = secret_monitor();
    store.put_monitor(&monitor).await.unwrap();
    let raw = store.inner().get_monitor(&monitor.id).await.unwrap().unwrap();
    let mut thief = sample_monitor("thief");
    thief.check = raw.check.clone();
    store.inner().put_monitor(&thief).await.unwrap();
    let error = store.get_monitor(&thief.id).await.unwrap_err().to_string();
    assert!(error.contains(thief.id.as_str()) && error.contains("check.password"), "{error}");
    assert!(!error.contains(CANARY), "{error}");
    assert!(store.list_monitors(None, 10).await.is_err(), "a list does not skip it silently");
}

#[tokio::test]
async fn plaintext_from_before_sealing_is_read_and_resealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, KEY_A);
    let monitor = secret_monitor();
    let reaction = secret_reaction();
    store.inner().put_monitor(&monitor).await.unwrap();
    store.inner().put_reaction(&reaction).await.unwrap();
    store.inner().put_monitor(&sample_monitor("no-secret-fields")).await.unwrap();
    assert_eq!(store.get_monitor(&monitor.id).await.unwrap(), Some(monitor.clone()));
    // Two definitions hold plaintext secrets (the sample has a `host` too: three).
    assert_eq!(store.reseal(1).await.unwrap(), 3);
    assert_eq!(store.reseal(1).await.unwrap(), 0, "nothing left to seal");
    let raw = store.inner().get_monitor(&monitor.id).await.unwrap().unwrap();
    assert!(raw.check.0["password"].as_str().unwrap().starts_with("sealed:v1:"));
    let raw = store.inner().get_reaction(&reaction.id).await.unwrap().unwrap();
    assert!(raw.action.0["headers"].as_str().unwrap().starts_with("sealed:v1:"));
    assert_eq!(store.get_monitor(&monitor.id).await.unwrap(), Some(monitor));
    assert_eq!(store.get_reaction(&reaction.id).await.unwrap(), Some(reaction));
}

#[tokio::test]
async fn a_wrong_key_is_told_at_the_key_check_and_never_opens_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = secret_monitor();
    {
        let store = open(&dir, KEY_A);
        assert_eq!(store.check_key().await.unwrap(), KeyCheck::Recorded);
        assert_eq!(store.check_key().await.unwrap(), KeyCheck::Matches);
        store.put_monitor(&monitor).await.unwrap();
    }
    let store = open(&dir, KEY_B);
    let error = store.check_key().await.unwrap_err().to_string();
    assert!(error.contains("secrets:key-check") && error.contains("does not open"), "{error}");
    let error = store.get_monitor(&monitor.id).await.unwrap_err().to_string();
    assert!(error.contains("does not open"), "{error}");
}

/// Returns whether the raw store file holds `needle`.
fn file_holds(dir: &tempfile::TempDir, needle: &str) -> bool {
    let bytes = std::fs::read(dir.path().join("store.redb")).unwrap();
    bytes.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn webhook_keys_are_sealed_at_rest_and_open_on_every_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, KEY_A);
    let mut monitor = sample_monitor("hooked");
    monitor.webhook_key = CANARY.to_owned();
    store.put_monitor(&monitor).await.unwrap();
    let mut batch = sample_monitor("batched");
    batch.webhook_key = format!("{CANARY}-batch");
    store.put_monitors(std::slice::from_ref(&batch)).await.unwrap();
    assert_eq!(store.get_monitor(&monitor.id).await.unwrap(), Some(monitor.clone()));
    let mut listed = store.list_monitors(None, 10).await.unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![batch.clone(), monitor.clone()]);
    for id in [&monitor.id, &batch.id] {
        let raw = store.inner().get_monitor(id).await.unwrap().unwrap();
        assert!(raw.webhook_key.starts_with("sealed:v1:"), "{}", raw.webhook_key);
    }
    drop(store);
    assert!(!file_holds(&dir, CANARY), "a webhook key is in the store file in plain text");
}

#[tokio::test]
async fn a_webhook_key_moved_to_another_monitor_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, KEY_A);
    let mut monitor = sample_monitor("owner");
    monitor.webhook_key = CANARY.to_owned();
    store.put_monitor(&monitor).await.unwrap();
    let raw = store.inner().get_monitor(&monitor.id).await.unwrap().unwrap();
    let mut thief = sample_monitor("thief");
    thief.webhook_key = raw.webhook_key;
    store.inner().put_monitor(&thief).await.unwrap();
    let error = store.get_monitor(&thief.id).await.unwrap_err().to_string();
    assert!(error.contains(thief.id.as_str()) && error.contains("webhook key"), "{error}");
    assert!(error.contains("does not open") && !error.contains(CANARY), "{error}");
}

#[tokio::test]
async fn a_plain_webhook_key_from_before_sealing_reads_and_is_resealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, KEY_A);
    let mut monitor = sample_monitor("legacy");
    monitor.check = spec(json!({"type": "ping", "host": "192.0.2.1"}));
    monitor.webhook_key = CANARY.to_owned();
    store.inner().put_monitor(&monitor).await.unwrap();
    assert_eq!(store.get_monitor(&monitor.id).await.unwrap(), Some(monitor.clone()));
    assert_eq!(store.reseal(10).await.unwrap(), 1, "only the webhook key was plain");
    assert_eq!(store.reseal(10).await.unwrap(), 0);
    let raw = store.inner().get_monitor(&monitor.id).await.unwrap().unwrap();
    assert!(raw.webhook_key.starts_with("sealed:v1:"), "{}", raw.webhook_key);
    assert_eq!(store.get_monitor(&monitor.id).await.unwrap(), Some(monitor));
}

#[tokio::test]
async fn notes_are_sealed_whole_and_legacy_plain_notes_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, KEY_A);
    let note = json!({"changed": [{"id": "rec-1", "content": CANARY}], "zone": "z"});
    store.put_note("cloudflare-dns-failover/r/m", &note).await.unwrap();
    assert_eq!(store.get_note("cloudflare-dns-failover/r/m").await.unwrap(), Some(note.clone()));
    let raw = store.inner().get_note("cloudflare-dns-failover/r/m").await.unwrap().unwrap();
    assert!(raw.as_str().is_some_and(|text| text.starts_with("sealed:v1:")), "{raw}");

    let legacy = json!({"changed": ["rec-2"]});
    store.inner().put_note("legacy", &legacy).await.unwrap();
    assert_eq!(store.get_note("legacy").await.unwrap(), Some(legacy));
    assert_eq!(store.get_note("missing").await.unwrap(), None);

    // A sealed note copied under another key does not open there.
    store.inner().put_note("copied", &raw).await.unwrap();
    let error = store.get_note("copied").await.unwrap_err().to_string();
    assert!(error.contains("copied") && error.contains("does not open"), "{error}");

    // The key-check note stays as the key check wrote it, readable before the key is trusted.
    assert_eq!(store.check_key().await.unwrap(), KeyCheck::Recorded);
    let check = store.inner().get_note(super::KEY_CHECK_NOTE).await.unwrap().unwrap();
    assert_eq!(store.get_note(super::KEY_CHECK_NOTE).await.unwrap(), Some(check));
    assert_eq!(store.check_key().await.unwrap(), KeyCheck::Matches);
    drop(store);
    assert!(!file_holds(&dir, CANARY), "a note is in the store file in plain text");
}
