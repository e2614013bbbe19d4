use std::path::Path;

use redb::{Database, TableDefinition};

use super::{EVENTS, EmbeddedStore, MONITORS, STATES};
use crate::error::StoreError;
use crate::model::MonitorId;
use crate::store::Store;
use crate::store::conformance::{self, HISTORY_MAX_EVENTS, sample_event, sample_monitor};

fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(&dir.join("cloudroutes.redb"), HISTORY_MAX_EVENTS).unwrap()
}

/// Writes `bytes` under `key` in `table`, bypassing the store's encoding.
fn write_raw<K: redb::Key + 'static>(
    path: &Path,
    table: TableDefinition<K, &[u8]>,
    key: K::SelfType<'_>,
    bytes: &[u8],
) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(table).unwrap().insert(key, bytes).unwrap();
    txn.commit().unwrap();
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&open(dir.path())).await;
}

#[tokio::test]
async fn passes_the_conformance_suite_twice_on_one_file() {
    // The suite must tolerate a store that already holds data (a shared Redis, say).
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bystander = sample_monitor("bystander");
    store.put_monitor(&bystander).await.unwrap();
    conformance::run_all(&store).await;
    conformance::run_all(&store).await;
    assert_eq!(store.list_monitors(None, 100).await.unwrap(), vec![bystander]);
}

#[tokio::test]
async fn open_creates_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/cloudroutes.redb");
    let store = EmbeddedStore::open(&path, 10).unwrap();
    assert_eq!(store.path(), path);
    assert!(path.is_file());
}

#[tokio::test]
async fn open_reports_the_path_when_the_file_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let error = EmbeddedStore::open(&dir.path().join("cloudroutes.redb"), 10).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("cloudroutes.redb"), "{error}");
}

#[tokio::test]
async fn everything_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let monitor = sample_monitor("durable");
    let reaction = conformance::sample_reaction("durable");
    let state = conformance::sample_state(4);
    let events = [sample_event(&monitor.id, 1), sample_event(&monitor.id, 2)];
    store.put_monitor(&monitor).await.unwrap();
    store.put_reaction(&reaction).await.unwrap();
    store.record(&monitor.id, &state, &events).await.unwrap();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.get_monitor(&monitor.id).await.unwrap(), Some(monitor.clone()));
    assert_eq!(store.get_reaction(&reaction.id).await.unwrap(), Some(reaction));
    assert_eq!(store.get_state(&monitor.id).await.unwrap(), Some(state.clone()));
    assert_eq!(store.load_states().await.unwrap(), vec![(monitor.id.clone(), state)]);
    let listed = store.list_events(&monitor.id, None, 10).await.unwrap();
    assert_eq!(listed, vec![events[1].clone(), events[0].clone()]);
}

#[tokio::test]
async fn retention_count_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = sample_monitor("retained");
    let events: Vec<_> = (0..8).map(|streak| sample_event(&monitor.id, streak)).collect();
    let store = open(dir.path());
    store.put_monitor(&monitor).await.unwrap();
    store.append_events(&events[..4]).await.unwrap();
    drop(store);
    let store = open(dir.path());
    store.append_events(&events[4..]).await.unwrap();
    let kept = store.list_events(&monitor.id, None, 100).await.unwrap();
    let expected: Vec<_> = events.iter().rev().take(HISTORY_MAX_EVENTS).cloned().collect();
    assert_eq!(kept, expected);
}

#[tokio::test]
async fn lowering_the_history_limit_trims_on_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloudroutes.redb");
    let monitor = sample_monitor("lowered");
    let events: Vec<_> = (0..6).map(|streak| sample_event(&monitor.id, streak)).collect();
    let store = EmbeddedStore::open(&path, 100).unwrap();
    store.put_monitor(&monitor).await.unwrap();
    store.append_events(&events[..5]).await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(&path, 2).unwrap();
    store.append_events(&events[5..]).await.unwrap();
    let kept = store.list_events(&monitor.id, None, 100).await.unwrap();
    assert_eq!(kept, vec![events[5].clone(), events[4].clone()]);
}

#[tokio::test]
async fn garbage_records_read_as_corrupt_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloudroutes.redb");
    let monitor = sample_monitor("corrupt");
    let event = sample_event(&monitor.id, 1);
    let store = open(dir.path());
    store.put_monitor(&monitor).await.unwrap();
    store.append_events(std::slice::from_ref(&event)).await.unwrap();
    drop(store);

    let id = monitor.id.as_str();
    write_raw(&path, MONITORS, id, b"\x01{not json");
    write_raw(&path, STATES, id, b"\x09{}");
    write_raw(&path, STATES, "empty", b"");
    write_raw(&path, EVENTS, (id, event.id.as_str()), b"garbage");

    let store = open(dir.path());
    let corrupt = |error: StoreError, what: &str, key: &str| match &error {
        StoreError::Corrupt { what: got, key: got_key, .. } => {
            assert_eq!((*got, got_key.as_str()), (what, key), "{error}");
            assert!(error.to_string().contains(key), "{error}");
        }
        other => panic!("expected a corrupt error, got {other:?}"),
    };
    corrupt(store.get_monitor(&monitor.id).await.unwrap_err(), "monitor", id);
    corrupt(store.list_monitors(None, 10).await.unwrap_err(), "monitor", id);
    let error = store.get_state(&monitor.id).await.unwrap_err();
    assert!(error.to_string().contains("unknown record version 9"), "{error}");
    corrupt(error, "state", id);
    let empty = MonitorId::from("empty");
    corrupt(store.get_state(&empty).await.unwrap_err(), "state", "empty");
    assert!(store.load_states().await.is_err(), "load_states reports a corrupt state");
    let key = format!("{id}/{}", event.id);
    corrupt(store.list_events(&monitor.id, None, 10).await.unwrap_err(), "event", &key);
    conformance::a_corrupt_monitor_does_not_poison_the_rest(&store, &monitor.id).await;
}

#[tokio::test]
async fn records_start_with_the_version_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloudroutes.redb");
    let monitor = sample_monitor("versioned");
    let store = open(dir.path());
    store.put_monitor(&monitor).await.unwrap();
    drop(store);
    let db = Database::create(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(MONITORS).unwrap();
    let bytes = table.get(monitor.id.as_str()).unwrap().unwrap().value().to_vec();
    assert_eq!(bytes[0], super::RECORD_VERSION);
    let decoded: crate::model::Monitor = serde_json::from_slice(&bytes[1..]).unwrap();
    assert_eq!(decoded, monitor);
}
