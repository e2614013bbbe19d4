//! The audit trail: every change a caller makes is recorded with who (token name and role),
//! when, what (action, resource kind, id and name) and the outcome; `GET /api/v1/audit`
//! (admin only) pages through it, newest first. Entries hold names and ids, never bodies.
//! Denied calls (401, 403, 429) are recorded too, bounded: see [`crate::denials`].

use std::collections::HashMap;

use cloudroutes_engine::access::AuditEntry;
use serde_json::{Value, json};
use time::OffsetDateTime;
use warp::{Filter, Rejection};

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, respond};
use crate::views;

/// What a caller did to which resource, for [`record`].
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    /// `create`, `update`, `delete`, `run`, `fail`, `heal`, `rotate_key`, `drain`, `revoke`.
    pub action: &'a str,
    /// `monitor`, `reaction`, `token`, `node`.
    pub kind: &'a str,
    /// The resource's id, when known.
    pub id: Option<&'a str>,
    /// The resource's name, when known.
    pub name: Option<&'a str>,
}

/// Appends one entry: `ok`, or the error code the caller got. A store failure is logged, not
/// passed to the caller (the change itself is already done or refused).
pub async fn record<T>(
    api: &ApiState,
    caller: &Caller,
    what: Action<'_>,
    result: &Result<T, ApiError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(error) => error.code,
    };
    let mut entry = AuditEntry::new(
        OffsetDateTime::now_utc(),
        (&caller.name, caller.role),
        (what.action, what.kind),
        outcome,
    );
    entry.resource_id = what.id.map(str::to_owned);
    entry.resource_name = what.name.map(str::to_owned);
    if let Err(error) = api.node.store().append_audit(&entry, api.audit_keep).await {
        tracing::error!(error = %error, action = what.action, kind = what.kind, "could not record an audit entry");
    }
}

/// Returns `GET /api/v1/audit?limit=&cursor=`.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "audit")
        .and(warp::get())
        .and(api.authed())
        .and(warp::query::<HashMap<String, String>>())
        .then(list)
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
            let entries = api
                .node
                .store()
                .list_audit(cursor.as_deref(), limit + 1)
                .await
                .map_err(store_error)?;
            let more = entries.len() > limit;
            let entries = &entries[..entries.len().min(limit)];
            let next = if more { entries.last().map(|e| e.id.clone()) } else { None };
            let items = entries.iter().map(entry).collect();
            Ok(warp::reply::json(&views::page(items, next)))
        }
        .await,
    )
}

fn entry(entry: &AuditEntry) -> Value {
    json!({
        "id": entry.id,
        "at": views::rfc3339(Some(entry.at)),
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "resource_kind": entry.resource_kind,
        "resource_id": entry.resource_id,
        "resource_name": entry.resource_name,
        "outcome": entry.outcome,
        "count": entry.count,
        "client": entry.client,
    })
}

/// Maps a store failure to 503, logged.
pub(crate) fn store_error(error: cloudroutes_engine::StoreError) -> ApiError {
    ApiError::from(cloudroutes_actors::NodeError::Store(error))
}
