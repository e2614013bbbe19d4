//! `/api/v1/monitors`: CRUD, run-now, manual fail/heal, history.

use std::collections::HashMap;

use bytes::Bytes;
use cloudroutes_actors::{MonitorDraft, MonitorFilter};
use cloudroutes_engine::{MonitorId, PluginSpec, ReactionId, Status};
use serde::Deserialize;
use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use crate::ApiState;
use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, respond};
use crate::views;

/// A monitor as a caller writes it; read-only fields (`id`, `state`, `webhook_url`) are
/// accepted so a definition read from the API can be written back.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorIn {
    name: String,
    check: serde_json::Map<String, Value>,
    #[serde(default)]
    interval_secs: Option<u32>,
    #[serde(default)]
    reactions: Vec<String>,
    #[serde(default = "enabled_default")]
    enabled: bool,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    state: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    webhook_url: Option<Value>,
}

/// Longest name search (`q`) the list takes: a monitor name is at most 200 characters.
const MAX_QUERY_CHARS: usize = 200;

fn enabled_default() -> bool {
    true
}

impl MonitorIn {
    fn into_draft(self) -> MonitorDraft {
        MonitorDraft {
            name: self.name,
            check: PluginSpec(self.check),
            interval_secs: self.interval_secs,
            reactions: self.reactions.into_iter().map(ReactionId::from).collect(),
            enabled: self.enabled,
            tags: self.tags,
        }
    }
}

/// An optional body for manual fail/heal.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualIn {
    #[serde(default)]
    reason: Option<String>,
}

/// Largest body of a manual fail/heal (`{"reason": …}`, at most 1000 characters).
pub const MANUAL_BODY_LIMIT: u64 = 8 * 1024;

/// Returns the monitor routes.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let limit = api.body_limit;
    let base = || warp::path!("api" / "v1" / "monitors");
    let one = || warp::path!("api" / "v1" / "monitors" / String);
    let action = |name: &'static str| {
        warp::path("api")
            .and(warp::path("v1"))
            .and(warp::path("monitors"))
            .and(warp::path::param::<String>())
            .and(warp::path(name))
            .and(warp::path::end())
    };
    let create = base().and(warp::post()).and(api.authed()).and(body::limited(limit)).then(create);
    let list = base()
        .and(warp::get())
        .and(api.authed())
        .and(warp::query::<HashMap<String, String>>())
        .then(list);
    let get = one().and(warp::get()).and(api.authed()).then(get);
    let replace = one().and(warp::put()).and(api.authed()).and(body::limited(limit)).then(replace);
    let delete = one().and(warp::delete()).and(api.authed()).then(delete);
    let run = action("run").and(warp::post()).and(api.authed()).then(run);
    let rotate = action("rotate-key").and(warp::post()).and(api.authed()).then(rotate_key);
    let fail = action("fail")
        .and(warp::post())
        .and(api.authed())
        .and(body::limited(MANUAL_BODY_LIMIT))
        .then(|id, api, caller, body| manual(id, api, caller, body, Status::Failed));
    let heal = action("heal")
        .and(warp::post())
        .and(api.authed())
        .and(body::limited(MANUAL_BODY_LIMIT))
        .then(|id, api, caller, body| manual(id, api, caller, body, Status::Healthy));
    let events = action("events")
        .and(warp::get())
        .and(api.authed())
        .and(warp::query::<HashMap<String, String>>())
        .then(events);
    create
        .or(list)
        .unify()
        .or(get)
        .unify()
        .or(replace)
        .unify()
        .or(delete)
        .unify()
        .or(run)
        .unify()
        .or(fail)
        .unify()
        .or(heal)
        .unify()
        .or(events)
        .unify()
        .or(rotate)
        .unify()
}

async fn create(api: ApiState, caller: Caller, bytes: Bytes) -> warp::reply::Response {
    let mut name = None;
    let result = async {
        let input: MonitorIn = body::json(&bytes)?;
        name = Some(input.name.clone());
        if input.id.is_some() {
            return Err(ApiError::invalid("id", "is generated on create; leave it out"));
        }
        Ok(api.node.create_monitor(input.into_draft()).await?)
    }
    .await;
    let id = result.as_ref().ok().map(|view| view.monitor.id.0.clone());
    audit_monitor(&api, &caller, "create", id.as_deref(), name.as_deref(), &result).await;
    respond(result.map(|view| {
        let out = views::monitor(&view, &api.public_url);
        warp::reply::with_status(warp::reply::json(&out), StatusCode::CREATED)
    }))
}

/// Records a monitor action in the audit trail.
async fn audit_monitor<T>(
    api: &ApiState,
    caller: &Caller,
    action: &str,
    id: Option<&str>,
    name: Option<&str>,
    result: &Result<T, ApiError>,
) {
    let name = name.map(|name| name.chars().take(200).collect::<String>());
    let what = Action { action, kind: "monitor", id, name: name.as_deref() };
    audit::record(api, caller, what, result).await;
}

/// Returns a monitor's name for the audit trail (none when it cannot be read).
async fn monitor_name(api: &ApiState, id: &str) -> Option<String> {
    api.node.get_monitor(&MonitorId::from(id)).await.ok().map(|view| view.monitor.name)
}

async fn rotate_key(id: String, api: ApiState, caller: Caller) -> warp::reply::Response {
    let result =
        api.node.rotate_webhook_key(&MonitorId::from(id.clone())).await.map_err(ApiError::from);
    let name = result.as_ref().ok().map(|view| view.monitor.name.clone());
    audit_monitor(&api, &caller, "rotate_key", Some(&id), name.as_deref(), &result).await;
    respond(result.map(|view| warp::reply::json(&views::monitor(&view, &api.public_url))))
}

async fn list(
    api: ApiState,
    _caller: Caller,
    query: HashMap<String, String>,
) -> warp::reply::Response {
    respond(
        async {
            views::known_params(&query, &["limit", "cursor", "status", "tag", "q"])?;
            let (limit, cursor) = views::paging(&query)?;
            let status = match query.get("status").map(String::as_str) {
                None | Some("") => None,
                Some("healthy") => Some(Status::Healthy),
                Some("failed") => Some(Status::Failed),
                Some("unknown") => Some(Status::Unknown),
                Some(_) => {
                    return Err(ApiError::invalid("status", "must be healthy, failed or unknown"));
                }
            };
            let tag = query.get("tag").filter(|t| !t.is_empty()).cloned();
            let name_contains = match query.get("q").map(|q| q.trim()) {
                None | Some("") => None,
                Some(q) if q.chars().count() > MAX_QUERY_CHARS => {
                    return Err(ApiError::invalid(
                        "q",
                        format!("must be at most {MAX_QUERY_CHARS} characters"),
                    ));
                }
                Some(q) => Some(q.to_lowercase()),
            };
            let filter = MonitorFilter { status, tag, name_contains };
            let (items, next) =
                api.node.list_monitors(&filter, cursor.map(MonitorId::from), limit).await?;
            let items = items.iter().map(|v| views::monitor(v, &api.public_url)).collect();
            Ok(warp::reply::json(&views::page(items, next)))
        }
        .await,
    )
}

async fn get(id: String, api: ApiState, _caller: Caller) -> warp::reply::Response {
    respond(
        async {
            let view = api.node.get_monitor(&MonitorId::from(id)).await?;
            Ok(warp::reply::json(&views::monitor(&view, &api.public_url)))
        }
        .await,
    )
}

async fn replace(id: String, api: ApiState, caller: Caller, bytes: Bytes) -> warp::reply::Response {
    let mut name = None;
    let result = async {
        let input: MonitorIn = body::json(&bytes)?;
        name = Some(input.name.clone());
        if input.id.as_ref().is_some_and(|given| *given != id) {
            return Err(ApiError::invalid("id", "does not match the monitor in the path"));
        }
        Ok(api.node.replace_monitor(&MonitorId::from(id.clone()), input.into_draft()).await?)
    }
    .await;
    audit_monitor(&api, &caller, "update", Some(&id), name.as_deref(), &result).await;
    respond(result.map(|view| warp::reply::json(&views::monitor(&view, &api.public_url))))
}

async fn delete(id: String, api: ApiState, caller: Caller) -> warp::reply::Response {
    let name = monitor_name(&api, &id).await;
    let result =
        api.node.delete_monitor(&MonitorId::from(id.clone())).await.map_err(ApiError::from);
    audit_monitor(&api, &caller, "delete", Some(&id), name.as_deref(), &result).await;
    respond(result.map(|()| StatusCode::NO_CONTENT))
}

async fn run(id: String, api: ApiState, caller: Caller) -> warp::reply::Response {
    let result = api.node.run_now(&MonitorId::from(id.clone())).await.map_err(ApiError::from);
    let name = result.as_ref().ok().map(|(_, view)| view.monitor.name.clone());
    audit_monitor(&api, &caller, "run", Some(&id), name.as_deref(), &result).await;
    respond(result.map(|(outcome, view)| {
        warp::reply::json(&json!({
            "outcome": outcome.label(),
            "reason": outcome.reason(),
            "monitor": views::monitor(&view, &api.public_url),
        }))
    }))
}

async fn manual(
    id: String,
    api: ApiState,
    caller: Caller,
    bytes: Bytes,
    status: Status,
) -> warp::reply::Response {
    let result = async {
        let input: ManualIn = body::optional_json(&bytes)?;
        if input.reason.as_ref().is_some_and(|r| r.chars().count() > 1_000) {
            return Err(ApiError::invalid("reason", "must be at most 1000 characters"));
        }
        Ok(api.node.set_manual(&MonitorId::from(id.clone()), status, input.reason).await?)
    }
    .await;
    let name = result.as_ref().ok().map(|view| view.monitor.name.clone());
    let action = if status == Status::Failed { "fail" } else { "heal" };
    audit_monitor(&api, &caller, action, Some(&id), name.as_deref(), &result).await;
    respond(result.map(|view| warp::reply::json(&views::monitor(&view, &api.public_url))))
}

async fn events(
    id: String,
    api: ApiState,
    _caller: Caller,
    query: HashMap<String, String>,
) -> warp::reply::Response {
    respond(
        async {
            views::known_params(&query, &["limit", "cursor"])?;
            let (limit, cursor) = views::paging(&query)?;
            let (events, next) =
                api.node.events(&MonitorId::from(id), cursor.as_deref(), limit).await?;
            let items =
                events.iter().map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).collect();
            Ok(warp::reply::json(&views::page(items, next)))
        }
        .await,
    )
}
