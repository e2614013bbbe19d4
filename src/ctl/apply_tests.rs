use serde_json::{Map, Value, json};

use super::{Action, plan, render, with_reaction_names};
use crate::ctl::manifest::Manifest;

fn items(value: Value) -> Vec<Map<String, Value>> {
    value.as_array().expect("list").iter().map(|v| v.as_object().expect("object").clone()).collect()
}

fn node() -> (Vec<Value>, Vec<Value>) {
    let reactions = vec![
        json!({"id": "R1", "name": "page ops", "action": {"type": "stathat", "ezkey": "***", "stat": "a"},
               "trigger": 0, "frequency_secs": 0, "call_on": "failed", "last_run_at": null}),
        json!({"id": "R2", "name": "old hook", "action": {"type": "http-webhook", "url": "http://a/"},
               "trigger": 0, "frequency_secs": 0, "call_on": "failed", "last_run_at": null}),
    ];
    let mut monitors = vec![json!({
        "id": "M1", "name": "shop", "check": {"type": "tcp-check", "host": "a", "port": 80},
        "interval_secs": 60, "reactions": ["R1"], "enabled": true, "tags": [], "state": {},
    })];
    with_reaction_names(&mut monitors, &reactions);
    (reactions, monitors)
}

fn manifest(reactions: Value, monitors: Value) -> Manifest {
    Manifest { reactions: items(reactions), monitors: items(monitors) }
}

#[test]
fn the_same_definitions_plan_nothing_and_secrets_count_as_equal() {
    let (reactions, monitors) = node();
    let wanted = manifest(
        json!([{"name": "page ops", "action": {"type": "stathat", "ezkey": "real", "stat": "a"}}]),
        json!([{"name": "shop", "check": {"type": "tcp-check", "host": "a", "port": 80}, "reactions": ["page ops"]}]),
    );
    let quiet = plan(&wanted, &reactions, &monitors, false, false).expect("plan");
    assert!(quiet.changes.is_empty(), "{quiet:?}");
    assert_eq!((quiet.unchanged, quiet.kept), (2, 1));
    let resend = plan(&wanted, &reactions, &monitors, false, true).expect("plan");
    assert_eq!(resend.changes.len(), 1);
    assert_eq!(resend.changes[0].fields, ["secret fields sent again"]);
}

#[test]
fn changes_creations_and_prunes_are_planned_in_a_safe_order() {
    let (reactions, monitors) = node();
    let wanted = manifest(
        json!([{"name": "new hook", "action": {"type": "http-webhook", "url": "http://b/"}}]),
        json!([{"name": "shop", "check": {"type": "tcp-check", "host": "b", "port": 80},
                "interval_secs": 30, "reactions": ["new hook"], "tags": ["x"]}]),
    );
    let plan = plan(&wanted, &reactions, &monitors, true, false).expect("plan");
    let steps: Vec<(Action, &str, &str)> =
        plan.changes.iter().map(|c| (c.action, c.kind, c.name.as_str())).collect();
    assert_eq!(
        steps,
        [
            (Action::Create, "reaction", "new hook"),
            (Action::Update, "monitor", "shop"),
            (Action::Delete, "reaction", "page ops"),
            (Action::Delete, "reaction", "old hook"),
        ]
    );
    let update = &plan.changes[1];
    assert_eq!(update.id.as_deref(), Some("M1"));
    for line in ["check.host: \"a\" -> \"b\"", "interval_secs: 60 -> 30", "tags: [] -> [\"x\"]"] {
        assert!(update.fields.iter().any(|f| f == line), "{line} in {:?}", update.fields);
    }
    let shown = render(&plan, true);
    assert!(shown.contains("+ reaction \"new hook\" (create)"), "{shown}");
    assert!(
        shown.contains("dry run: 1 to create, 1 to change, 2 to delete, 0 unchanged"),
        "{shown}"
    );
}

#[test]
fn a_reference_to_a_reaction_that_will_not_exist_is_refused() {
    let (reactions, monitors) = node();
    let wanted = manifest(
        json!([]),
        json!([{"name": "shop", "check": {"type": "tcp-check"}, "reactions": ["page ops"]}]),
    );
    // Kept without --prune, so the name resolves on the node.
    assert!(plan(&wanted, &reactions, &monitors, false, false).is_ok());
    let error = plan(&wanted, &reactions, &monitors, true, false).expect_err("pruned away");
    assert!(error.to_string().contains("names reaction \"page ops\""), "{error}");
    let mut twins = reactions.clone();
    twins.push(json!({"id": "R3", "name": "page ops"}));
    let error = plan(&wanted, &twins, &monitors, false, false).expect_err("two of a name");
    assert!(error.to_string().contains("two reactions named \"page ops\""), "{error}");
}
