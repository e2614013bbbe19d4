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
use crate::audit::{self, Action};
use crate::auth::Caller;
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
    let base = || warp::path!("api" / "v1" / "reactions");
    let one = || warp::path!("api" / "v1" / "reactions" / String);
    let create = base().and(warp::post()).and(api.authed()).and(body::limited(limit)).then(create);
    let list = base()
        .and(warp::get())
        .and(api.authed())
        .and(warp::query::<HashMap<String, String>>())
        .then(list);
    let get = one().and(warp::get()).and(api.authed()).then(get);
    let replace = one().and(warp::put()).and(api.authed()).and(body::limited(limit)).then(replace);
    let delete = one().and(warp::delete()).and(api.authed()).then(delete);
    create.or(list).unify().or(get).unify().or(replace).unify().or(delete).unify()
}

async fn create(api: ApiState, caller: Caller, bytes: Bytes) -> warp::reply::Response {
    let mut name = None;
    let result = async {
        let input: ReactionIn = body::json(&bytes)?;
        name = Some(input.name.clone());
        if input.id.is_some() {
            return Err(ApiError::invalid("id", "is generated on create; leave it out"));
        }
        Ok(api.node.create_reaction(input.into_draft()).await?)
    }
    .await;
    let id = result.as_ref().ok().map(|view| view.reaction.id.0.clone());
    audit_reaction(&api, &caller, "create", id.as_deref(), name.as_deref(), &result).await;
    respond(result.map(|view| {
        warp::reply::with_status(warp::reply::json(&views::reaction(&view)), StatusCode::CREATED)
    }))
}

/// Records a reaction action in the audit trail.
async fn audit_reaction<T>(
    api: &ApiState,
    caller: &Caller,
    action: &str,
    id: Option<&str>,
    name: Option<&str>,
    result: &Result<T, ApiError>,
) {
    let name = name.map(|name| name.chars().take(200).collect::<String>());
    let what = Action { action, kind: "reaction", id, name: name.as_deref() };
    audit::record(api, caller, what, result).await;
}

async fn list(
    api: ApiState,
    _caller: Caller,
    query: HashMap<String, String>,
) -> warp::reply::Response {
    respond(
        async {
            views::known_params(&query, &["limit", "cursor"])?;
            let (limit, cursor) = views::paging(&query)?;
            let (items, next) =
                api.node.list_reactions(cursor.map(ReactionId::from), limit).await?;
            let items = items.iter().map(views::reaction).collect();
            Ok(warp::reply::json(&views::page(items, next)))
        }
        .await,
    )
}

async fn get(id: String, api: ApiState, _caller: Caller) -> warp::reply::Response {
    respond(
        async {
            let view = api.node.get_reaction(&ReactionId::from(id)).await?;
            Ok(warp::reply::json(&views::reaction(&view)))
        }
        .await,
    )
}

async fn replace(id: String, api: ApiState, caller: Caller, bytes: Bytes) -> warp::reply::Response {
    let mut name = None;
    let result = async {
        let input: ReactionIn = body::json(&bytes)?;
        name = Some(input.name.clone());
        if input.id.as_ref().is_some_and(|given| *given != id) {
            return Err(ApiError::invalid("id", "does not match the reaction in the path"));
        }
        Ok(api.node.replace_reaction(&ReactionId::from(id.clone()), input.into_draft()).await?)
    }
    .await;
    audit_reaction(&api, &caller, "update", Some(&id), name.as_deref(), &result).await;
    respond(result.map(|view| warp::reply::json(&views::reaction(&view))))
}

async fn delete(id: String, api: ApiState, caller: Caller) -> warp::reply::Response {
    let reaction = ReactionId::from(id.clone());
    let name = api.node.get_reaction(&reaction).await.ok().map(|view| view.reaction.name);
    let result = api.node.delete_reaction(&reaction).await.map_err(ApiError::from);
    audit_reaction(&api, &caller, "delete", Some(&id), name.as_deref(), &result).await;
    respond(result.map(|()| StatusCode::NO_CONTENT))
}
