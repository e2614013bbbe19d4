//! Issue 7: webhook keys are sealed at rest. A key never sits in the store in plain text
//! (after create, after rotation, and after the first start of a node whose store was
//! written before keys were sealed), while intake with the key, shown once on create and on
//! rotation, keeps working.

use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_engine::{MonitorId, Store};
use serde_json::{Value, json};

use crate::common::{Node, id_of};

/// The key at the end of a `webhook_url`.
fn key_of(monitor: &Value) -> String {
    let url = monitor["webhook_url"].as_str().unwrap_or_else(|| panic!("no url: {monitor}"));
    url.rsplit_once('/').expect("a key in the url").1.to_owned()
}

/// Posts a generic `failed` result with `key`; returns the status code.
async fn deliver(node: &Node, id: &str, key: &str) -> u16 {
    let url = node.api_url(&format!("/webhooks/{id}/{key}"));
    let response = node.http().post(url).json(&json!({"action": "failed"})).send().await;
    response.expect("intake answers").status().as_u16()
}

/// Returns whether the raw store file holds `text`.
fn store_file_holds(node: &Node, text: &str) -> bool {
    let bytes = std::fs::read(node.data_dir().join("cloudroutes.redb")).expect("the store file");
    bytes.windows(text.len()).any(|window| window == text.as_bytes())
}

/// Opens the stopped node's store without its key: what the file holds, as it holds it.
fn raw_store(node: &Node) -> EmbeddedStore {
    EmbeddedStore::open(&node.data_dir().join("cloudroutes.redb"), 1_000).expect("open the store")
}

#[tokio::test]
async fn webhook_keys_are_sealed_at_rest_and_intake_still_works() {
    let mut node = Node::start().await;
    let monitor = node.create_monitor(json!({"name": "hook", "check": {"type": "webhook"}})).await;
    let (id, created) = (id_of(&monitor), key_of(&monitor));
    assert_eq!(deliver(&node, &id, &created).await, 200);
    assert!(!store_file_holds(&node, &created), "the created key is in the store file");

    let (status, rotated) = node.post_empty(&format!("/monitors/{id}/rotate-key")).await;
    assert_eq!(status, 200, "{rotated}");
    let rotated = key_of(&rotated);
    assert_eq!(deliver(&node, &id, &created).await, 404, "the old key stops working");
    assert_eq!(deliver(&node, &id, &rotated).await, 200);
    assert_eq!(key_of(&node.monitor(&id).await), rotated, "reads open the sealed key");
    assert!(!store_file_holds(&node, &rotated), "the rotated key is in the store file");

    node.stop().await;
    let raw = raw_store(&node).get_monitor(&MonitorId::from(id.clone())).await.unwrap().unwrap();
    assert!(raw.webhook_key.starts_with("sealed:v1:"), "{}", raw.webhook_key);
}

#[tokio::test]
async fn a_plain_webhook_key_from_an_older_store_is_sealed_on_first_start() {
    let mut node = Node::start().await;
    let monitor = node.create_monitor(json!({"name": "hook", "check": {"type": "webhook"}})).await;
    let id = MonitorId::from(id_of(&monitor));
    node.stop().await;
    // What an older version wrote: the same monitor with its key in plain text.
    let legacy = format!("legacy-key-{}", std::process::id());
    {
        let store = raw_store(&node);
        let mut plain = store.get_monitor(&id).await.unwrap().expect("the monitor");
        plain.webhook_key = legacy.clone();
        store.put_monitor(&plain).await.unwrap();
    }
    node.start_again().await;
    assert_eq!(key_of(&node.monitor(&id.0).await), legacy, "the plain key still reads");
    assert_eq!(deliver(&node, &id.0, &legacy).await, 200, "and still authenticates");
    node.stop().await;
    let raw = raw_store(&node).get_monitor(&id).await.unwrap().unwrap();
    assert!(raw.webhook_key.starts_with("sealed:v1:"), "not resealed: {}", raw.webhook_key);
    node.start_again().await;
    assert_eq!(deliver(&node, &id.0, &legacy).await, 200, "the resealed key authenticates");
}
