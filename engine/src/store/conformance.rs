//! The behaviour every [`Store`] backend must show, as a suite of async checks.
//!
//! Each check uses fresh ids and deletes what it created, so the suite runs on a store that
//! already holds data (a shared Redis, say). A backend's tests call [`run_all`] on a store
//! opened with a history limit of [`HISTORY_MAX_EVENTS`]. The checks panic with a message
//! that names the behaviour, like any test assertion.

use time::OffsetDateTime;

use super::{Store, Transition};
use crate::model::{
    CallOn, Event, EventKind, Method, Monitor, MonitorId, MonitorState, PluginSpec, Reaction,
    ReactionId, ReactionMemory, Status,
};

mod access;
mod brake;
pub use access::{
    audit_pages_newest_first_and_is_bounded, sample_token, tokens_create_find_list_delete,
};
pub use brake::destructive_budget_grants_up_to_its_limit_per_window;

/// The per-monitor history limit the store under test must be opened with.
pub const HISTORY_MAX_EVENTS: usize = 5;

/// Runs every conformance check against `store`, one after the other.
///
/// # Panics
/// Panics, naming the behaviour, when the store misbehaves or returns an error.
pub async fn run_all(store: &dyn Store) {
    monitor_put_get_replace_delete(store).await;
    monitor_list_is_ordered_and_pages(store).await;
    put_monitors_writes_a_batch(store).await;
    reaction_put_get_replace_delete(store).await;
    reaction_list_is_ordered_and_pages(store).await;
    state_round_trips(store).await;
    record_writes_state_and_events_together(store).await;
    record_many_writes_every_transition_in_order(store).await;
    put_states_writes_a_batch(store).await;
    events_page_newest_first(store).await;
    history_is_bounded_per_monitor(store).await;
    delete_monitor_removes_state_and_history(store).await;
    writes_for_unknown_or_deleted_monitors_are_dropped(store).await;
    unknown_ids_read_as_absent(store).await;
    notes_put_get_replace_delete(store).await;
    tokens_create_find_list_delete(store).await;
    audit_pages_newest_first_and_is_bounded(store).await;
    destructive_budget_grants_up_to_its_limit_per_window(store).await;
}

/// Notes round-trip, replace and delete; an unknown key reads as absent.
pub async fn notes_put_get_replace_delete(store: &dyn Store) {
    let key = format!("conformance/{}", MonitorId::generate());
    assert_eq!(store.get_note(&key).await.unwrap(), None);
    let first = serde_json::json!({"records": [{"id": "r1", "content": "192.0.2.1"}]});
    store.put_note(&key, &first).await.unwrap();
    assert_eq!(store.get_note(&key).await.unwrap(), Some(first));
    let second = serde_json::json!({"records": []});
    store.put_note(&key, &second).await.unwrap();
    assert_eq!(store.get_note(&key).await.unwrap(), Some(second));
    assert!(store.delete_note(&key).await.unwrap());
    assert!(!store.delete_note(&key).await.unwrap());
    assert_eq!(store.get_note(&key).await.unwrap(), None);
}

/// Returns a monitor definition with a fresh id.
pub fn sample_monitor(name: &str) -> Monitor {
    let check = serde_json::json!({"type": "tcp-check", "host": "127.0.0.1", "port": 22});
    let serde_json::Value::Object(check) = check else { unreachable!("a JSON object literal") };
    Monitor {
        id: MonitorId::generate(),
        name: name.to_owned(),
        check: PluginSpec(check),
        interval_secs: Some(30),
        reactions: vec![ReactionId::from("r1")],
        enabled: true,
        tags: vec!["conformance".into()],
        webhook_key: "key".into(),
    }
}

/// Returns a reaction definition with a fresh id.
pub fn sample_reaction(name: &str) -> Reaction {
    let action = serde_json::json!({"type": "http-webhook", "url": "http://127.0.0.1:9/"});
    let serde_json::Value::Object(action) = action else { unreachable!("a JSON object literal") };
    Reaction {
        id: ReactionId::generate(),
        name: name.to_owned(),
        action: PluginSpec(action),
        trigger: 3,
        frequency_secs: 600,
        call_on: CallOn::Both,
    }
}

/// Returns a state with every field set, `streak` distinguishing it.
pub fn sample_state(streak: u64) -> MonitorState {
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("a valid timestamp");
    let memory = ReactionMemory {
        failed_episode: 2,
        failed_at: Some(at),
        failed_firings: 1,
        healthy_episode: 1,
        last_fired_at: Some(at),
    };
    MonitorState {
        status: Status::Failed,
        streak,
        episode: 2,
        manual_hold: true,
        last_check_at: Some(at),
        last_change_at: Some(at),
        last_reason: Some("connection refused".into()),
        owner: Some("node-1".into()),
        last_duration_ms: Some(17),
        reactions: [(ReactionId::from("r1"), memory)].into_iter().collect(),
    }
}

/// Returns a status-change event for `monitor` with a fresh, time-ordered id.
pub fn sample_event(monitor: &MonitorId, streak: u64) -> Event {
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("a valid timestamp");
    let kind = EventKind::StatusChange {
        status: Status::Failed,
        prev_status: Status::Healthy,
        streak,
        episode: 1,
        method: Method::Automatic,
        node: "node-1".into(),
        reason: "connection refused".into(),
    };
    Event::new(monitor.clone(), at, kind)
}

async fn created_monitor(store: &dyn Store, name: &str) -> Monitor {
    let monitor = sample_monitor(name);
    store.put_monitor(&monitor).await.expect("put_monitor");
    monitor
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|event| event.id.as_str()).collect()
}

/// Checks put, get, replace and delete of a monitor definition.
pub async fn monitor_put_get_replace_delete(store: &dyn Store) {
    let mut monitor = created_monitor(store, "put-get").await;
    let got = store.get_monitor(&monitor.id).await.expect("get_monitor");
    assert_eq!(got.as_ref(), Some(&monitor), "get_monitor returns the monitor just put");
    monitor.name = "renamed".into();
    monitor.enabled = false;
    store.put_monitor(&monitor).await.expect("put_monitor (replace)");
    let got = store.get_monitor(&monitor.id).await.expect("get_monitor");
    assert_eq!(got.as_ref(), Some(&monitor), "put_monitor replaces an existing monitor");
    assert!(
        store.delete_monitor(&monitor.id).await.expect("delete_monitor"),
        "delete says existed"
    );
    let got = store.get_monitor(&monitor.id).await.expect("get_monitor");
    assert_eq!(got, None, "a deleted monitor is gone");
    let again = store.delete_monitor(&monitor.id).await.expect("delete_monitor");
    assert!(!again, "deleting a deleted monitor says it did not exist");
}

/// Checks that `put_monitors` creates and replaces many monitors at once.
pub async fn put_monitors_writes_a_batch(store: &dyn Store) {
    let mut batch: Vec<Monitor> = (0..3).map(|i| sample_monitor(&format!("batch-{i}"))).collect();
    store.put_monitors(&batch).await.expect("put_monitors");
    for monitor in &batch {
        let got = store.get_monitor(&monitor.id).await.expect("get_monitor");
        assert_eq!(got.as_ref(), Some(monitor), "put_monitors stores every monitor");
    }
    batch[1].name = "batch-renamed".into();
    store.put_monitors(&batch[1..2]).await.expect("put_monitors (replace)");
    let got = store.get_monitor(&batch[1].id).await.expect("get_monitor");
    assert_eq!(got.map(|m| m.name), Some("batch-renamed".into()), "put_monitors replaces");
    for monitor in &batch {
        store.delete_monitor(&monitor.id).await.expect("delete_monitor");
    }
}

/// Checks that monitors list in id order, strictly after the cursor, `limit` at a time.
pub async fn monitor_list_is_ordered_and_pages(store: &dyn Store) {
    let mut mine = Vec::new();
    for index in 0..5 {
        mine.push(created_monitor(store, &format!("list-{index}")).await.id);
    }
    mine.sort();
    let mut seen = Vec::new();
    let mut after: Option<MonitorId> = None;
    loop {
        let page = store.list_monitors(after.as_ref(), 2).await.expect("list_monitors");
        assert!(page.len() <= 2, "list_monitors returns at most `limit` items");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|monitor| monitor.id));
    }
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]), "monitors list in strict id order");
    let listed: Vec<_> = seen.iter().filter(|id| mine.contains(id)).cloned().collect();
    assert_eq!(listed, mine, "paging visits every monitor exactly once");
    let after_third = store.list_monitors(Some(&mine[2]), 100).await.expect("list_monitors");
    assert!(after_third.iter().all(|monitor| monitor.id > mine[2]), "strictly after the cursor");
    assert_eq!(after_third.first().map(|monitor| &monitor.id), Some(&mine[3]), "next id follows");
    let none = store.list_monitors(None, 0).await.expect("list_monitors");
    assert!(none.is_empty(), "a limit of 0 returns nothing");
    for id in &mine {
        store.delete_monitor(id).await.expect("delete_monitor");
    }
}

/// Checks put, get, replace and delete of a reaction definition.
pub async fn reaction_put_get_replace_delete(store: &dyn Store) {
    let mut reaction = sample_reaction("put-get");
    store.put_reaction(&reaction).await.expect("put_reaction");
    let got = store.get_reaction(&reaction.id).await.expect("get_reaction");
    assert_eq!(got.as_ref(), Some(&reaction), "get_reaction returns the reaction just put");
    reaction.trigger = 0;
    reaction.call_on = CallOn::Healthy;
    store.put_reaction(&reaction).await.expect("put_reaction (replace)");
    let got = store.get_reaction(&reaction.id).await.expect("get_reaction");
    assert_eq!(got.as_ref(), Some(&reaction), "put_reaction replaces an existing reaction");
    let existed = store.delete_reaction(&reaction.id).await.expect("delete_reaction");
    assert!(existed, "delete_reaction says the reaction existed");
    let got = store.get_reaction(&reaction.id).await.expect("get_reaction");
    assert_eq!(got, None, "a deleted reaction is gone");
    let again = store.delete_reaction(&reaction.id).await.expect("delete_reaction");
    assert!(!again, "deleting a deleted reaction says it did not exist");
}

/// Checks that reactions list in id order, strictly after the cursor, `limit` at a time.
pub async fn reaction_list_is_ordered_and_pages(store: &dyn Store) {
    let mut mine = Vec::new();
    for index in 0..5 {
        let reaction = sample_reaction(&format!("list-{index}"));
        store.put_reaction(&reaction).await.expect("put_reaction");
        mine.push(reaction.id);
    }
    mine.sort();
    let mut seen = Vec::new();
    let mut after: Option<ReactionId> = None;
    loop {
        let page = store.list_reactions(after.as_ref(), 2).await.expect("list_reactions");
        assert!(page.len() <= 2, "list_reactions returns at most `limit` items");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|reaction| reaction.id));
    }
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]), "reactions list in strict id order");
    let listed: Vec<_> = seen.iter().filter(|id| mine.contains(id)).cloned().collect();
    assert_eq!(listed, mine, "paging visits every reaction exactly once");
    for id in &mine {
        store.delete_reaction(id).await.expect("delete_reaction");
    }
}

/// Checks that a state written with `put_states` reads back equal, and shows in `load_states`.
pub async fn state_round_trips(store: &dyn Store) {
    let monitor = created_monitor(store, "state").await;
    let got = store.get_state(&monitor.id).await.expect("get_state");
    assert_eq!(got, None, "a new monitor has no state");
    let state = sample_state(7);
    store.put_states(&[(monitor.id.clone(), state.clone())]).await.expect("put_states");
    let got = store.get_state(&monitor.id).await.expect("get_state");
    assert_eq!(got.as_ref(), Some(&state), "get_state returns the state just written");
    let all = store.load_states().await.expect("load_states");
    let loaded = all.iter().find(|(id, _)| *id == monitor.id).map(|(_, state)| state);
    assert_eq!(loaded, Some(&state), "load_states includes the state");
    let default = MonitorState::default();
    store.put_states(&[(monitor.id.clone(), default.clone())]).await.expect("put_states");
    let got = store.get_state(&monitor.id).await.expect("get_state");
    assert_eq!(got, Some(default), "a later state replaces the earlier one");
    store.delete_monitor(&monitor.id).await.expect("delete_monitor");
}

/// Checks that `record_many` writes several monitors' transitions at once, later ones for the
/// same monitor winning, and drops those of unknown monitors.
pub async fn record_many_writes_every_transition_in_order(store: &dyn Store) {
    let first = created_monitor(store, "group-1").await;
    let second = created_monitor(store, "group-2").await;
    let unknown = MonitorId::generate();
    let event = |id: &MonitorId| sample_event(id, 1);
    let transitions = [
        Transition::new(first.id.clone(), sample_state(1), vec![event(&first.id)]),
        Transition::new(unknown.clone(), sample_state(9), vec![event(&unknown)]),
        Transition::new(second.id.clone(), sample_state(2), vec![event(&second.id)]),
        Transition::new(first.id.clone(), sample_state(3), vec![]),
    ];
    store.record_many(&transitions).await.expect("record_many");
    let got = store.get_state(&first.id).await.expect("get_state").map(|s| s.streak);
    assert_eq!(got, Some(3), "the later transition of a monitor wins");
    let got = store.get_state(&second.id).await.expect("get_state").map(|s| s.streak);
    assert_eq!(got, Some(2), "every monitor's transition is written");
    for id in [&first.id, &second.id] {
        let events = store.list_events(id, None, 10).await.expect("list_events");
        assert_eq!(events.len(), 1, "each monitor's event is written once");
    }
    assert_eq!(store.get_state(&unknown).await.expect("get_state"), None, "unknown dropped");
    for id in [&first.id, &second.id] {
        store.delete_monitor(id).await.expect("delete_monitor");
    }
}

/// Checks that `record` writes the state and every event of a transition together.
pub async fn record_writes_state_and_events_together(store: &dyn Store) {
    let monitor = created_monitor(store, "record").await;
    let events = [sample_event(&monitor.id, 1), sample_event(&monitor.id, 2)];
    let state = sample_state(1);
    store.record(&monitor.id, &state, &events).await.expect("record");
    let got = store.get_state(&monitor.id).await.expect("get_state");
    assert_eq!(got.as_ref(), Some(&state), "record writes the state");
    let listed = store.list_events(&monitor.id, None, 10).await.expect("list_events");
    assert_eq!(listed, vec![events[1].clone(), events[0].clone()], "record writes the events");
    store.record(&monitor.id, &sample_state(2), &[]).await.expect("record without events");
    let got = store.get_state(&monitor.id).await.expect("get_state");
    assert_eq!(got.map(|state| state.streak), Some(2), "record without events writes the state");
    store.delete_monitor(&monitor.id).await.expect("delete_monitor");
}

/// Checks that `put_states` writes many monitors' states in one call.
pub async fn put_states_writes_a_batch(store: &dyn Store) {
    let first = created_monitor(store, "batch-1").await;
    let second = created_monitor(store, "batch-2").await;
    let batch = [(first.id.clone(), sample_state(10)), (second.id.clone(), sample_state(20))];
    store.put_states(&batch).await.expect("put_states");
    for (id, state) in &batch {
        let got = store.get_state(id).await.expect("get_state");
        assert_eq!(got.as_ref(), Some(state), "put_states writes every state of the batch");
    }
    store.put_states(&[]).await.expect("an empty batch is fine");
    let twice = [(first.id.clone(), sample_state(30)), (first.id.clone(), sample_state(31))];
    store.put_states(&twice).await.expect("put_states (a monitor twice)");
    let got = store.get_state(&first.id).await.expect("get_state");
    assert_eq!(got, Some(sample_state(31)), "a monitor twice in a batch keeps its last state");
    store.delete_monitor(&first.id).await.expect("delete_monitor");
    store.delete_monitor(&second.id).await.expect("delete_monitor");
}

/// Checks that events list newest first and page with a `before` cursor, per monitor.
pub async fn events_page_newest_first(store: &dyn Store) {
    let monitor = created_monitor(store, "events").await;
    let other = created_monitor(store, "events-other").await;
    let events: Vec<Event> = (0..4).map(|streak| sample_event(&monitor.id, streak)).collect();
    store.append_events(&events[..2]).await.expect("append_events");
    store.append_events(&[sample_event(&other.id, 9)]).await.expect("append_events (other)");
    store.append_events(&events[2..]).await.expect("append_events");
    let newest_first: Vec<&str> = events.iter().rev().map(|event| event.id.as_str()).collect();
    let all = store.list_events(&monitor.id, None, 100).await.expect("list_events");
    assert_eq!(ids(&all), newest_first, "events list newest first, only this monitor's");
    assert_eq!(all[0], events[3], "events read back equal to what was appended");
    let first = store.list_events(&monitor.id, None, 3).await.expect("list_events");
    assert_eq!(ids(&first), newest_first[..3], "the first page holds the newest `limit` events");
    let cursor = first.last().map(|event| event.id.as_str());
    let second = store.list_events(&monitor.id, cursor, 3).await.expect("list_events");
    assert_eq!(ids(&second), newest_first[3..], "the next page starts strictly before the cursor");
    let oldest = Some(events[0].id.as_str());
    let past_end = store.list_events(&monitor.id, oldest, 3).await.expect("list_events");
    assert!(past_end.is_empty(), "nothing comes before the oldest event");
    let none = store.list_events(&monitor.id, None, 0).await.expect("list_events");
    assert!(none.is_empty(), "a limit of 0 returns nothing");
    store.delete_monitor(&monitor.id).await.expect("delete_monitor");
    store.delete_monitor(&other.id).await.expect("delete_monitor");
}

/// Checks that at most [`HISTORY_MAX_EVENTS`] events are kept per monitor, oldest dropped,
/// whether they arrive one by one, in a batch, or through `record`.
pub async fn history_is_bounded_per_monitor(store: &dyn Store) {
    let monitor = created_monitor(store, "retention").await;
    let other = created_monitor(store, "retention-other").await;
    let events: Vec<Event> = (0..12).map(|streak| sample_event(&monitor.id, streak)).collect();
    let other_event = sample_event(&other.id, 0);
    store.append_events(std::slice::from_ref(&other_event)).await.expect("append_events");
    for event in &events[..4] {
        store.append_events(std::slice::from_ref(event)).await.expect("append_events");
    }
    store.append_events(&events[4..9]).await.expect("append_events (batch)");
    store.record(&monitor.id, &sample_state(1), &events[9..]).await.expect("record");
    let kept = store.list_events(&monitor.id, None, 100).await.expect("list_events");
    let newest: Vec<&str> =
        events.iter().rev().take(HISTORY_MAX_EVENTS).map(|event| event.id.as_str()).collect();
    assert_eq!(ids(&kept), newest, "only the newest HISTORY_MAX_EVENTS events are kept");
    let others = store.list_events(&other.id, None, 100).await.expect("list_events");
    assert_eq!(others, vec![other_event], "retention of one monitor leaves others alone");
    store.delete_monitor(&monitor.id).await.expect("delete_monitor");
    store.delete_monitor(&other.id).await.expect("delete_monitor");
}

/// Checks that `delete_monitor` removes the definition, the state and the whole history, and
/// that a monitor re-created with the same id starts empty.
pub async fn delete_monitor_removes_state_and_history(store: &dyn Store) {
    let monitor = created_monitor(store, "delete").await;
    let max = HISTORY_MAX_EVENTS as u64;
    let events: Vec<Event> = (0..max).map(|streak| sample_event(&monitor.id, streak)).collect();
    store.record(&monitor.id, &sample_state(3), &events).await.expect("record");
    assert!(store.delete_monitor(&monitor.id).await.expect("delete_monitor"), "it existed");
    let state = store.get_state(&monitor.id).await.expect("get_state");
    assert_eq!(state, None, "delete_monitor removes the state");
    let all = store.load_states().await.expect("load_states");
    assert!(all.iter().all(|(id, _)| *id != monitor.id), "load_states no longer has it");
    let history = store.list_events(&monitor.id, None, 100).await.expect("list_events");
    assert!(history.is_empty(), "delete_monitor removes the history");
    store.put_monitor(&monitor).await.expect("put_monitor (re-create)");
    let state = store.get_state(&monitor.id).await.expect("get_state");
    assert_eq!(state, None, "a re-created monitor starts without state");
    let history = store.list_events(&monitor.id, None, 100).await.expect("list_events");
    assert!(history.is_empty(), "a re-created monitor starts without history");
    let fresh: Vec<Event> = (0..max).map(|streak| sample_event(&monitor.id, streak)).collect();
    store.append_events(&fresh).await.expect("append_events");
    let history = store.list_events(&monitor.id, None, 100).await.expect("list_events");
    assert_eq!(history.len(), HISTORY_MAX_EVENTS, "a re-created monitor's history counts from 0");
    store.delete_monitor(&monitor.id).await.expect("delete_monitor");
}

/// Checks that state and event writes for a monitor without a definition are dropped, so a
/// late write after a delete never resurrects anything.
pub async fn writes_for_unknown_or_deleted_monitors_are_dropped(store: &dyn Store) {
    let unknown = MonitorId::generate();
    let deleted = created_monitor(store, "late-writes").await;
    let kept = created_monitor(store, "kept").await;
    // A state stored before the delete: the delete takes it away, and a late write must not
    // mistake the monitor for one that still has a state.
    store.put_states(&[(deleted.id.clone(), sample_state(9))]).await.expect("put_states");
    store.delete_monitor(&deleted.id).await.expect("delete_monitor");
    for id in [&unknown, &deleted.id] {
        let event = sample_event(id, 1);
        store.record(id, &sample_state(1), std::slice::from_ref(&event)).await.expect("record");
        store.put_states(&[(id.clone(), sample_state(2))]).await.expect("put_states");
        store.append_events(&[sample_event(id, 3)]).await.expect("append_events");
        let state = store.get_state(id).await.expect("get_state");
        assert_eq!(state, None, "a state write for a missing monitor is dropped");
        let events = store.list_events(id, None, 100).await.expect("list_events");
        assert!(events.is_empty(), "an event write for a missing monitor is dropped");
        let monitor = store.get_monitor(id).await.expect("get_monitor");
        assert_eq!(monitor, None, "a late write does not resurrect the monitor");
        let all = store.load_states().await.expect("load_states");
        assert!(all.iter().all(|(listed, _)| listed != id), "load_states omits it");
    }
    let mixed = [(deleted.id.clone(), sample_state(4)), (kept.id.clone(), sample_state(5))];
    store.put_states(&mixed).await.expect("put_states (mixed batch)");
    let state = store.get_state(&kept.id).await.expect("get_state");
    assert_eq!(state.map(|state| state.streak), Some(5), "existing monitors in a batch are kept");
    let events = [sample_event(&deleted.id, 6), sample_event(&kept.id, 7)];
    store.append_events(&events).await.expect("append_events (mixed batch)");
    let history = store.list_events(&kept.id, None, 100).await.expect("list_events");
    assert_eq!(history, vec![events[1].clone()], "existing monitors' events in a batch are kept");
    assert_eq!(store.get_state(&deleted.id).await.expect("get_state"), None, "still dropped");
    store.delete_monitor(&kept.id).await.expect("delete_monitor");
}

/// Checks that reading, paging or deleting ids that never existed gives `None`, empty or
/// `false`, not an error.
pub async fn unknown_ids_read_as_absent(store: &dyn Store) {
    let monitor = MonitorId::generate();
    let reaction = ReactionId::generate();
    assert_eq!(store.get_monitor(&monitor).await.expect("get_monitor"), None, "no monitor");
    assert_eq!(store.get_state(&monitor).await.expect("get_state"), None, "no state");
    let events = store.list_events(&monitor, None, 10).await.expect("list_events");
    assert!(events.is_empty(), "no events");
    let events = store.list_events(&monitor, Some("zzzzzzzz"), 10).await.expect("list_events");
    assert!(events.is_empty(), "no events before an unknown cursor");
    assert!(!store.delete_monitor(&monitor).await.expect("delete_monitor"), "nothing deleted");
    assert_eq!(store.get_reaction(&reaction).await.expect("get_reaction"), None, "no reaction");
    assert!(!store.delete_reaction(&reaction).await.expect("delete_reaction"), "nothing deleted");
}

/// Checks that a store holding the corrupt monitor `corrupt` still writes and reads other
/// monitors and can delete the corrupt one. Backends' own tests call it after corrupting a
/// record, which the shared suite cannot do.
///
/// # Panics
/// Panics, naming the behaviour, when the store misbehaves.
pub async fn a_corrupt_monitor_does_not_poison_the_rest(store: &dyn Store, corrupt: &MonitorId) {
    let other = sample_monitor("healthy neighbour");
    store.put_monitor(&other).await.expect("put_monitor next to a corrupt record");
    let got = store.get_monitor(&other.id).await.expect("get_monitor next to a corrupt record");
    assert_eq!(got, Some(other), "a corrupt record does not poison its neighbours");
    let deleted = store.delete_monitor(corrupt).await.expect("delete a corrupt monitor");
    assert!(deleted, "a corrupt monitor can be deleted");
}
