//! `/api/v1/reactions`: CRUD. Secret fields are write-only (`"***"` on read; writing `"***"`
//! back keeps the stored value).

use std::collections::HashMap;

use bytes::Bytes;
use cloudroutes_actors::ReactionDraft;
use cloudroutes_engine::{CallOn, PluginSpec, ReactionId};
use serde::Deserialize;
use serde_json::Value;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use crate::ApiState;
use crate::auth::Role;
use crate::body;
use crate::error::{ApiError, respond};
use crate::views;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactionIn {
    name: String,
    action: serde_json::Map<String, Value>,
    #[serde(default)]
    trigger: u32,
    #[serde(default)]
    frequency_secs: u64,
    #[serde(default = "call_on_default")]
    call_on: CallOn,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    last_run_at: Option<Value>,
}

fn call_on_default() -> CallOn {
    CallOn::Failed
}

impl ReactionIn {
    fn into_draft(self) -> ReactionDraft {
        ReactionDraft {
            name: self.name,
            action: PluginSpec(self.action),
            trigger: self.trigger,
            frequency_secs: self.frequency_secs,
            call_on: self.call_on,
        }
    }
}

/// Returns the reaction routes.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let limit = api.body_limit;
    let base = warp::path!("api" / "v1" / "reactions").and(api.authed());
    let one = warp::path!("api" / "v1" / "reactions" / String).and(api.authed());
    let create = base.clone().and(warp::post()).and(body::limited(limit)).then(create);
    let list = base.and(warp::get()).and(warp::query::<HashMap<String, String>>()).then(list);
    let get = one.clone().and(warp::get()).then(get);
    let replace = one.clone().and(warp::put()).and(body::limited(limit)).then(replace);
    let delete = one.and(warp::delete()).then(delete);
    create.or(list).unify().or(get).unify().or(replace).unify().or(delete).unify()
}

async fn create(api: ApiState, _role: Role, bytes: Bytes) -> warp::reply::Response {
    respond(
        async {
            let input: ReactionIn = body::json(&bytes)?;
            if input.id.is_some() {
                return Err(ApiError::invalid("id", "is generated on create; leave it out"));
            }
            let view = api.node.create_reaction(input.into_draft()).await?;
            Ok(warp::reply::with_status(
                warp::reply::json(&views::reaction(&view)),
                StatusCode::CREATED,
            ))
        }
        .await,
    )
}

async fn list(api: ApiState, _role: Role, query: HashMap<String, String>) -> warp::reply::Response {
    respond(
        async {
            views::known_params(&query, &["limit", "cursor"])?;
            let (limit, cursor) = views::paging(&query)?;
            let (items, next) = api.node.list_reactions(cursor.map(ReactionId), limit).await?;
            let items = items.iter().map(views::reaction).collect();
            Ok(warp::reply::json(&views::page(items, next)))
        }
        .await,
    )
}

async fn get(id: String, api: ApiState, _role: Role) -> warp::reply::Response {
    respond(
        async {
            let view = api.node.get_reaction(&ReactionId(id)).await?;
            Ok(warp::reply::json(&views::reaction(&view)))
        }
        .await,
    )
}

async fn replace(id: String, api: ApiState, _role: Role, bytes: Bytes) -> warp::reply::Response {
    respond(
        async {
            let input: ReactionIn = body::json(&bytes)?;
            if input.id.as_ref().is_some_and(|given| *given != id) {
                return Err(ApiError::invalid("id", "does not match the reaction in the path"));
            }
            let view = api.node.replace_reaction(&ReactionId(id), input.into_draft()).await?;
            Ok(warp::reply::json(&views::reaction(&view)))
        }
        .await,
    )
}

async fn delete(id: String, api: ApiState, _role: Role) -> warp::reply::Response {
    respond(
        async {
            api.node.delete_reaction(&ReactionId(id)).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        .await,
    )
}
