//! `apply -f FILE`: make the node hold what a manifest declares, matched by name.
//!
//! First a plan: what to create, what to change (with a field-by-field diff) and, with
//! `--prune`, what to delete. `--dry-run` prints the plan and stops; otherwise it is carried
//! out in an order that never leaves a monitor naming a missing reaction: reactions first,
//! then monitors, then deletions of monitors, then of reactions. Secret fields read back as
//! `"***"`, so they cannot be compared: an item whose other fields match is unchanged unless
//! `--update-secrets` asks to send its secrets again.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::client::{Client, percent_encode};
use super::manifest::{Manifest, text};

/// What a plan does to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// The node has no item of this name.
    Create,
    /// The node's item differs.
    Update,
    /// The file no longer names the node's item (`--prune`).
    Delete,
}

impl Action {
    fn label(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
    fn sign(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Delete => '-',
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Change {
    pub(super) action: Action,
    /// `monitor` or `reaction`.
    pub(super) kind: &'static str,
    pub(super) name: String,
    /// The node's id, for updates and deletions.
    pub(super) id: Option<String>,
    /// The definition to send (monitors name their reactions by name here).
    pub(super) body: Map<String, Value>,
    /// `field: old -> new` lines, for updates.
    pub(super) fields: Vec<String>,
}

/// Everything `apply` would do.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Plan {
    pub(super) changes: Vec<Change>,
    pub(super) unchanged: usize,
    /// Items on the node that the file does not name, kept because `--prune` was not given.
    pub(super) kept: usize,
}

/// The fields `apply` owns on each kind, with the value the API assumes when one is left out
/// (`None`: the node picks, so an absent field is not compared).
fn owned_fields(kind: &str) -> Vec<(&'static str, Option<Value>)> {
    if kind == "monitor" {
        vec![
            ("check", None),
            ("interval_secs", None),
            ("reactions", Some(json!([]))),
            ("enabled", Some(json!(true))),
            ("tags", Some(json!([]))),
        ]
    } else {
        vec![
            ("action", None),
            ("trigger", Some(json!(0))),
            ("frequency_secs", Some(json!(0))),
            ("call_on", Some(json!("failed"))),
        ]
    }
}

/// Compares the file with what the node holds (`current`, API items; monitors' reactions
/// already turned into names).
pub(super) fn plan(
    manifest: &Manifest,
    current_reactions: &[Value],
    current_monitors: &[Value],
    prune: bool,
    update_secrets: bool,
) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    for (kind, wanted, current) in [
        ("reaction", &manifest.reactions, current_reactions),
        ("monitor", &manifest.monitors, current_monitors),
    ] {
        let by_name = index_by_name(kind, current)?;
        for item in wanted {
            let name = text(&item["name"]);
            let Some(existing) = by_name.get(name.as_str()) else {
                plan.changes.push(change(Action::Create, kind, name, None, item.clone()));
                continue;
            };
            let (fields, has_secrets) = diff(kind, item, existing);
            if fields.is_empty() && !(update_secrets && has_secrets) {
                plan.unchanged += 1;
                continue;
            }
            let fields = if fields.is_empty() {
                vec!["secret fields sent again".to_owned()]
            } else {
                fields
            };
            let id = existing["id"].as_str().map(str::to_owned);
            let mut update = change(Action::Update, kind, name, id, item.clone());
            update.fields = fields;
            plan.changes.push(update);
        }
        let named: Vec<&str> = wanted.iter().filter_map(|item| item["name"].as_str()).collect();
        for item in current.iter().filter(|c| !named.contains(&c["name"].as_str().unwrap_or(""))) {
            if prune {
                let id = item["id"].as_str().map(str::to_owned);
                plan.changes.push(change(
                    Action::Delete,
                    kind,
                    text(&item["name"]),
                    id,
                    Map::new(),
                ));
            } else {
                plan.kept += 1;
            }
        }
    }
    check_references(manifest, current_reactions, &plan)?;
    // Deletions go last, monitors before the reactions they may name.
    plan.changes.sort_by_key(|c| match (c.action, c.kind) {
        (Action::Delete, "monitor") => 1,
        (Action::Delete, _) => 2,
        _ => 0,
    });
    Ok(plan)
}

fn change(
    action: Action,
    kind: &'static str,
    name: String,
    id: Option<String>,
    body: Map<String, Value>,
) -> Change {
    Change { action, kind, name, id, body, fields: Vec::new() }
}

fn index_by_name<'a>(
    kind: &str,
    items: &'a [Value],
) -> anyhow::Result<HashMap<&'a str, &'a Value>> {
    let mut by_name: HashMap<&str, &Value> = HashMap::new();
    for item in items {
        let name = item["name"].as_str().unwrap_or_default();
        if let Some(other) = by_name.insert(name, item) {
            bail!(
                "the node has two {kind}s named \"{name}\" ({} and {}): apply matches by name, so rename or delete one first",
                text(&other["id"]),
                text(&item["id"])
            );
        }
    }
    Ok(by_name)
}

/// Every reaction a monitor names must exist after the plan runs.
fn check_references(manifest: &Manifest, current: &[Value], plan: &Plan) -> anyhow::Result<()> {
    let deleted = |name: &str| {
        plan.changes
            .iter()
            .any(|c| c.action == Action::Delete && c.kind == "reaction" && c.name == name)
    };
    for monitor in &manifest.monitors {
        for wanted in monitor.get("reactions").and_then(Value::as_array).into_iter().flatten() {
            let wanted = text(wanted);
            let in_file = manifest.reactions.iter().any(|r| r["name"] == wanted.as_str());
            let on_node = current.iter().any(|r| r["name"] == wanted.as_str()) && !deleted(&wanted);
            if !in_file && !on_node {
                bail!(
                    "monitor \"{}\" names reaction \"{wanted}\", which is neither in the file nor on the node",
                    text(&monitor["name"])
                );
            }
        }
    }
    Ok(())
}

/// The owned fields that differ, as `field: old -> new` lines, and whether the node's item
/// holds secrets the file sets (they read back as `"***"` and cannot be compared).
fn diff(kind: &str, wanted: &Map<String, Value>, existing: &Value) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut secrets = false;
    for (field, default) in owned_fields(kind) {
        let new = match (wanted.get(field), default) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => default,
            // Left to the node (a default it chooses, such as a monitor's interval).
            (None, None) => continue,
        };
        let old = existing.get(field).cloned().unwrap_or(Value::Null);
        compare(field, &old, &new, &mut lines, &mut secrets);
    }
    (lines, secrets)
}

fn compare(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>, secrets: &mut bool) {
    match (old, new) {
        (Value::String(redacted), _) if redacted == "***" => *secrets |= new != old,
        (Value::Object(old), Value::Object(new)) => {
            let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for key in keys {
                let (o, n) =
                    (old.get(key).unwrap_or(&Value::Null), new.get(key).unwrap_or(&Value::Null));
                compare(&format!("{path}.{key}"), o, n, lines, secrets);
            }
        }
        _ if old != new => lines.push(format!("{path}: {} -> {}", shown(old), shown(new))),
        _ => {}
    }
}

fn shown(value: &Value) -> String {
    let text = if value.is_null() { "(unset)".to_owned() } else { value.to_string() };
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(79).collect::<String>())
    } else {
        text
    }
}

/// Turns the node's monitors' reaction ids into names, as the file writes them.
pub(super) fn with_reaction_names(monitors: &mut [Value], reactions: &[Value]) {
    let names: BTreeMap<&str, &str> =
        reactions.iter().filter_map(|r| Some((r["id"].as_str()?, r["name"].as_str()?))).collect();
    for monitor in monitors {
        if let Some(Value::Array(ids)) = monitor.get_mut("reactions") {
            for id in ids {
                if let Some(name) = id.as_str().and_then(|id| names.get(id)) {
                    *id = Value::String((*name).to_owned());
                }
            }
        }
    }
}

/// Carries out `plan`; returns the steps done. Stops at the first refusal, saying what was
/// already done.
pub(super) async fn execute(
    client: &Client,
    plan: &Plan,
    current: &[Value],
) -> anyhow::Result<usize> {
    use reqwest::Method;
    let mut ids: HashMap<String, String> = current
        .iter()
        .filter_map(|r| Some((r["name"].as_str()?.to_owned(), r["id"].as_str()?.to_owned())))
        .collect();
    for (done, step) in plan.changes.iter().enumerate() {
        let collection = format!("/api/v1/{}s", step.kind);
        let mut body = step.body.clone();
        if let Some(Value::Array(names)) = body.get_mut("reactions") {
            for name in names {
                let id = ids
                    .get(&text(name))
                    .with_context(|| format!("reaction \"{}\" has no id", text(name)))?;
                *name = Value::String(id.clone());
            }
        }
        let body = Value::Object(body);
        let one = |id: &Option<String>| {
            format!("{collection}/{}", percent_encode(id.as_deref().unwrap_or("")))
        };
        let answer = match step.action {
            Action::Create => client.send(Method::POST, &collection, Some(&body)).await,
            Action::Update => client.send(Method::PUT, &one(&step.id), Some(&body)).await,
            Action::Delete => client.send(Method::DELETE, &one(&step.id), None).await,
        }
        .with_context(|| {
            format!(
                "cannot {} {} \"{}\" ({done} of {} changes were made)",
                step.action.label(),
                step.kind,
                step.name,
                plan.changes.len()
            )
        })?;
        if step.kind == "reaction" && step.action == Action::Create {
            ids.insert(step.name.clone(), text(&answer["id"]));
        }
    }
    Ok(plan.changes.len())
}

/// The plan for people: one line per change, indented field diffs, then a summary.
pub(super) fn render(plan: &Plan, dry_run: bool) -> String {
    let mut out = String::new();
    for change in &plan.changes {
        out.push_str(&format!(
            "{} {} \"{}\" ({})\n",
            change.action.sign(),
            change.kind,
            change.name,
            change.action.label()
        ));
        for line in &change.fields {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out.push_str(&summary(plan, dry_run));
    out
}

fn summary(plan: &Plan, dry_run: bool) -> String {
    let count = |action| plan.changes.iter().filter(|c| c.action == action).count();
    let mut line = format!(
        "{}: {} to create, {} to change, {} to delete, {} unchanged",
        if dry_run { "dry run" } else { "applied" },
        count(Action::Create),
        count(Action::Update),
        count(Action::Delete),
        plan.unchanged
    );
    if plan.kept > 0 {
        line.push_str(&format!(
            "; {} on the node not in the file (kept; --prune deletes them)",
            plan.kept
        ));
    }
    if dry_run {
        line.push_str("; nothing was changed");
    }
    line.push('\n');
    line
}

/// The plan for scripts.
pub(super) fn to_json(plan: &Plan, dry_run: bool) -> Value {
    let count = |action| plan.changes.iter().filter(|c| c.action == action).count();
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| json!({"action": c.action.label(), "kind": c.kind, "name": c.name, "id": c.id, "fields": c.fields}))
        .collect();
    json!({
        "dry_run": dry_run,
        "changes": changes,
        "summary": {"create": count(Action::Create), "update": count(Action::Update),
                    "delete": count(Action::Delete), "unchanged": plan.unchanged, "kept": plan.kept},
    })
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
