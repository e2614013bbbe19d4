//! Tests of the actors against a real embedded store: crash restarts, the schedule, reconfigure,
//! and counter batching.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloudroutes_checks::Check;
use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_engine::{
    CheckOutcome, EventKind, Method, Monitor, MonitorId, PluginSpec, Status, Store,
};
use ractor::Actor;
use tokio::sync::Semaphore;

use crate::board::Board;
use crate::metrics::Metrics;
use crate::monitor::{MonitorActor, MonitorArgs, MonitorMsg, MonitorShared};
use crate::router::Routers;
use crate::supervisor::{MonitorSupervisor, Start, SupervisorArgs, SupervisorMsg};
use crate::{MonitorDraft, Node, ReactionDraft};

mod batches;
mod brake;
mod granted_while_loading;
mod group_commit;
mod lifeline;
mod scripted;
mod supervisor_restart;

/// A check that panics on its first `panics` runs, then is healthy; counts runs.
#[derive(Debug)]
struct FlakyCheck {
    runs: Arc<AtomicU32>,
    panics: u32,
}

#[async_trait::async_trait]
impl Check for FlakyCheck {
    fn kind(&self) -> &'static str {
        "flaky"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }
    async fn run(&self) -> CheckOutcome {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(run > self.panics, "flaky check panics on run {run}");
        CheckOutcome::Healthy { reason: format!("run {run}") }
    }
}

fn shared() -> Arc<MonitorShared> {
    let board = Arc::new(Board::new(1));
    Arc::new(MonitorShared {
        routers: Arc::new(Routers::new(board)),
        check_limiter: Arc::new(Semaphore::new(8)),
        metrics: Arc::new(Metrics::new()),
        node_id: Arc::from("test-node"),
    })
}

fn monitor(name: &str) -> Monitor {
    let check = serde_json::json!({"type": "webhook"});
    let serde_json::Value::Object(check) = check else { unreachable!() };
    Monitor {
        id: MonitorId::generate(),
        name: name.into(),
        check: PluginSpec(check),
        interval_secs: None,
        reactions: vec![],
        enabled: true,
        tags: vec![],
        webhook_key: "k".into(),
    }
}

async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn a_crashed_monitor_is_restarted_with_backoff_and_the_crash_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    let monitor = monitor("flaky");
    store.put_monitor(&monitor).await.unwrap();
    let shared = shared();
    let args = SupervisorArgs {
        shared: Arc::clone(&shared),
        store: Arc::clone(&store),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    };
    let (supervisor, _) = Actor::spawn(None, MonitorSupervisor, args).await.unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let check = Arc::new(FlakyCheck { runs: Arc::clone(&runs), panics: 2 });
    let started = tokio::time::Instant::now();
    supervisor
        .cast(SupervisorMsg::Upsert(vec![Start {
            id: monitor.id.clone(),
            check,
            interval: Duration::from_millis(30),
            first_due: None,
            gate: None,
        }]))
        .unwrap();
    wait_until("the check runs healthy after two crashes", async || {
        runs.load(Ordering::SeqCst) >= 4
    })
    .await;
    // Two crashes: backoffs of 20 ms then 40 ms before the healthy runs.
    assert!(started.elapsed() >= Duration::from_millis(60), "restarts waited for the backoff");
    assert_eq!(shared.metrics.monitor_crashes.get(), 2, "each crash is counted");
    wait_until("both crashes are in the history", async || {
        let events = store.list_events(&monitor.id, None, 10).await.unwrap();
        events.iter().filter(|e| matches!(e.kind, EventKind::Crash { .. })).count() == 2
    })
    .await;
    let events = store.list_events(&monitor.id, None, 10).await.unwrap();
    let attempts: Vec<u32> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Crash { attempt, error, .. } => {
                assert!(error.contains("panic"), "crash event carries the panic: {error}");
                Some(*attempt)
            }
            _ => None,
        })
        .collect();
    assert_eq!(attempts, vec![2, 1], "newest first, attempts counted");
    let count = supervisor.call(SupervisorMsg::Count, None).await.unwrap().unwrap();
    assert_eq!(count, 1, "the monitor is still supervised");
    supervisor.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_monitor_runs_once_per_interval_and_a_reconfigure_replaces_its_timer() {
    let runs = Arc::new(AtomicU32::new(0));
    let check = Arc::new(FlakyCheck { runs: Arc::clone(&runs), panics: 0 });
    let args = MonitorArgs {
        id: MonitorId::from("m"),
        check: check.clone(),
        interval: Duration::from_secs(10),
        first_delay: Duration::from_secs(3),
        gate: None,
        shared: shared(),
    };
    let (actor, _) = Actor::spawn(None, MonitorActor, args).await.unwrap();
    tokio::time::sleep(Duration::from_secs(95)).await;
    // Runs at 3, 13, ..., 93 s.
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    actor.cast(MonitorMsg::Reconfigure { check, interval: Duration::from_secs(1) }).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = runs.load(Ordering::SeqCst) - 10;
    // One timer chain at 1 s (the old 10 s chain is dead): 29 to 30 runs, not 32 or more.
    assert!((29..=30).contains(&after), "ran {after} times in 30 s at a 1 s interval");
    let outcome = actor.call(MonitorMsg::RunNow, None).await.unwrap().unwrap();
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }));
    actor.stop(None);
}

/// A check that takes `takes` to run; records when each run started.
#[derive(Debug)]
struct SlowCheck {
    takes: Duration,
    starts: std::sync::Mutex<Vec<tokio::time::Instant>>,
}

#[async_trait::async_trait]
impl Check for SlowCheck {
    fn kind(&self) -> &'static str {
        "slow"
    }
    fn timeout(&self) -> Duration {
        self.takes * 2
    }
    async fn run(&self) -> CheckOutcome {
        self.starts.lock().unwrap().push(tokio::time::Instant::now());
        tokio::time::sleep(self.takes).await;
        CheckOutcome::Healthy { reason: "slow".into() }
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_slower_than_its_interval_skips_grid_points_rather_than_bursting() {
    let check =
        Arc::new(SlowCheck { takes: Duration::from_millis(2500), starts: Default::default() });
    let args = MonitorArgs {
        id: MonitorId::from("slow"),
        check: check.clone(),
        interval: Duration::from_secs(1),
        first_delay: Duration::from_millis(500),
        gate: None,
        shared: shared(),
    };
    let started = tokio::time::Instant::now();
    let (actor, _) = Actor::spawn(None, MonitorActor, args).await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    actor.stop(None);
    let offsets: Vec<u128> =
        check.starts.lock().unwrap().iter().map(|at| (*at - started).as_millis()).collect();
    // Runs at 0.5 s, then on the first grid point after each 2.5 s run: 3.5, 6.5, ... s.
    let expected: Vec<u128> = (0..7).map(|k| 500 + 3000 * k).collect();
    assert_eq!(offsets, expected, "no tick queued up while a run was in flight");
}

fn webhook_draft(reactions: Vec<cloudroutes_engine::ReactionId>) -> MonitorDraft {
    let serde_json::Value::Object(check) = serde_json::json!({"type": "webhook"}) else {
        unreachable!()
    };
    MonitorDraft {
        name: "hook".into(),
        check: PluginSpec(check),
        interval_secs: None,
        reactions,
        enabled: true,
        tags: vec![],
    }
}

#[tokio::test]
async fn a_recovery_reaction_attached_after_the_recovery_does_not_fire_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    // The reaction below calls loopback, which the egress policy denies unless allowed.
    let mut config = NodeConfig::default();
    config.egress.allow = vec!["127.0.0.0/8".into()];
    let node = Node::start(config, "n1".into(), store.clone()).await.unwrap();
    let id = node.create_monitor(webhook_draft(vec![])).await.unwrap().monitor.id;
    let observe =
        async |outcome: CheckOutcome| node.observe(&id, outcome, Method::Webhook).await.unwrap();
    observe(CheckOutcome::Failed { reason: "down".into() }).await;
    observe(CheckOutcome::Healthy { reason: "up".into() }).await;
    // Port 9 on loopback refuses: a firing would show up as a failed reaction event.
    let serde_json::Value::Object(action) = serde_json::json!({
        "type": "http-webhook", "url": "http://127.0.0.1:9/", "timeout_ms": 200
    }) else {
        unreachable!()
    };
    let draft = ReactionDraft {
        name: "recovered".into(),
        action: PluginSpec(action),
        trigger: 1,
        frequency_secs: 0,
        call_on: cloudroutes_engine::CallOn::Healthy,
    };
    let reaction = node.create_reaction(draft).await.unwrap().reaction.id;
    node.replace_monitor(&id, webhook_draft(vec![reaction])).await.unwrap();
    observe(CheckOutcome::Healthy { reason: "still up".into() }).await;
    let reaction_events = async || {
        let events = store.list_events(&id, None, 50).await.unwrap();
        events.iter().filter(|e| matches!(e.kind, EventKind::Reaction { .. })).count()
    };
    // Long enough for a firing's three attempts against the refusing port to be recorded.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        reaction_events().await,
        0,
        "no firing for the recovery before the reaction existed"
    );
    observe(CheckOutcome::Failed { reason: "down again".into() }).await;
    observe(CheckOutcome::Healthy { reason: "up again".into() }).await;
    wait_until("the next recovery fires it", async || reaction_events().await == 1).await;
    node.shutdown().await;
}

#[tokio::test]
async fn routine_counters_are_batched_and_flushed_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db"), 100).unwrap());
    let mut config = NodeConfig::default();
    config.engine.state_flush_ms = 60_000; // no periodic flush during the test
    let node = Node::start(config, "n1".into(), store.clone()).await.unwrap();
    let check = serde_json::json!({"type": "webhook"});
    let serde_json::Value::Object(check) = check else { unreachable!() };
    let draft = MonitorDraft {
        name: "hook".into(),
        check: PluginSpec(check),
        interval_secs: None,
        reactions: vec![],
        enabled: true,
        tags: vec![],
    };
    let id = node.create_monitor(draft).await.unwrap().monitor.id;
    for _ in 0..5 {
        node.observe(&id, CheckOutcome::Healthy { reason: "ok".into() }, Method::Webhook)
            .await
            .unwrap();
    }
    let stored = store.get_state(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.streak),
        (Status::Healthy, 1),
        "the transition was written at once, the counters not yet"
    );
    assert_eq!(node.get_monitor(&id).await.unwrap().state.streak, 5, "the API sees live counters");
    node.shutdown().await;
    let stored = store.get_state(&id).await.unwrap().unwrap();
    assert_eq!(stored.streak, 5, "shutdown flushed the counters");
}
