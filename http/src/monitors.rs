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
use crate::auth::Role;
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

fn enabled_default() -> bool {
    true
}

impl MonitorIn {
    fn into_draft(self) -> MonitorDraft {
        MonitorDraft {
            name: self.name,
            check: PluginSpec(self.check),
            interval_secs: self.interval_secs,
            reactions: self.reactions.into_iter().map(ReactionId).collect(),
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

/// Returns the monitor routes.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let limit = api.body_limit;
    let base = warp::path!("api" / "v1" / "monitors").and(api.authed());
    let one = warp::path!("api" / "v1" / "monitors" / String).and(api.authed());
    let action = |name: &'static str| {
        warp::path("api")
            .and(warp::path("v1"))
            .and(warp::path("monitors"))
            .and(warp::path::param::<String>())
            .and(warp::path(name))
            .and(warp::path::end())
            .and(api.authed())
    };
    let create = base.clone().and(warp::post()).and(body::limited(limit)).then(create);
    let list = base.and(warp::get()).and(warp::query::<HashMap<String, String>>()).then(list);
    let get = one.clone().and(warp::get()).then(get);
    let replace = one.clone().and(warp::put()).and(body::limited(limit)).then(replace);
    let delete = one.and(warp::delete()).then(delete);
    let run = action("run").and(warp::post()).then(run);
    let fail = action("fail")
        .and(warp::post())
        .and(body::limited(limit))
        .then(|id, api, role, body| manual(id, api, role, body, Status::Failed));
    let heal = action("heal")
        .and(warp::post())
        .and(body::limited(limit))
        .then(|id, api, role, body| manual(id, api, role, body, Status::Healthy));
    let events = action("events")
        .and(warp::get())
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
}

async fn create(api: ApiState, _role: Role, bytes: Bytes) -> warp::reply::Response {
    respond(
        async {
            let input: MonitorIn = body::json(&bytes)?;
            if input.id.is_some() {
                return Err(ApiError::invalid("id", "is generated on create; leave it out"));
            }
            let view = api.node.create_monitor(input.into_draft()).await?;
            let out = views::monitor(&view, &api.public_url);
            Ok(warp::reply::with_status(warp::reply::json(&out), StatusCode::CREATED))
        }
        .await,
    )
}

async fn list(api: ApiState, _role: Role, query: HashMap<String, String>) -> warp::reply::Response {
    respond(
        async {
            views::known_params(&query, &["limit", "cursor", "status", "tag"])?;
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
            let filter = MonitorFilter { status, tag };
            let (items, next) =
                api.node.list_monitors(&filter, cursor.map(MonitorId), limit).await?;
            let items = items.iter().map(|v| views::monitor(v, &api.public_url)).collect();
            Ok(warp::reply::json(&views::page(items, next)))
        }
        .await,
    )
}

async fn get(id: String, api: ApiState, _role: Role) -> warp::reply::Response {
    respond(
        async {
            let view = api.node.get_monitor(&MonitorId(id)).await?;
            Ok(warp::reply::json(&views::monitor(&view, &api.public_url)))
        }
        .await,
    )
}

async fn replace(id: String, api: ApiState, _role: Role, bytes: Bytes) -> warp::reply::Response {
    respond(
        async {
            let input: MonitorIn = body::json(&bytes)?;
            if input.id.as_ref().is_some_and(|given| *given != id) {
                return Err(ApiError::invalid("id", "does not match the monitor in the path"));
            }
            let view = api.node.replace_monitor(&MonitorId(id), input.into_draft()).await?;
            Ok(warp::reply::json(&views::monitor(&view, &api.public_url)))
        }
        .await,
    )
}

async fn delete(id: String, api: ApiState, _role: Role) -> warp::reply::Response {
    respond(
        async {
            api.node.delete_monitor(&MonitorId(id)).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        .await,
    )
}

async fn run(id: String, api: ApiState, _role: Role) -> warp::reply::Response {
    respond(
        async {
            let (outcome, view) = api.node.run_now(&MonitorId(id)).await?;
            let out = json!({
                "outcome": outcome.label(),
                "reason": outcome.reason(),
                "monitor": views::monitor(&view, &api.public_url),
            });
            Ok(warp::reply::json(&out))
        }
        .await,
    )
}

async fn manual(
    id: String,
    api: ApiState,
    _role: Role,
    bytes: Bytes,
    status: Status,
) -> warp::reply::Response {
    respond(
        async {
            let input: ManualIn = body::optional_json(&bytes)?;
            if input.reason.as_ref().is_some_and(|r| r.chars().count() > 1_000) {
                return Err(ApiError::invalid("reason", "must be at most 1000 characters"));
            }
            let view = api.node.set_manual(&MonitorId(id), status, input.reason).await?;
            Ok(warp::reply::json(&views::monitor(&view, &api.public_url)))
        }
        .await,
    )
}

async fn events(
    id: String,
    api: ApiState,
    _role: Role,
    query: HashMap<String, String>,
) -> warp::reply::Response {
    respond(
        async {
            views::known_params(&query, &["limit", "cursor"])?;
            let (limit, cursor) = views::paging(&query)?;
            let (events, next) = api.node.events(&MonitorId(id), cursor.as_deref(), limit).await?;
            let items =
                events.iter().map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).collect();
            Ok(warp::reply::json(&views::page(items, next)))
        }
        .await,
    )
}
