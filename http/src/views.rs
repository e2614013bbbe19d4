//! JSON shapes of API.md: what goes out (views) and the paging query.

use std::collections::HashMap;

use cloudroutes_actors::{MonitorView, ReactionView};
use cloudroutes_engine::MonitorState;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;

/// Default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size.
pub const MAX_LIMIT: usize = 1_000;

/// Returns `(limit, cursor)` from a query string map.
///
/// # Errors
/// 400 naming `limit` when it is not a number from 1 to 1000, or `cursor` when it is too long.
pub fn paging(query: &HashMap<String, String>) -> Result<(usize, Option<String>), ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("must be a number from 1 to {MAX_LIMIT}"),
                ));
            }
        },
    };
    let cursor = query.get("cursor").filter(|c| !c.is_empty()).cloned();
    if cursor.as_ref().is_some_and(|c| c.len() > 128) {
        return Err(ApiError::invalid("cursor", "is not a cursor this API returned"));
    }
    Ok((limit, cursor))
}

/// Refuses query parameters other than `allowed`, as bodies refuse unknown fields: a typo
/// (`?stauts=failed`) must not silently list everything.
///
/// # Errors
/// 400 `invalid_field` naming the first unknown parameter.
pub fn known_params(query: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&String> =
        query.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
    unknown.sort();
    match unknown.first() {
        None => Ok(()),
        Some(name) => Err(ApiError::invalid(
            name.as_str(),
            format!("is not a query parameter here; use {}", allowed.join(", ")),
        )),
    }
}

/// Returns a timestamp as RFC 3339, or null.
pub fn rfc3339(at: Option<OffsetDateTime>) -> Value {
    at.and_then(|at| at.format(&Rfc3339).ok()).map_or(Value::Null, Value::String)
}

/// Returns the `state` object of a monitor.
pub fn state(state: &MonitorState) -> Value {
    json!({
        "status": state.status.as_str(),
        "streak": state.streak,
        "episode": state.episode,
        "manual_hold": state.manual_hold,
        "last_check_at": rfc3339(state.last_check_at),
        "last_change_at": rfc3339(state.last_change_at),
        "last_reason": state.last_reason,
        "owner": state.owner,
        "last_duration_ms": state.last_duration_ms,
    })
}

/// Returns a monitor as API.md shows it; webhook-driven monitors carry their `webhook_url`.
pub fn monitor(view: &MonitorView, public_url: &str) -> Value {
    let m = &view.monitor;
    let mut out = json!({
        "id": m.id,
        "name": m.name,
        "check": cloudroutes_checks::redact(&m.check),
        "interval_secs": m.interval_secs,
        "reactions": m.reactions,
        "enabled": m.enabled,
        "tags": m.tags,
        "state": state(&view.state),
    });
    if m.interval_secs.is_none() {
        out["webhook_url"] = Value::String(format!(
            "{}/api/v1/webhooks/{}/{}",
            public_url.trim_end_matches('/'),
            m.id,
            m.webhook_key
        ));
    }
    out
}

/// Returns a reaction as API.md shows it, secrets as `"***"`.
pub fn reaction(view: &ReactionView) -> Value {
    let r = &view.reaction;
    json!({
        "id": r.id,
        "name": r.name,
        "action": cloudroutes_reactions::redact(&r.action),
        "trigger": r.trigger,
        "frequency_secs": r.frequency_secs,
        "call_on": r.call_on,
        "last_run_at": rfc3339(view.last_run_at),
    })
}

/// Returns a page as `{"items": [...], "next_cursor": ...}`.
pub fn page(items: Vec<Value>, next_cursor: Option<String>) -> Value {
    json!({"items": items, "next_cursor": next_cursor})
}
