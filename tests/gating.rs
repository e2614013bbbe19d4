//! Reaction gating through the real node: trigger, frequency, call_on, manual fail and heal.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    Node, Receiver, Recorded, Target, http_monitor, id_of, is, parse_time, seconds_between, secs,
    streak, wait_for, wait_until,
};

/// Index (newest first) of the first event matching `pred`.
fn position(events: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} in the history: {}", json!(events)))
}

/// Checks what every http-webhook request carries, and returns its idempotency key.
#[track_caller]
fn check_request(
    request: &Recorded,
    monitor: &str,
    reaction: &str,
    status: &str,
    episode: u64,
) -> String {
    let body = &request.body;
    assert_eq!(request.method, "POST", "{request:?}");
    assert!(
        request.header("content-type").is_some_and(|v| v.starts_with("application/json")),
        "{request:?}"
    );
    assert_eq!(body["monitor"]["id"], monitor, "{body}");
    assert_eq!(body["reaction"]["id"], reaction, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["episode"], episode, "{body}");
    assert!(body["node"].as_str().is_some_and(|n| !n.is_empty()), "{body}");
    assert!(body["at"].as_str().is_some(), "{body}");
    let key = body["idempotency_key"].as_str().unwrap_or_else(|| panic!("no key in {body}"));
    assert!(!key.is_empty());
    assert_eq!(request.header("idempotency-key"), Some(key), "header and body keys differ");
    key.to_owned()
}

/// Waits for the first request to `path`, checking on every poll that whenever the receiver
/// has a request, the monitor's state already satisfies `ready` (the receiver count is read
/// before the state, so a request that came too early is caught).
async fn first_request_gated(
    node: &Node,
    receiver: &Receiver,
    path: &str,
    monitor: &str,
    ready: impl Fn(&Value) -> bool,
) -> Recorded {
    let ready = &ready;
    wait_for(secs(20), &format!("the first request to {path}"), || async move {
        let got = receiver.requests_to(path);
        let state = node.state(monitor).await;
        if got.is_empty() {
            return None;
        }
        assert!(ready(&state), "a request to {path} arrived before the gate opened; state {state}");
        Some(got[0].clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_reaction_fires_once_per_episode_after_the_trigger_streak() {
    let node = Node::start().await;
    let target = Target::start(200).await;
    let receiver = Receiver::start().await;
    let reaction = id_of(
        &node
            .create_reaction(json!({
                "name": "page on-call",
                "action": {"type": "http-webhook", "url": receiver.url("/failed"),
                           "headers": {"X-Team": "ops"}},
                "trigger": 3,
                "frequency_secs": 0,
                "call_on": "failed",
            }))
            .await,
    );
    let monitor = http_monitor(&node, "shop front", &target, &[&reaction]).await;
    node.wait_state(&monitor, secs(15), "healthy streak 2", |s| is(s, "healthy", 2)).await;
    assert_eq!(receiver.count(), 0, "a failed reaction fired on healthy results");

    // Episode 1: nothing until three failed results in a row.
    target.set_status(500);
    let first = first_request_gated(&node, &receiver, "/failed", &monitor, |s| {
        is(s, "failed", 3) && s["episode"] == 1
    })
    .await;
    let key1 = check_request(&first, &monitor, &reaction, "failed", 1);
    assert_eq!(first.body["method"], "automatic");
    assert_eq!(first.body["monitor"]["name"], "shop front");
    assert!(first.body["reason"].as_str().is_some_and(|r| r.contains("500")), "{}", first.body);
    assert_eq!(first.header("x-team"), Some("ops"));

    let events = wait_for(secs(10), "the reaction event", || async {
        let events = node.events(&monitor).await;
        events.iter().any(|e| e["kind"] == "reaction").then_some(events)
    })
    .await;
    let fired = position(&events, "reaction event", |e| e["kind"] == "reaction");
    let changed = position(&events, "change to failed", |e| {
        e["kind"] == "status_change" && e["status"] == "failed"
    });
    assert!(fired < changed, "the reaction event must follow the change to failed: {events:?}");
    let (fired, changed) = (&events[fired], &events[changed]);
    assert_eq!(fired["reaction_id"], reaction.as_str());
    assert_eq!(fired["reaction_type"], "http-webhook");
    assert_eq!(fired["outcome"], "executed", "{fired}");
    assert_eq!(fired["episode"], 1);
    assert_eq!(changed["prev_status"], "healthy");
    assert_eq!(changed["streak"], 1);
    assert_eq!(changed["episode"], 1);
    assert_eq!(changed["method"], "automatic");
    // Results come at least a second apart, so the third failed one is >= 2 s after the first.
    let change_at = parse_time(changed["at"].as_str().unwrap());
    let decided_at = parse_time(first.body["at"].as_str().unwrap());
    assert!(
        seconds_between(change_at, decided_at) >= 1.9,
        "fired {}s after the change to failed; trigger 3 needs two more results",
        seconds_between(change_at, decided_at)
    );
    assert!(seconds_between(change_at, first.wall) >= 1.9, "request arrived too early");

    // The failure goes on: no second request in this episode.
    let at_fire = streak(&node.state(&monitor).await);
    node.wait_state(&monitor, secs(20), "4 more failed results", |s| is(s, "failed", at_fire + 4))
        .await;
    assert_eq!(receiver.count(), 1, "fired again in the same episode: {:?}", receiver.requests());

    // Recovery fires nothing (call_on failed); a new failure is episode 2 and fires again.
    target.set_status(200);
    node.wait_state(&monitor, secs(15), "recovery", |s| is(s, "healthy", 1)).await;
    target.set_status(500);
    let second = receiver.wait_count_to("/failed", 2, secs(20)).await;
    assert_eq!(second.len(), 2, "{second:?}");
    let key2 = check_request(&second[1], &monitor, &reaction, "failed", 2);
    assert_ne!(key1, key2, "a new episode must use a new idempotency key");
    let state = node.state(&monitor).await;
    assert_eq!(state["episode"], 2, "{state}");
    assert!(streak(&state) >= 3, "fired below the trigger: {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frequency_refires_while_the_failure_lasts() {
    let node = Node::start().await;
    let target = Target::start(500).await;
    let receiver = Receiver::start().await;
    let reaction =
        crate::common::webhook_reaction(&node, &receiver, "/again", 1, 2, "failed").await;
    let monitor = http_monitor(&node, "flaky api", &target, &[&reaction]).await;

    let first = receiver.wait_count_to("/again", 1, secs(15)).await.remove(0);
    // About 7 s of failure counted from the first firing, then recovery.
    tokio::time::sleep_until(tokio::time::Instant::from_std(first.at + Duration::from_secs(7)))
        .await;
    target.set_status(200);
    node.wait_state(&monitor, secs(15), "recovery", |s| is(s, "healthy", 1)).await;
    let state_at_recovery = node.state(&monitor).await;
    // Nothing more after the recovery (call_on failed).
    node.wait_state(&monitor, secs(15), "3 healthy results", |s| is(s, "healthy", 3)).await;

    let requests = receiver.requests_to("/again");
    let times: Vec<f64> =
        requests.iter().map(|r| r.at.duration_since(first.at).as_secs_f64()).collect();
    eprintln!("firings at {times:?} s after the first");
    assert!(
        (3..=4).contains(&requests.len()),
        "expected 3 or 4 firings in ~7 s of failure with frequency 2 s, got {} at {times:?}",
        requests.len()
    );
    let mut keys = HashSet::new();
    for pair in requests.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at).as_secs_f64();
        assert!(gap >= 1.75, "two firings {gap:.3}s apart (frequency 2 s): {times:?}");
        let decided = seconds_between(
            parse_time(pair[0].body["at"].as_str().unwrap()),
            parse_time(pair[1].body["at"].as_str().unwrap()),
        );
        assert!(decided >= 1.999, "firings decided {decided:.3}s apart: {times:?}");
    }
    for request in &requests {
        keys.insert(check_request(request, &monitor, &reaction, "failed", 1));
    }
    assert_eq!(keys.len(), requests.len(), "each re-firing needs its own idempotency key");
    assert_eq!(state_at_recovery["episode"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_reaction_fires_once_per_recovery_after_the_trigger_streak() {
    let node = Node::start().await;
    let flapping = Target::start(500).await;
    let steady = Target::start(200).await;
    let receiver = Receiver::start().await;
    let reaction =
        crate::common::webhook_reaction(&node, &receiver, "/recovered", 2, 0, "healthy").await;
    let monitor = http_monitor(&node, "db proxy", &flapping, &[&reaction]).await;
    let never_failed = http_monitor(&node, "steady", &steady, &[&reaction]).await;

    node.wait_state(&monitor, secs(15), "failed streak 3", |s| is(s, "failed", 3)).await;
    node.wait_state(&never_failed, secs(15), "healthy streak 3", |s| is(s, "healthy", 3)).await;
    assert_eq!(receiver.count(), 0, "a healthy reaction fired: {:?}", receiver.requests());

    flapping.set_status(200);
    let request =
        first_request_gated(&node, &receiver, "/recovered", &monitor, |s| is(s, "healthy", 2))
            .await;
    check_request(&request, &monitor, &reaction, "healthy", 1);
    assert_eq!(request.body["method"], "automatic");
    let events = wait_for(secs(10), "the reaction event", || async {
        let events = node.events(&monitor).await;
        events.iter().any(|e| e["kind"] == "reaction").then_some(events)
    })
    .await;
    let fired = position(&events, "reaction event", |e| e["kind"] == "reaction");
    let recovered = position(&events, "recovery", |e| {
        e["kind"] == "status_change" && e["status"] == "healthy" && e["prev_status"] == "failed"
    });
    assert!(fired < recovered, "{events:?}");
    assert_eq!(events[fired]["outcome"], "executed");
    let recovered_at = parse_time(events[recovered]["at"].as_str().unwrap());
    let decided_at = parse_time(request.body["at"].as_str().unwrap());
    assert!(
        seconds_between(recovered_at, decided_at) >= 0.9,
        "fired on the first healthy result; trigger 2 needs the second"
    );

    // More healthy results: no more requests, and never one for the monitor that never failed.
    let now = streak(&node.state(&monitor).await);
    node.wait_state(&monitor, secs(20), "4 more healthy results", |s| is(s, "healthy", now + 4))
        .await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests.iter().all(|r| r.body["monitor"]["id"] != never_failed.as_str()));
    let steady_state = node.state(&never_failed).await;
    assert!(is(&steady_state, "healthy", 6), "{steady_state}");
    assert_eq!(steady_state["episode"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_on_both_fires_on_failure_and_on_recovery() {
    let node = Node::start().await;
    let target = Target::start(200).await;
    let receiver = Receiver::start().await;
    let reaction = crate::common::webhook_reaction(&node, &receiver, "/both", 1, 0, "both").await;
    let monitor = http_monitor(&node, "mail relay", &target, &[&reaction]).await;
    node.wait_state(&monitor, secs(15), "healthy streak 3", |s| is(s, "healthy", 3)).await;
    assert_eq!(receiver.count(), 0, "fired for a monitor that never failed");

    target.set_status(503);
    let got = receiver.wait_count_to("/both", 1, secs(15)).await;
    let key_failed = check_request(&got[0], &monitor, &reaction, "failed", 1);
    node.wait_state(&monitor, secs(15), "failed streak 4", |s| is(s, "failed", 4)).await;
    assert_eq!(receiver.count(), 1, "{:?}", receiver.requests());

    target.set_status(200);
    let got = receiver.wait_count_to("/both", 2, secs(15)).await;
    let key_healthy = check_request(&got[1], &monitor, &reaction, "healthy", 1);
    assert_ne!(key_failed, key_healthy);
    node.wait_state(&monitor, secs(15), "healthy streak 4", |s| is(s, "healthy", 4)).await;
    assert_eq!(receiver.count(), 2, "{:?}", receiver.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_fail_fires_at_once_and_holds_until_a_manual_heal() {
    let node = Node::start().await;
    let target = Target::start(200).await;
    let receiver = Receiver::start().await;
    let on_fail = crate::common::webhook_reaction(&node, &receiver, "/down", 5, 0, "failed").await;
    let on_heal = crate::common::webhook_reaction(&node, &receiver, "/up", 1, 0, "healthy").await;
    let monitor = http_monitor(&node, "primary dc", &target, &[&on_fail, &on_heal]).await;
    node.wait_state(&monitor, secs(15), "healthy streak 2", |s| is(s, "healthy", 2)).await;

    let (status, failed) =
        node.post(&format!("/monitors/{monitor}/fail"), json!({"reason": "forced failover"})).await;
    assert_eq!(status, 200, "{failed}");
    let state = &failed["state"];
    assert_eq!(state["status"], "failed", "{failed}");
    assert_eq!(state["manual_hold"], true, "{failed}");
    assert_eq!(state["episode"], 1, "{failed}");
    assert_eq!(state["streak"], 1, "{failed}");
    // Trigger 5 does not matter for a manual failure: it fires at once.
    let got = receiver.wait_count_to("/down", 1, secs(5)).await;
    check_request(&got[0], &monitor, &on_fail, "failed", 1);
    assert_eq!(got[0].body["method"], "manual");
    assert_eq!(got[0].body["reason"], "forced failover");
    let events = node.events(&monitor).await;
    let change = &events[position(&events, "manual change", |e| {
        e["kind"] == "status_change" && e["status"] == "failed"
    })];
    assert_eq!(change["method"], "manual", "{change}");
    assert_eq!(change["reason"], "forced failover", "{change}");
    assert_eq!(change["prev_status"], "healthy", "{change}");

    // Automatic healthy results are recorded (last_check_at moves) but do not count.
    let seen = std::sync::Mutex::new(HashSet::new());
    let last_check_at = node.state(&monitor).await["last_check_at"].to_string();
    seen.lock().unwrap().insert(last_check_at);
    wait_until(secs(15), "two more automatic results", || async {
        let state = node.state(&monitor).await;
        assert_eq!(state["status"], "failed", "an automatic result cleared a manual fail: {state}");
        assert_eq!(state["manual_hold"], true, "{state}");
        assert_eq!(state["streak"], 1, "a held result was counted: {state}");
        let mut seen = seen.lock().unwrap();
        seen.insert(state["last_check_at"].to_string());
        seen.len() >= 3
    })
    .await;
    assert_eq!(receiver.count_to("/up"), 0, "healthy reaction fired during a manual hold");
    assert_eq!(receiver.count_to("/down"), 1);

    let (status, healed) =
        node.post(&format!("/monitors/{monitor}/heal"), json!({"reason": "back to primary"})).await;
    assert_eq!(status, 200, "{healed}");
    assert_eq!(healed["state"]["status"], "healthy", "{healed}");
    assert_eq!(healed["state"]["manual_hold"], false, "{healed}");
    let got = receiver.wait_count_to("/up", 1, secs(5)).await;
    check_request(&got[0], &monitor, &on_heal, "healthy", 1);
    assert_eq!(got[0].body["method"], "manual");
    let events = node.events(&monitor).await;
    let change = &events[position(&events, "manual heal", |e| {
        e["kind"] == "status_change" && e["status"] == "healthy" && e["prev_status"] == "failed"
    })];
    assert_eq!(change["method"], "manual", "{change}");

    // Automatic results count again after the heal; nothing fires twice.
    node.wait_state(&monitor, secs(15), "healthy streak 3", |s| is(s, "healthy", 3)).await;
    assert_eq!(receiver.count_to("/up"), 1);
    assert_eq!(receiver.count_to("/down"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejecting_receiver_gets_the_same_firing_retried_at_most_three_times() {
    let node = Node::start().await;
    let target = Target::start(500).await;
    let receiver = Receiver::start().await;
    receiver.set_status(500);
    let reaction = crate::common::webhook_reaction(&node, &receiver, "/busy", 1, 0, "failed").await;
    let monitor = http_monitor(&node, "queue", &target, &[&reaction]).await;

    let events = wait_for(secs(20), "the failed reaction outcome", || async {
        let events = node.events(&monitor).await;
        events.iter().any(|e| e["kind"] == "reaction").then_some(events)
    })
    .await;
    let outcome = &events[position(&events, "reaction event", |e| e["kind"] == "reaction")];
    assert_eq!(outcome["outcome"], "failed", "{outcome}");
    assert!(outcome["detail"].as_str().is_some_and(|d| d.contains("500")), "{outcome}");
    // The failure goes on; the episode's one firing is not repeated.
    let now = streak(&node.state(&monitor).await);
    node.wait_state(&monitor, secs(15), "3 more failed results", |s| is(s, "failed", now + 3))
        .await;
    let requests = receiver.requests_to("/busy");
    assert!(
        (2..=3).contains(&requests.len()),
        "expected the firing retried, at most 3 attempts in all; got {}: {requests:?}",
        requests.len()
    );
    let key = check_request(&requests[0], &monitor, &reaction, "failed", 1);
    for request in &requests {
        assert_eq!(
            request.header("idempotency-key"),
            Some(key.as_str()),
            "a retry changed its key"
        );
    }
}
