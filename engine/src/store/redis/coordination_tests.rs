//! The Coordinator side: leases, membership, partition loading, configuration and faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::RedisStore;
use super::test_server::{PARTITIONS, RedisServer, all_partitions, hold, options};
use super::tests::monitor_in;
use crate::cluster::{Acquired, Coordinator, Fences, Lease, Member, PartitionVersion};
use crate::error::StoreError;
use crate::model::MonitorId;
use crate::store::Store;
use crate::store::conformance::sample_state;

const LONG: Duration = Duration::from_secs(60);

fn member(id: &str) -> Member {
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    Member {
        id: id.to_owned(),
        http_addr: "127.0.0.1:8080".into(),
        cluster_addr: Some("127.0.0.1:4000".into()),
        zone: "z1".into(),
        started_at: at,
        heartbeat_at: at,
        partitions: 3,
        monitors: 42,
        statuses: Default::default(),
        leaving: false,
        heartbeat_ms: 2_000,
    }
}

fn granted(acquired: &[(u32, Acquired)]) -> (u64, Option<(String, u64)>) {
    match acquired {
        [(_, Acquired::Granted { epoch, previous })] => (*epoch, previous.clone()),
        other => panic!("expected one grant, got {other:?}"),
    }
}

#[tokio::test]
async fn leases_are_acquired_renewed_and_released_with_growing_epochs() {
    let server = RedisServer::start().await;
    let (a, _) = server.store("node-a").await;
    let (first, previous) = granted(&a.acquire("node-a", &[2], LONG).await.unwrap());
    assert_eq!(previous, None, "a free lease has no previous holder");
    let (second, previous) = granted(&a.acquire("node-a", &[2], LONG).await.unwrap());
    assert!(second > first, "taking it again takes a new epoch");
    assert_eq!(previous, Some(("node-a".into(), first)));
    let held = a.acquire("node-b", &[2], LONG).await.unwrap();
    assert_eq!(held, vec![(2, Acquired::HeldBy { node: "node-a".into(), epoch: second })]);

    let (stale, current) =
        (Lease { partition: 2, epoch: first }, Lease { partition: 2, epoch: second });
    let renewed = a.renew("node-a", &[stale, current], LONG).await.unwrap();
    assert_eq!(renewed, vec![(stale, false), (current, true)], "only the exact epoch renews");
    let renewed = a.renew("node-b", &[current], LONG).await.unwrap();
    assert_eq!(renewed, vec![(current, false)], "only the holder renews");
    a.release("node-a", &[stale]).await.unwrap();
    a.release("node-b", &[current]).await.unwrap();
    assert_eq!(a.holders().await.unwrap(), vec![(2, "node-a".into(), second)], "still held");
    a.release("node-a", &[current]).await.unwrap();
    assert_eq!(a.holders().await.unwrap(), vec![], "released");
    let renewed = a.renew("node-a", &[current], LONG).await.unwrap();
    assert_eq!(renewed, vec![(current, false)], "a released lease does not renew");

    let (third, previous) =
        granted(&a.acquire("node-b", &[2], Duration::from_millis(200)).await.unwrap());
    assert!(third > second, "epochs grow across holders");
    assert_eq!(previous, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (fourth, previous) = granted(&a.acquire("node-a", &[2], LONG).await.unwrap());
    assert!(fourth > third, "an expired lease is taken at a higher epoch");
    assert_eq!(previous, None, "an expired lease leaves no record");
}

#[tokio::test]
async fn holders_lists_every_held_partition() {
    let server = RedisServer::start().await;
    let (a, a_fences) = server.store("node-a").await;
    let (b, b_fences) = server.store("node-b").await;
    let a_leases = hold(&a, &a_fences, &[0, 5], LONG).await;
    let b_leases = hold(&b, &b_fences, &[3], LONG).await;
    let acquired = a.acquire("node-a", &[3, 7], LONG).await.unwrap();
    assert!(matches!(acquired[0], (3, Acquired::HeldBy { .. })), "{acquired:?}");
    assert!(matches!(acquired[1], (7, Acquired::Granted { epoch: 1, previous: None })));
    let holders = b.holders().await.unwrap();
    let expected = vec![
        (0, "node-a".to_owned(), a_leases[0].epoch),
        (3, "node-b".to_owned(), b_leases[0].epoch),
        (5, "node-a".to_owned(), a_leases[1].epoch),
        (7, "node-a".to_owned(), 1),
    ];
    assert_eq!(holders, expected);
}

#[tokio::test]
async fn a_different_partition_count_is_refused_naming_both() {
    let server = RedisServer::start().await;
    let (_first, _) = server.store("node-a").await;
    let fences = Arc::new(Fences::new(LONG));
    let error =
        RedisStore::connect(&server.url(), options("node-b", 16), fences).await.unwrap_err();
    assert!(matches!(error, StoreError::Redis { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("16") && message.contains(&PARTITIONS.to_string()), "{message}");
    let fences = Arc::new(Fences::new(LONG));
    let same = RedisStore::connect(&server.url(), options("node-b", PARTITIONS), fences).await;
    assert!(same.is_ok(), "the same count connects");
    let fences = Arc::new(Fences::new(LONG));
    let zero = RedisStore::connect(&server.url(), options("node-c", 0), fences).await;
    assert!(matches!(zero, Err(StoreError::Redis { .. })), "zero partitions is refused");
}

#[tokio::test]
async fn members_heartbeat_expire_leave_and_drain() {
    let server = RedisServer::start().await;
    let (store, _) = server.store("node-a").await;
    assert_eq!(store.members().await.unwrap(), vec![]);
    store.heartbeat(&member("node-b"), LONG).await.unwrap();
    store.heartbeat(&member("node-a"), LONG).await.unwrap();
    store.heartbeat(&member("node-c"), Duration::from_millis(300)).await.unwrap();
    let ids = |members: Vec<Member>| members.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(store.members().await.unwrap()), ["node-a", "node-b", "node-c"]);
    assert_eq!(store.members().await.unwrap()[0], member("node-a"), "the record round-trips");

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ids(store.members().await.unwrap()), ["node-a", "node-b"], "node-c expired");
    let mut raw = server.raw().await;
    let seen: Vec<String> =
        ::redis::cmd("SMEMBERS").arg("cr:{members}:nodes").query_async(&mut raw).await.unwrap();
    assert!(!seen.contains(&"node-c".to_owned()), "expired ids are pruned: {seen:?}");
    store.heartbeat(&member("node-c"), LONG).await.unwrap();
    assert_eq!(ids(store.members().await.unwrap()), ["node-a", "node-b", "node-c"], "it came back");

    store.leave("node-b").await.unwrap();
    assert_eq!(ids(store.members().await.unwrap()), ["node-a", "node-c"], "node-b left");

    assert!(store.draining().await.unwrap().is_empty());
    store.set_draining("node-c", true).await.unwrap();
    store.set_draining("node-a", true).await.unwrap();
    assert_eq!(store.draining().await.unwrap(), ["node-a", "node-c"]);
    store.set_draining("node-a", false).await.unwrap();
    assert_eq!(store.draining().await.unwrap(), ["node-c"]);
}

#[tokio::test]
async fn partitions_load_their_monitors_and_states() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LONG).await;
    let mut mine = vec![monitor_in(4), monitor_in(4)];
    mine.sort_by(|x, y| x.id.cmp(&y.id));
    let elsewhere = monitor_in(5);
    store.put_monitors(&[mine[1].clone(), elsewhere.clone(), mine[0].clone()]).await.unwrap();
    store.put_states(&[(mine[0].id.clone(), sample_state(4))]).await.unwrap();
    store.put_states(&[(elsewhere.id.clone(), sample_state(5))]).await.unwrap();
    assert_eq!(store.partition_monitors(4).await.unwrap(), mine);
    assert_eq!(
        store.partition_states(4).await.unwrap(),
        vec![(mine[0].id.clone(), sample_state(4))]
    );
    assert_eq!(store.partition_monitors(6).await.unwrap(), vec![]);
    store.delete_monitor(&mine[0].id).await.unwrap();
    assert_eq!(store.partition_monitors(4).await.unwrap(), vec![mine[1].clone()]);
    assert_eq!(store.partition_states(4).await.unwrap(), vec![]);
    let unknown: Vec<(MonitorId, _)> = store.partition_states(6).await.unwrap();
    assert!(unknown.is_empty());
}

#[tokio::test]
async fn partition_versions_count_definition_writes_and_state_writes_apart() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LONG).await;
    let versions = |partitions: &'static [u32]| {
        let store = &store;
        async move { store.partition_versions(partitions).await.unwrap() }
    };
    let zero = PartitionVersion::default();
    assert_eq!(versions(&[4, 5]).await, [zero, zero], "no write yet");
    let monitor = monitor_in(4);
    store.put_monitor(&monitor).await.unwrap();
    let [after_put, other] = versions(&[4, 5]).await[..] else { panic!("two versions") };
    assert!(after_put.definitions > 0, "a new monitor: {after_put:?}");
    assert_eq!(after_put.states, 0, "{after_put:?}");
    assert_eq!(other, zero, "another partition is left alone");
    let mut changed = monitor.clone();
    changed.name = "renamed".into();
    store.put_monitor(&changed).await.unwrap();
    let after_change = versions(&[4]).await[0];
    assert!(after_change.definitions > after_put.definitions, "a changed definition");
    store.put_states(&[(monitor.id.clone(), sample_state(4))]).await.unwrap();
    let after_state = versions(&[4]).await[0];
    assert_eq!(after_state.definitions, after_change.definitions, "{after_state:?}");
    assert!(after_state.states > 0, "a state written: {after_state:?}");
    store.partition_monitors(4).await.unwrap();
    store.partition_states(4).await.unwrap();
    assert_eq!(versions(&[4]).await[0], after_state, "reads change nothing");
    store.delete_monitor(&monitor.id).await.unwrap();
    let after_delete = versions(&[4]).await[0];
    assert!(after_delete.definitions > after_state.definitions, "a deleted monitor");
    assert_eq!(versions(&[]).await, []);
}

#[tokio::test]
async fn the_server_id_is_the_run_id_and_changes_with_the_server() {
    let first = RedisServer::start().await;
    let second = RedisServer::start().await;
    let (a, _) = first.store("node-a").await;
    let (b, _) = second.store("node-a").await;
    let id = a.server_id().await.unwrap();
    assert_eq!(id.len(), 40, "{id}");
    assert_eq!(a.server_id().await.unwrap(), id, "stable while the server runs");
    assert_ne!(b.server_id().await.unwrap(), id);
}

#[tokio::test]
async fn an_unreachable_redis_gives_errors_within_the_response_timeout() {
    let mut server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LONG).await;
    let monitor = monitor_in(1);
    store.put_monitor(&monitor).await.unwrap();
    server.stop();
    // The response timeout is 500 ms; allow scheduling slack, but no hang.
    let bound = Duration::from_millis(1500);
    for attempt in 0..3 {
        let started = Instant::now();
        let error = store.get_monitor(&monitor.id).await.unwrap_err();
        assert!(matches!(error, StoreError::Redis { .. }), "attempt {attempt}: {error:?}");
        assert!(started.elapsed() < bound, "attempt {attempt} took {:?}", started.elapsed());
    }
    let started = Instant::now();
    let error = store.put_states(&[(monitor.id.clone(), sample_state(1))]).await.unwrap_err();
    assert!(matches!(error, StoreError::Redis { .. }), "{error:?}");
    let error = store.heartbeat(&member("node-a"), LONG).await.unwrap_err();
    assert!(matches!(error, StoreError::Redis { .. }), "{error:?}");
    assert!(started.elapsed() < 2 * bound, "took {:?}", started.elapsed());

    let started = Instant::now();
    let fences = Arc::new(Fences::new(LONG));
    let error = RedisStore::connect(&server.url(), options("node-b", PARTITIONS), fences)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Redis { context: "connect", .. }), "{error:?}");
    assert!(started.elapsed() < bound, "connect took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_hung_redis_times_out_and_the_store_recovers_when_it_answers_again() {
    let server = RedisServer::start().await;
    let (store, _) = server.store("node-a").await;
    let monitor = monitor_in(3);
    store.put_monitor(&monitor).await.unwrap();
    server.signal("STOP");
    let started = Instant::now();
    let error = store.get_monitor(&monitor.id).await.unwrap_err();
    server.signal("CONT");
    assert!(matches!(error, StoreError::Redis { .. }), "{error:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "it waited for the timeout: {elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "and no longer: {elapsed:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.get_monitor(&monitor.id).await {
            Ok(got) => break assert_eq!(got, Some(monitor)),
            Err(error) => assert!(Instant::now() < deadline, "no recovery: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
