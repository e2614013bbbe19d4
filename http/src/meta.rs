//! Type catalogs, health, readiness and metrics.

use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::ApiState;

/// Returns `/api/v1/check-types`, `/api/v1/reaction-types`, `/healthz`, `/readyz`,
/// `/metrics` and `/api/v1/openapi.json`.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let check_types =
        warp::path!("api" / "v1" / "check-types").and(warp::get()).and(api.authed()).map(|_, _| {
            warp::reply::json(&json!({"items": cloudroutes_checks::check_types()})).into_response()
        });
    let reaction_types = warp::path!("api" / "v1" / "reaction-types")
        .and(warp::get())
        .and(api.authed())
        .map(|_, _| {
            warp::reply::json(&json!({"items": cloudroutes_reactions::reaction_types()}))
                .into_response()
        });
    let openapi = warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(|| warp::reply::json(&crate::openapi::document()).into_response());
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    let ready_api = api.clone();
    let readyz = warp::path!("readyz").and(warp::get()).map(move || {
        let ready = ready_api.node.is_ready();
        let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        let body = json!({"status": if ready { "ready" } else { "starting or stopping" }});
        warp::reply::with_status(warp::reply::json(&body), status).into_response()
    });
    let metrics_api = api;
    let metrics = warp::path!("metrics").and(warp::get()).map(move || {
        let text = metrics_api.node.metrics().encode();
        warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4; charset=utf-8")
            .into_response()
    });
    check_types
        .or(reaction_types)
        .unify()
        .or(openapi)
        .unify()
        .or(healthz)
        .unify()
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
}
