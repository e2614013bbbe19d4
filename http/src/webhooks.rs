//! Webhook intake: `POST /api/v1/webhooks/{monitor_id}/{key}`. The key is the monitor's own
//! secret, compared in constant time; no bearer token is needed.
//!
//! The generic `webhook` type speaks the original API v1: `{"action": "healthy" | "failed" |
//! "status"}` (`true`/`false` accepted as the original did); every action answers
//! `{"result": "success", "status": "…", "streak": N}`.

use bytes::Bytes;
use cloudroutes_engine::{CheckOutcome, Method, MonitorId};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use crate::ApiState;
use crate::body;
use crate::error::{ApiError, respond};

/// Largest webhook body accepted.
pub const WEBHOOK_BODY_LIMIT: u64 = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericIn {
    action: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Returns the webhook intake route.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "webhooks" / String / String)
        .and(warp::post())
        .and(warp::any().map(move || api.clone()))
        .and(body::limited(WEBHOOK_BODY_LIMIT))
        .then(intake)
}

async fn intake(id: String, key: String, api: ApiState, bytes: Bytes) -> warp::reply::Response {
    respond(async {
        let id = MonitorId(id);
        let view = api.node.get_monitor(&id).await.map_err(|_| unknown())?;
        if !bool::from(view.monitor.webhook_key.as_bytes().ct_eq(key.as_bytes())) {
            return Err(unknown());
        }
        if view.monitor.check.kind() != "webhook" {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("monitor `{id}` is a `{}` monitor and takes no webhook results", view.monitor.check.kind()),
            ));
        }
        let input: GenericIn = body::json(&bytes)?;
        let reason = input.reason.unwrap_or_else(|| format!("webhook: {}", input.action));
        let state = match input.action.as_str() {
            "healthy" | "true" => api.node.observe(&id, CheckOutcome::Healthy { reason }, Method::Webhook).await?,
            "failed" | "false" => api.node.observe(&id, CheckOutcome::Failed { reason }, Method::Webhook).await?,
            "status" => view.state,
            other => {
                return Err(ApiError::invalid(
                    "action",
                    format!("`{other}` is not an action; use healthy, failed or status"),
                ));
            }
        };
        Ok(warp::reply::json(&json!({"result": "success", "status": state.status.as_str(), "streak": state.streak})))
    }.await)
}

/// One answer for "no such monitor" and "wrong key", so ids cannot be probed with bad keys.
fn unknown() -> ApiError {
    ApiError::not_found("no webhook monitor with this id and key")
}
