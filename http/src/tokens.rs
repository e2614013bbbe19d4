//! `/api/v1/tokens` (admin only): create, list and revoke API tokens. The secret `token` is in
//! the create response only; the store keeps its SHA-256, lists show name, role and times.

use bytes::Bytes;
use cloudroutes_engine::access::{ApiToken, Role};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use crate::ApiState;
use crate::audit::{self, Action};
use crate::auth::{self, Caller};
use crate::body;
use crate::error::{ApiError, respond};
use crate::views;

/// Longest token name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;
/// Most API tokens a cluster keeps.
pub const MAX_TOKENS: usize = 1_000;
/// Longest lifetime `expires_in_secs` may give: ten years.
pub const MAX_EXPIRES_IN_SECS: u64 = 10 * 366 * 24 * 3600;

/// A token as a caller asks for it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenIn {
    name: String,
    role: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

/// Returns `POST`, `GET /api/v1/tokens` and `DELETE /api/v1/tokens/{id}`.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let limit = api.body_limit.min(16 * 1024);
    let base = warp::path!("api" / "v1" / "tokens");
    let create = base.and(warp::post()).and(api.authed()).and(body::limited(limit)).then(create);
    let list = base.and(warp::get()).and(api.authed()).then(list);
    let revoke = warp::path!("api" / "v1" / "tokens" / String)
        .and(warp::delete())
        .and(api.authed())
        .then(revoke);
    create.or(list).unify().or(revoke).unify()
}

fn validate(
    input: &TokenIn,
    now: OffsetDateTime,
) -> Result<(Role, Option<OffsetDateTime>), ApiError> {
    let chars = input.name.chars().count();
    if input.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "must not be blank"));
    }
    if chars > MAX_TOKEN_NAME_CHARS {
        return Err(ApiError::invalid(
            "name",
            format!("must be at most {MAX_TOKEN_NAME_CHARS} characters, got {chars}"),
        ));
    }
    if input.name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "must not contain control characters"));
    }
    let role = Role::parse(&input.role)
        .ok_or_else(|| ApiError::invalid("role", "must be admin, editor or viewer"))?;
    let expires_at = match (&input.expires_at, input.expires_in_secs) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "expires_in_secs",
                "give expires_at or expires_in_secs, not both",
            ));
        }
        (Some(at), None) => {
            let at = OffsetDateTime::parse(at, &Rfc3339)
                .map_err(|_| ApiError::invalid("expires_at", "must be an RFC 3339 time or null"))?;
            if at <= now {
                return Err(ApiError::invalid("expires_at", "must be in the future"));
            }
            Some(at)
        }
        (None, Some(secs)) => {
            if secs == 0 || secs > MAX_EXPIRES_IN_SECS {
                return Err(ApiError::invalid(
                    "expires_in_secs",
                    format!("must be between 1 and {MAX_EXPIRES_IN_SECS}"),
                ));
            }
            let secs = i64::try_from(secs).unwrap_or(i64::MAX);
            Some(now + time::Duration::seconds(secs))
        }
        (None, None) => None,
    };
    Ok((role, expires_at))
}

async fn create(api: ApiState, caller: Caller, bytes: Bytes) -> warp::reply::Response {
    let mut name = None;
    let result = async {
        let input: TokenIn = body::json(&bytes)?;
        name = Some(input.name.clone());
        let now = OffsetDateTime::now_utc();
        let (role, expires_at) = validate(&input, now)?;
        let store = api.node.store();
        if store.list_tokens().await.map_err(audit::store_error)?.len() >= MAX_TOKENS {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("there are already {MAX_TOKENS} tokens; revoke some first"),
            ));
        }
        let secret = auth::new_token_secret();
        let token = ApiToken {
            id: cloudroutes_engine::model::new_ordered_id(),
            name: input.name,
            role,
            hash: auth::token_hash(&secret),
            created_at: now,
            expires_at,
        };
        if !store.create_token(&token).await.map_err(audit::store_error)? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("a token named `{}` already exists", token.name),
            ));
        }
        let mut out = view(&token);
        out["token"] = Value::String(secret);
        Ok((token.id, out))
    }
    .await;
    let id = result.as_ref().ok().map(|(id, _)| id.clone());
    let what = Action { action: "create", kind: "token", id: id.as_deref(), name: name.as_deref() };
    audit::record(&api, &caller, what, &result).await;
    respond(
        result
            .map(|(_, out)| warp::reply::with_status(warp::reply::json(&out), StatusCode::CREATED)),
    )
}

async fn list(api: ApiState, _caller: Caller) -> warp::reply::Response {
    respond(
        async {
            let tokens = api.node.store().list_tokens().await.map_err(audit::store_error)?;
            let items: Vec<Value> = tokens.iter().map(view).collect();
            Ok(warp::reply::json(&json!({"items": items, "next_cursor": null})))
        }
        .await,
    )
}

async fn revoke(id: String, api: ApiState, caller: Caller) -> warp::reply::Response {
    let result = async {
        let removed = api.node.store().delete_token(&id).await.map_err(audit::store_error)?;
        api.auth.forget_cached();
        removed.ok_or_else(|| ApiError::not_found(format!("token `{id}` not found")))
    }
    .await;
    let name = result.as_ref().ok().map(|token| token.name.clone());
    let what = Action { action: "revoke", kind: "token", id: Some(&id), name: name.as_deref() };
    audit::record(&api, &caller, what, &result).await;
    respond(result.map(|_| StatusCode::NO_CONTENT))
}

/// The JSON shape of a token, without its secret.
fn view(token: &ApiToken) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "created_at": views::rfc3339(Some(token.created_at)),
        "expires_at": views::rfc3339(token.expires_at),
    })
}
