//! The Store side: conformance, records, pipelining, script reloading, bad records.

use std::time::Duration;

use ::redis::AsyncCommands;

use super::test_server::{PARTITIONS, RedisServer, all_partitions, hold};
use super::{RECORD_VERSION, STATE_RECORD_VERSION, keys};
use crate::error::StoreError;
use crate::model::{Monitor, MonitorId};
use crate::partition::partition_of;
use crate::store::conformance::{self, sample_event, sample_monitor, sample_state};
use crate::store::{Store, Transition};

const LEASE_TTL: Duration = Duration::from_secs(60);

/// Returns a fresh monitor that falls in `partition`.
pub(super) fn monitor_in(partition: u32) -> Monitor {
    loop {
        let monitor = sample_monitor("placed");
        if partition_of(&monitor.id, PARTITIONS) == partition {
            return monitor;
        }
    }
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LEASE_TTL).await;
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn passes_the_conformance_suite_twice_on_one_redis_with_a_bystander() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LEASE_TTL).await;
    let bystander = sample_monitor("bystander");
    store.put_monitor(&bystander).await.unwrap();
    conformance::run_all(&store).await;
    conformance::run_all(&store).await;
    assert_eq!(store.list_monitors(None, 100).await.unwrap(), vec![bystander]);
    assert_eq!(store.list_reactions(None, 100).await.unwrap(), vec![]);
}

#[tokio::test]
async fn record_many_sends_every_partition_in_one_round_trip() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LEASE_TTL).await;
    let monitors: Vec<Monitor> = (0..3).map(monitor_in).collect();
    store.put_monitors(&monitors).await.unwrap();
    let transitions: Vec<Transition> = monitors
        .iter()
        .map(|m| Transition::new(m.id.clone(), sample_state(1), vec![sample_event(&m.id, 1)]))
        .collect();
    let before = store.stats();
    let recorded = store.record_many(&transitions).await.unwrap();
    let after = store.stats();
    assert!(recorded.is_clean(), "{recorded:?}");
    assert_eq!(after.round_trips - before.round_trips, 1, "one pipeline");
    assert_eq!(after.commands - before.commands, 3, "one script per partition");
    for monitor in &monitors {
        assert_eq!(store.get_state(&monitor.id).await.unwrap(), Some(sample_state(1)));
    }
}

#[tokio::test]
async fn scripts_are_reloaded_after_the_server_forgets_them() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LEASE_TTL).await;
    let monitor = monitor_in(1);
    store.put_monitor(&monitor).await.unwrap();
    store.put_states(&[(monitor.id.clone(), sample_state(1))]).await.unwrap();
    // As after a restart: the script cache is empty, EVALSHA answers NOSCRIPT.
    let mut raw = server.raw().await;
    let _: () = ::redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
    let event = sample_event(&monitor.id, 2);
    let transition = Transition::new(monitor.id.clone(), sample_state(2), vec![event.clone()]);
    let before = store.stats();
    let recorded = store.record_many(&[transition]).await.unwrap();
    assert!(recorded.is_clean(), "{recorded:?}");
    let after = store.stats();
    assert_eq!(after.round_trips - before.round_trips, 2, "refused, then loaded and resent");
    assert_eq!(after.commands - before.commands, 3, "EVALSHA, SCRIPT LOAD, EVALSHA");
    assert_eq!(store.get_state(&monitor.id).await.unwrap(), Some(sample_state(2)));
    assert_eq!(store.list_events(&monitor.id, None, 10).await.unwrap(), vec![event]);
    let _: () = ::redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
    assert_eq!(store.list_monitors(None, 10).await.unwrap(), vec![monitor]);
}

#[tokio::test]
async fn transitions_of_unknown_monitors_are_dropped_not_fenced() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LEASE_TTL).await;
    let unknown = MonitorId::generate();
    let transition = Transition::new(unknown.clone(), sample_state(1), vec![]);
    let recorded = store.record_many(&[transition]).await.unwrap();
    assert!(recorded.is_clean(), "{recorded:?}");
    assert_eq!(store.get_state(&unknown).await.unwrap(), None);
}

#[tokio::test]
async fn records_start_with_the_version_byte_and_live_under_the_documented_keys() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LEASE_TTL).await;
    let monitor = monitor_in(5);
    store.put_monitor(&monitor).await.unwrap();
    store.record(&monitor.id, &sample_state(3), &[sample_event(&monitor.id, 1)]).await.unwrap();
    let mut raw = server.raw().await;
    let id = monitor.id.as_str();
    let bytes: Vec<u8> = raw.hget("cr:{defs}:monitors", id).await.unwrap();
    assert_eq!(bytes[0], RECORD_VERSION);
    let decoded: Monitor = serde_json::from_slice(&bytes[1..]).unwrap();
    assert_eq!(decoded, monitor);
    let in_partition: bool = raw.sismember("cr:{p5}:ids", id).await.unwrap();
    assert!(in_partition, "the partition knows the monitor");
    let state: Vec<u8> = raw.hget("cr:{p5}:state", id).await.unwrap();
    assert_eq!(state[0], STATE_RECORD_VERSION);
    let events: usize = raw.llen(format!("cr:{{p5}}:ev:{id}")).await.unwrap();
    assert_eq!(events, 1);
    let count: u32 = raw.get(keys::PARTITION_COUNT).await.unwrap();
    assert_eq!(count, PARTITIONS);
}

#[tokio::test]
async fn garbage_records_read_as_corrupt_errors_naming_the_key() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LEASE_TTL).await;
    let monitor = monitor_in(2);
    store.put_monitor(&monitor).await.unwrap();
    store.append_events(&[sample_event(&monitor.id, 1)]).await.unwrap();
    let id = monitor.id.as_str();
    let mut raw = server.raw().await;
    let _: () = raw.hset("cr:{defs}:monitors", id, b"\x01{not json").await.unwrap();
    let _: () = raw.hset("cr:{p2}:state", id, b"\x09{}").await.unwrap();
    let _: () = raw.lpush(format!("cr:{{p2}}:ev:{id}"), b"garbage").await.unwrap();

    let corrupt = |error: StoreError, what: &str, key: &str| match &error {
        StoreError::Corrupt { what: got, key: got_key, .. } => {
            assert_eq!(*got, what, "{error}");
            assert!(got_key.contains(key), "{error}");
        }
        other => panic!("expected a corrupt error, got {other:?}"),
    };
    corrupt(store.get_monitor(&monitor.id).await.unwrap_err(), "monitor", id);
    corrupt(store.list_monitors(None, 10).await.unwrap_err(), "monitor", id);
    let error = store.get_state(&monitor.id).await.unwrap_err();
    assert!(error.to_string().contains("unknown record version 9"), "{error}");
    corrupt(error, "state", id);
    assert!(store.load_states().await.is_err(), "load_states reports a corrupt state");
    corrupt(store.list_events(&monitor.id, None, 10).await.unwrap_err(), "event", id);
    conformance::a_corrupt_monitor_does_not_poison_the_rest(&store, &monitor.id).await;
}

#[tokio::test]
async fn lists_page_past_the_script_page_size() {
    let server = RedisServer::start().await;
    let (store, _fences) = server.store("node-a").await;
    let monitors: Vec<Monitor> = (0..1200).map(|i| sample_monitor(&format!("m{i}"))).collect();
    store.put_monitors(&monitors).await.unwrap();
    let mut ids: Vec<MonitorId> = monitors.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    let listed = store.list_monitors(None, 1100).await.unwrap();
    let listed: Vec<MonitorId> = listed.into_iter().map(|m| m.id).collect();
    assert_eq!(listed, ids[..1100]);
    let rest = store.list_monitors(Some(&ids[1099]), usize::MAX).await.unwrap();
    assert_eq!(rest.len(), 100);
}
