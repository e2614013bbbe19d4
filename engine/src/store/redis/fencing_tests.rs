//! Fenced writes and reaction claims, with two nodes on one Redis.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::test_server::{RedisServer, all_partitions, hold};
use super::tests::monitor_in;
use crate::cluster::{Acquired, Coordinator, Lease};
use crate::error::StoreError;
use crate::model::{Event, EventKind, MonitorId, ReactionId, ReactionOutcome};
use crate::store::conformance::{sample_event, sample_state};
use crate::store::{Claim, Store, Transition};

const LONG: Duration = Duration::from_secs(60);

fn claim(key: &str, destructive: bool) -> Claim {
    Claim { key: key.to_owned(), reaction_id: ReactionId::from("r1"), episode: 2, destructive }
}

fn claiming(monitor: &MonitorId, key: &str) -> Transition {
    let mut transition = Transition::new(monitor.clone(), sample_state(1), vec![]);
    transition.claims.push(claim(key, true));
    transition
}

fn settling(monitor: &MonitorId, key: &str) -> Event {
    let kind = EventKind::Reaction {
        reaction_id: ReactionId::from("r1"),
        reaction_type: "http-webhook".into(),
        outcome: ReactionOutcome::Executed,
        episode: 2,
        detail: "HTTP 200".into(),
        node: "node-a".into(),
        claim: Some(key.to_owned()),
    };
    Event::new(monitor.clone(), OffsetDateTime::now_utc(), kind)
}

#[tokio::test]
async fn a_node_without_the_lease_is_refused() {
    let server = RedisServer::start().await;
    let (a, a_fences) = server.store("node-a").await;
    let (b, b_fences) = server.store("node-b").await;
    let leases = hold(&a, &a_fences, &[3], LONG).await;
    let monitor = monitor_in(3);
    a.put_monitor(&monitor).await.unwrap();
    let transition = Transition::new(monitor.id.clone(), sample_state(7), vec![]);

    // No local epoch: refused before anything is sent.
    let recorded = b.record_many(std::slice::from_ref(&transition)).await.unwrap();
    assert_eq!(recorded.fenced, vec![monitor.id.clone()]);
    let error = b.append_events(&[sample_event(&monitor.id, 1)]).await.unwrap_err();
    assert!(matches!(error, StoreError::Fenced { partition: 3 }), "{error:?}");
    b.put_states(&[(monitor.id.clone(), sample_state(8))]).await.unwrap();

    // A local epoch that is not the lease's (even A's own epoch, under B's name): the script
    // refuses.
    b_fences.hold(leases[0], Instant::now());
    let recorded = b.record_many(std::slice::from_ref(&transition)).await.unwrap();
    assert_eq!(recorded.fenced, vec![monitor.id.clone()]);
    let error = b.append_events(&[sample_event(&monitor.id, 1)]).await.unwrap_err();
    assert!(matches!(error, StoreError::Fenced { partition: 3 }), "{error:?}");
    assert_eq!(a.get_state(&monitor.id).await.unwrap(), None, "nothing of B's was written");
    assert!(a.list_events(&monitor.id, None, 10).await.unwrap().is_empty());

    let recorded = a.record_many(&[transition]).await.unwrap();
    assert!(recorded.is_clean(), "the holder writes: {recorded:?}");
    assert_eq!(a.get_state(&monitor.id).await.unwrap(), Some(sample_state(7)));
}

#[tokio::test]
async fn a_lost_lease_refuses_writes_even_while_the_local_table_says_held() {
    let server = RedisServer::start().await;
    let (a, a_fences) = server.store("node-a").await;
    let (b, b_fences) = server.store("node-b").await;
    // Partition 4 on a short lease that expires; partition 5 stays A's.
    let short = hold(&a, &a_fences, &[4], Duration::from_millis(300)).await;
    hold(&a, &a_fences, &[5], LONG).await;
    let (lost, kept) = (monitor_in(4), monitor_in(5));
    a.put_monitors(&[lost.clone(), kept.clone()]).await.unwrap();
    a.put_states(&[(lost.id.clone(), sample_state(1))]).await.unwrap();

    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = hold(&b, &b_fences, &[4], LONG).await;
    assert!(taken[0].epoch > short[0].epoch, "the new holder's epoch is higher");
    assert_eq!(a_fences.epoch(4), Some(short[0].epoch), "A's local table still says held");

    let key = format!("{}:r1:2:failed:0", lost.id);
    let mut refused = claiming(&lost.id, &key);
    refused.state = sample_state(2);
    refused.events.push(sample_event(&lost.id, 2));
    let written = Transition::new(kept.id.clone(), sample_state(3), vec![]);
    let recorded = a.record_many(&[refused, written]).await.unwrap();
    assert_eq!(recorded.fenced, vec![lost.id.clone()], "only the lost partition is fenced");
    assert!(recorded.already_claimed.is_empty());
    assert_eq!(a.get_state(&kept.id).await.unwrap(), Some(sample_state(3)), "held one written");
    assert_eq!(a.get_state(&lost.id).await.unwrap(), Some(sample_state(1)), "state untouched");
    assert!(a.list_events(&lost.id, None, 10).await.unwrap().is_empty(), "no event written");
    assert!(a.open_claims(4).await.unwrap().is_empty(), "no claim taken");
    let error = a.append_events(&[sample_event(&lost.id, 3)]).await.unwrap_err();
    assert!(matches!(error, StoreError::Fenced { partition: 4 }), "{error:?}");
    a.put_states(&[(lost.id.clone(), sample_state(9))]).await.unwrap();
    assert_eq!(a.get_state(&lost.id).await.unwrap(), Some(sample_state(1)), "put_states skipped");

    // The new holder can take the claim the refused write never took.
    let recorded = b.record_many(&[claiming(&lost.id, &key)]).await.unwrap();
    assert!(recorded.is_clean(), "{recorded:?}");
}

#[tokio::test]
async fn a_released_lease_passes_to_another_node_at_a_higher_epoch() {
    let server = RedisServer::start().await;
    let (a, a_fences) = server.store("node-a").await;
    let (b, b_fences) = server.store("node-b").await;
    let leases = hold(&a, &a_fences, &[6], LONG).await;
    let monitor = monitor_in(6);
    a.put_monitor(&monitor).await.unwrap();
    let held = b.acquire("node-b", &[6], LONG).await.unwrap();
    assert_eq!(held, vec![(6, Acquired::HeldBy { node: "node-a".into(), epoch: leases[0].epoch })]);
    a.release("node-a", &leases).await.unwrap();
    let taken = hold(&b, &b_fences, &[6], LONG).await;
    assert!(taken[0].epoch > leases[0].epoch);
    let error = a.append_events(&[sample_event(&monitor.id, 1)]).await.unwrap_err();
    assert!(matches!(error, StoreError::Fenced { partition: 6 }), "{error:?}");
    b.append_events(&[sample_event(&monitor.id, 2)]).await.unwrap();
    assert_eq!(b.list_events(&monitor.id, None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_claim_is_granted_once_listed_while_open_and_closed_by_its_outcome() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    let leases = hold(&store, &fences, &all_partitions(), LONG).await;
    let monitor = monitor_in(2);
    store.put_monitor(&monitor).await.unwrap();
    let key = format!("{}:r1:2:failed:0", monitor.id);

    let recorded = store.record_many(&[claiming(&monitor.id, &key)]).await.unwrap();
    assert!(recorded.is_clean(), "the first claim is granted: {recorded:?}");
    let recorded = store.record_many(&[claiming(&monitor.id, &key)]).await.unwrap();
    assert_eq!(recorded.already_claimed, vec![key.clone()], "the second is not");
    assert!(recorded.fenced.is_empty());

    let open = store.open_claims(2).await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    let claim = &open[0];
    assert_eq!((claim.key.as_str(), &claim.monitor_id), (key.as_str(), &monitor.id));
    assert_eq!((claim.reaction_id.as_str(), claim.episode), ("r1", 2));
    assert!(claim.destructive);
    assert_eq!((claim.node.as_str(), claim.epoch), ("node-a", leases[2].epoch));
    assert!(store.open_claims(3).await.unwrap().is_empty(), "claims stay in their partition");

    let outcome = settling(&monitor.id, &key);
    store.append_events(std::slice::from_ref(&outcome)).await.unwrap();
    assert!(store.open_claims(2).await.unwrap().is_empty(), "the outcome closes the claim");
    assert_eq!(store.list_events(&monitor.id, None, 10).await.unwrap(), vec![outcome]);
    let recorded = store.record_many(&[claiming(&monitor.id, &key)]).await.unwrap();
    assert_eq!(recorded.already_claimed, vec![key], "a closed claim stays taken");
}

#[tokio::test]
async fn deleting_a_monitor_drops_its_open_claims_only() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    hold(&store, &fences, &all_partitions(), LONG).await;
    let (gone, other) = (monitor_in(1), monitor_in(1));
    store.put_monitors(&[gone.clone(), other.clone()]).await.unwrap();
    let gone_key = format!("{}:r1:2:failed:0", gone.id);
    let other_key = format!("{}:r1:2:failed:0", other.id);
    let transitions = [claiming(&gone.id, &gone_key), claiming(&other.id, &other_key)];
    assert!(store.record_many(&transitions).await.unwrap().is_clean());
    assert_eq!(store.open_claims(1).await.unwrap().len(), 2);
    assert!(store.delete_monitor(&gone.id).await.unwrap());
    let open: Vec<String> =
        store.open_claims(1).await.unwrap().into_iter().map(|c| c.key).collect();
    assert_eq!(open, vec![other_key]);
}

#[tokio::test]
async fn renewing_keeps_writes_flowing_past_the_first_ttl() {
    let server = RedisServer::start().await;
    let (store, fences) = server.store("node-a").await;
    let ttl = Duration::from_millis(600);
    let leases = hold(&store, &fences, &[0], ttl).await;
    let monitor = monitor_in(0);
    store.put_monitor(&monitor).await.unwrap();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let renewed = store.renew("node-a", &leases, ttl).await.unwrap();
        assert_eq!(renewed, vec![(leases[0], true)], "round {round}");
    }
    let lease = Lease { partition: 0, epoch: leases[0].epoch };
    fences.hold(lease, Instant::now());
    store.append_events(&[sample_event(&monitor.id, 1)]).await.unwrap();
}
