//! What survives a restart: SIGTERM (everything, flushed) and SIGKILL (definitions and every
//! status transition, which are written before reactions run).

use serde_json::{Value, json};

use crate::common::{
    Node, Receiver, Target, http_monitor, id_of, is, parse_time, secs, streak, wait_for, wait_until,
};

const SECRET: &str = "hunter2-secret-value";

/// A monitor or reaction without its live parts (state, last run), for comparing definitions.
fn definition(resource: &Value) -> Value {
    let mut resource = resource.clone();
    if let Some(object) = resource.as_object_mut() {
        object.remove("state");
        object.remove("last_run_at");
    }
    resource
}

/// Every monitor's definition, sorted by id.
async fn definitions(node: &Node) -> Vec<Value> {
    let (status, page) = node.get("/monitors?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    let mut items: Vec<Value> = page["items"].as_array().unwrap().iter().map(definition).collect();
    items.sort_by_key(|m| m["id"].as_str().unwrap().to_owned());
    items
}

/// Asserts `before` (a history read earlier, newest first) is the oldest part of `after`.
#[track_caller]
fn assert_history_kept(before: &[Value], after: &[Value]) {
    assert!(
        after.len() >= before.len() && after[after.len() - before.len()..] == *before,
        "history lost or changed across the restart:\nbefore {}\nafter {}",
        json!(before),
        json!(after)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_restart_keeps_definitions_state_history_and_secrets() {
    let mut node = Node::start().await;
    let target = Target::start(500).await;
    let receiver = Receiver::start().await;
    let reaction = id_of(
        &node
            .create_reaction(json!({
                "name": "notify with a secret",
                "action": {"type": "http-webhook", "url": receiver.url("/p"),
                           "headers": {"X-Secret": SECRET}},
                "trigger": 1,
                "call_on": "both",
            }))
            .await,
    );
    let monitor = http_monitor(&node, "checkout", &target, &[&reaction]).await;
    let hook = node
        .create_monitor(json!({"name": "cron job", "check": {"type": "webhook"}, "tags": ["cron"]}))
        .await;
    let hook_id = id_of(&hook);
    let hook_url = hook["webhook_url"].as_str().unwrap().to_owned();
    for expected in 1..=2 {
        let answer = node.http().post(&hook_url).json(&json!({"action": "healthy"})).send().await;
        let answer: Value = answer.unwrap().json().await.unwrap();
        assert_eq!(answer["streak"], expected, "{answer}");
    }

    let first = receiver.wait_count_to("/p", 1, secs(15)).await.remove(0);
    assert_eq!(first.header("x-secret"), Some(SECRET));
    assert_eq!(first.body["status"], "failed");
    let first_key = first.body["idempotency_key"].as_str().unwrap().to_owned();
    node.wait_state(&monitor, secs(15), "failed streak 3", |s| is(s, "failed", 3)).await;
    wait_until(secs(10), "the reaction outcome in the history", || async {
        node.events(&monitor).await.iter().any(|e| e["kind"] == "reaction")
    })
    .await;

    let defs_before = definitions(&node).await;
    let (_, reaction_before) = node.get(&format!("/reactions/{reaction}")).await;
    let events_before = node.events(&monitor).await;
    let hook_events_before = node.events(&hook_id).await;
    let state_before = node.state(&monitor).await;
    let hook_state_before = node.state(&hook_id).await;

    node.restart().await;

    let state_after = node.state(&monitor).await;
    assert_eq!(state_after["status"], "failed", "{state_after}");
    assert_eq!(state_after["episode"], state_before["episode"], "{state_after}");
    assert!(
        streak(&state_after) >= streak(&state_before),
        "streak went down across a graceful restart: before {state_before}, after {state_after}"
    );
    assert_eq!(node.state(&hook_id).await, hook_state_before);
    assert_eq!(definitions(&node).await, defs_before, "monitor definitions changed");
    let (status, reaction_after) = node.get(&format!("/reactions/{reaction}")).await;
    assert_eq!(status, 200, "{reaction_after}");
    assert_eq!(definition(&reaction_after), definition(&reaction_before));
    assert_eq!(reaction_after["action"]["headers"]["X-Secret"], "***");
    assert_history_kept(&events_before, &node.events(&monitor).await);
    assert_eq!(node.events(&hook_id).await, hook_events_before);

    // The monitor runs again after the restart.
    let checked_before = parse_time(state_before["last_check_at"].as_str().unwrap());
    let streak_before = streak(&state_before);
    node.wait_state(&monitor, secs(15), "checks after the restart", |s| {
        s["last_check_at"].as_str().is_some_and(|t| parse_time(t) > checked_before)
            && is(s, "failed", streak_before + 2)
    })
    .await;
    // Still the same episode: the failed side already fired and must not fire again.
    let repeats: Vec<_> =
        receiver.requests_to("/p").into_iter().filter(|r| r.body["status"] == "failed").collect();
    assert!(
        repeats.iter().all(|r| r.body["idempotency_key"] == first_key.as_str()),
        "fired again in the same episode after a restart: {repeats:?}"
    );

    // The secret header still goes out after the restart.
    target.set_status(200);
    let recovered = wait_for(secs(15), "the recovery request", || async {
        receiver.requests_to("/p").into_iter().find(|r| r.body["status"] == "healthy")
    })
    .await;
    assert_eq!(recovered.header("x-secret"), Some(SECRET), "secret lost across the restart");
    assert_eq!(recovered.body["episode"], state_before["episode"]);

    // The webhook monitor keeps its key: the same URL still works.
    let answer = node.http().post(&hook_url).json(&json!({"action": "failed"})).send().await;
    let answer = answer.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer, json!({"result": "success", "status": "failed", "streak": 1}));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_failing_keeps_definitions_and_the_transition() {
    let mut node = Node::start().await;
    let target = Target::start(200).await;
    let receiver = Receiver::start().await;
    let reaction = crate::common::webhook_reaction(&node, &receiver, "/k", 2, 0, "failed").await;
    let monitor = http_monitor(&node, "payments", &target, &[&reaction]).await;
    node.wait_state(&monitor, secs(15), "healthy streak 2", |s| is(s, "healthy", 2)).await;

    target.set_status(500);
    let first = receiver.wait_count_to("/k", 1, secs(15)).await.remove(0);
    let key = first.body["idempotency_key"].as_str().unwrap().to_owned();
    // The transition was written before the reaction ran, so it is in the history now.
    let events = node.events(&monitor).await;
    let change = events
        .iter()
        .find(|e| e["kind"] == "status_change" && e["status"] == "failed")
        .unwrap_or_else(|| panic!("no change to failed in {}", json!(events)))
        .clone();
    assert_eq!(change["episode"], 1);
    let late = node
        .create_monitor(
            json!({"name": "created just before the crash", "check": {"type": "webhook"}}),
        )
        .await;
    let defs_before = definitions(&node).await;
    let (_, reaction_before) = node.get(&format!("/reactions/{reaction}")).await;

    node.kill().await;
    node.start_again().await;

    let state = node.state(&monitor).await;
    assert_eq!(state["status"], "failed", "the change to failed was lost: {state}");
    assert_eq!(state["episode"], 1, "{state}");
    assert_eq!(definitions(&node).await, defs_before, "definitions changed across a crash");
    let (status, reaction_after) = node.get(&format!("/reactions/{reaction}")).await;
    assert_eq!(status, 200, "{reaction_after}");
    assert_eq!(definition(&reaction_after), definition(&reaction_before));
    let (status, _) = node.get(&format!("/monitors/{}", id_of(&late))).await;
    assert_eq!(status, 200, "a monitor created before the crash is gone");

    // Checks go on; the history has the one transition from before the crash, not a new one.
    node.wait_state(&monitor, secs(15), "checks after the crash", |s| {
        s["last_check_at"]
            .as_str()
            .is_some_and(|t| parse_time(t) > parse_time(change["at"].as_str().unwrap()))
            && is(s, "failed", 4)
    })
    .await;
    let changes: Vec<Value> = node
        .events(&monitor)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "status_change" && e["status"] == "failed")
        .collect();
    assert_eq!(changes, vec![change], "the change to failed must survive once, as it was");
    let state = node.state(&monitor).await;
    assert_eq!(state["episode"], 1, "{state}");
    // No new firing in episode 1 (a retry of the same firing keeps its key).
    let requests = receiver.requests_to("/k");
    assert!(
        requests.iter().all(|r| r.body["idempotency_key"] == key.as_str()),
        "a second firing in the same episode after the crash: {requests:?}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_ready_exits_cleanly() {
    let mut node = Node::start().await;
    node.stop().await;
    for _ in 0..4 {
        node.start_again().await;
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_last_run_at_is_set_and_survives_a_restart() {
    let mut node = Node::start().await;
    let receiver = Receiver::start().await;
    let reaction = crate::common::webhook_reaction(&node, &receiver, "/l", 1, 0, "failed").await;
    let (_, fresh) = node.get(&format!("/reactions/{reaction}")).await;
    assert!(fresh["last_run_at"].is_null(), "{fresh}");
    let monitor = id_of(
        &node
            .create_monitor(
                json!({"name": "m", "check": {"type": "webhook"}, "reactions": [reaction]}),
            )
            .await,
    );
    assert_eq!(node.post_empty(&format!("/monitors/{monitor}/fail")).await.0, 200);
    receiver.wait_count_to("/l", 1, secs(10)).await;
    let ran = wait_for(secs(10), "last_run_at", || async {
        let (_, got) = node.get(&format!("/reactions/{reaction}")).await;
        got["last_run_at"].as_str().map(str::to_owned)
    })
    .await;
    node.restart().await;
    let (_, after) = node.get(&format!("/reactions/{reaction}")).await;
    assert_eq!(after["last_run_at"], ran.as_str(), "last_run_at lost across a restart: {after}");
    node.stop().await;
}
