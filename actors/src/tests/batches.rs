//! The monitor supervisor's batches: a large upsert is spawned over several tasks, a batch that
//! names a running monitor reconfigures it instead of starting a second actor, a mass stop
//! stops every monitor it names, a start keeps its due instant however late it is spawned, and
//! waiting monitors are spawned soonest due first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloudroutes_checks::Check;
use cloudroutes_engine::MonitorId;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use ractor::{Actor, ActorRef};
use tempfile::TempDir;

use super::{FlakyCheck, shared, wait_until};
use crate::gate::Gate;
use crate::monitor::MonitorShared;
use crate::supervisor::{MonitorSupervisor, Start, SupervisorArgs, SupervisorMsg};

/// More than one spawning task's share, and more than one stop chunk (1,024).
const MONITORS: u32 = 1_500;

fn start(n: u32, check: &Arc<dyn Check>, interval: Duration) -> Start {
    Start {
        id: MonitorId::from(format!("m{n}")),
        check: Arc::clone(check),
        interval,
        first_due: Some(tokio::time::Instant::now()),
        gate: None,
    }
}

/// Starts a monitor supervisor (crash events go to an embedded store in the returned
/// directory).
async fn supervisor(shared: &Arc<MonitorShared>) -> (ActorRef<SupervisorMsg>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    let args = SupervisorArgs {
        shared: Arc::clone(shared),
        store,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    };
    let (supervisor, _) = Actor::spawn(None, MonitorSupervisor, args).await.unwrap();
    (supervisor, dir)
}

#[tokio::test]
async fn a_large_batch_starts_every_monitor_once_and_a_mass_stop_stops_them_all() {
    let shared = shared();
    let (supervisor, _dir) = supervisor(&shared).await;
    let runs = Arc::new(AtomicU32::new(0));
    let check: Arc<dyn Check> = Arc::new(FlakyCheck { runs: Arc::clone(&runs), panics: 0 });
    let hour = Duration::from_secs(3600);
    let batch = (0..MONITORS).map(|n| start(n, &check, hour)).collect();
    supervisor.cast(SupervisorMsg::Upsert(batch)).unwrap();
    wait_until("every monitor of the batch ran its first check", async || {
        runs.load(Ordering::SeqCst) >= MONITORS
    })
    .await;
    let count = supervisor.call(SupervisorMsg::Count, None).await.unwrap().unwrap();
    assert_eq!(count, MONITORS as usize, "one child per monitor");
    assert_eq!(shared.metrics.monitors_owned.get(), i64::from(MONITORS));

    // The same ids again (with one new): the running ones are reconfigured, only the new one
    // starts. A reconfigure restarts the schedule at a random phase within the interval: a
    // year, so that none of 1,500 lands in the next moments (within an hour, one in about 20
    // runs of this test did).
    let year = Duration::from_secs(365 * 24 * 3600);
    let again = (0..=MONITORS).map(|n| start(n, &check, year)).collect();
    supervisor.cast(SupervisorMsg::Upsert(again)).unwrap();
    wait_until("the new monitor ran", async || runs.load(Ordering::SeqCst) > MONITORS).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(Ordering::SeqCst), MONITORS + 1, "no monitor started twice");
    let count = supervisor.call(SupervisorMsg::Count, None).await.unwrap().unwrap();
    assert_eq!(count, MONITORS as usize + 1);

    let ids: Vec<MonitorId> =
        (0..=MONITORS + 5).map(|n| MonitorId::from(format!("m{n}"))).collect();
    let stopped =
        supervisor.call(|port| SupervisorMsg::RemoveMany(ids, port), None).await.unwrap().unwrap();
    assert_eq!(stopped, MONITORS as usize + 1, "every running monitor named was stopped");
    let count = supervisor.call(SupervisorMsg::Count, None).await.unwrap().unwrap();
    assert_eq!(count, 0);
    assert_eq!(shared.metrics.monitors_owned.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_start_spawned_late_keeps_its_due_instant() {
    let (supervisor, _dir) = supervisor(&shared()).await;
    let runs = Arc::new(AtomicU32::new(0));
    let check: Arc<dyn Check> = Arc::new(FlakyCheck { runs: Arc::clone(&runs), panics: 0 });
    let made = tokio::time::Instant::now();
    let mut late = start(1, &check, Duration::from_secs(3600));
    late.first_due = Some(made + Duration::from_secs(10));
    // The start waits behind others (a mass takeover) before the supervisor gets it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    supervisor.cast(SupervisorMsg::Upsert(vec![late])).unwrap();
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ran = made.elapsed();
    // A delay counted from the spawn would have run it at 14 s.
    assert!(ran >= Duration::from_secs(10) && ran < Duration::from_secs(11), "ran at {ran:?}");
}

#[tokio::test]
async fn an_overdue_monitor_upserted_last_is_spawned_before_a_queue_of_later_ones() {
    let shared = shared();
    let (supervisor, _dir) = supervisor(&shared).await;
    let check: Arc<dyn Check> =
        Arc::new(FlakyCheck { runs: Arc::new(AtomicU32::new(0)), panics: 0 });
    let hour = Duration::from_secs(3600);
    let now = tokio::time::Instant::now();
    // A partition loaded first, every monitor due in a minute; then one with a monitor overdue
    // by 10 s.
    let mut first: Vec<Start> = (0..MONITORS).map(|n| start(n, &check, hour)).collect();
    for start in &mut first {
        start.first_due = Some(now + Duration::from_secs(60));
    }
    let mut overdue = start(MONITORS, &check, hour);
    overdue.first_due = Some(now - Duration::from_secs(10));
    supervisor.cast(SupervisorMsg::Upsert(first)).unwrap();
    supervisor.cast(SupervisorMsg::Upsert(vec![overdue])).unwrap();
    wait_until("every monitor was spawned", async || {
        shared.metrics.monitors_owned.get() == i64::from(MONITORS) + 1
    })
    .await;
    // ractor numbers actors in the order they are created: the spawn order.
    let mut spawned = Vec::new();
    for n in 0..=MONITORS {
        let id = MonitorId::from(format!("m{n}"));
        let actor = supervisor.call(|port| SupervisorMsg::Lookup(id, port), None).await;
        spawned.push((actor.unwrap().unwrap().unwrap().get_id().pid(), n));
    }
    spawned.sort_unstable();
    let position = spawned.iter().position(|&(_, n)| n == MONITORS).unwrap();
    // In upsert order it would be spawned last; soonest due first, in the first batch (256).
    assert!(position < 256, "the overdue monitor was spawned after {position} others");
}

#[tokio::test]
async fn monitors_behind_a_closed_gate_are_spawned_but_neither_check_nor_count_until_it_opens() {
    let shared = shared();
    let (supervisor, _dir) = supervisor(&shared).await;
    let runs = Arc::new(AtomicU32::new(0));
    let check: Arc<dyn Check> = Arc::new(FlakyCheck { runs: Arc::clone(&runs), panics: 0 });
    let hour = Duration::from_secs(3600);
    let gate = Arc::new(Gate::default());
    // Every gated monitor is overdue: without the gate each would check at once.
    let gated: Vec<Start> = (0..MONITORS)
        .map(|n| Start { gate: Some(Arc::clone(&gate)), ..start(n, &check, hour) })
        .collect();
    supervisor.cast(SupervisorMsg::Upsert(gated)).unwrap();
    supervisor.cast(SupervisorMsg::Upsert(vec![start(MONITORS, &check, hour)])).unwrap();
    let spawned = async || {
        let id = MonitorId::from(format!("m{}", MONITORS - 1));
        let actor = supervisor.call(|port| SupervisorMsg::Lookup(id, port), None).await;
        actor.unwrap().unwrap().is_some()
    };
    wait_until("the ungated monitor ran", async || runs.load(Ordering::SeqCst) == 1).await;
    wait_until("every gated monitor was spawned", spawned).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a monitor behind the closed gate checked");
    assert_eq!(shared.metrics.monitors_owned.get(), 1, "held monitors do not count as owned");
    // Some are stopped while held (their partition went elsewhere): the count stays right.
    let ids: Vec<MonitorId> = (0..10).map(|n| MonitorId::from(format!("m{n}"))).collect();
    let stopped =
        supervisor.call(|port| SupervisorMsg::RemoveMany(ids, port), None).await.unwrap().unwrap();
    assert_eq!(stopped, 10);
    assert_eq!(shared.metrics.monitors_owned.get(), 1);

    gate.open();
    supervisor.cast(SupervisorMsg::GatesOpened).unwrap();
    wait_until("every gated monitor still supervised checked once", async || {
        runs.load(Ordering::SeqCst) == MONITORS + 1 - 10
    })
    .await;
    assert_eq!(shared.metrics.monitors_owned.get(), i64::from(MONITORS) + 1 - 10);
}

#[tokio::test]
async fn monitors_stopped_while_they_wait_are_never_spawned() {
    let shared = shared();
    let (supervisor, _dir) = supervisor(&shared).await;
    let runs = Arc::new(AtomicU32::new(0));
    let check: Arc<dyn Check> = Arc::new(FlakyCheck { runs: Arc::clone(&runs), panics: 0 });
    let batch = (0..MONITORS).map(|n| start(n, &check, Duration::from_secs(3600))).collect();
    supervisor.cast(SupervisorMsg::Upsert(batch)).unwrap();
    // A partition handed away again at once: most of it is still waiting to be spawned.
    let ids: Vec<MonitorId> = (0..MONITORS).map(|n| MonitorId::from(format!("m{n}"))).collect();
    let stopped =
        supervisor.call(|port| SupervisorMsg::RemoveMany(ids, port), None).await.unwrap().unwrap();
    assert_eq!(stopped, MONITORS as usize);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let count = supervisor.call(SupervisorMsg::Count, None).await.unwrap().unwrap();
    assert_eq!(count, 0);
    assert_eq!(shared.metrics.monitors_owned.get(), 0);
    let lookup = supervisor.call(|port| SupervisorMsg::Lookup("m7".into(), port), None).await;
    assert!(lookup.unwrap().unwrap().is_none(), "a stopped monitor is not spawned on demand");
    assert!(runs.load(Ordering::SeqCst) < MONITORS, "not every monitor started before the stop");
}
