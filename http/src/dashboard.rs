//! The web dashboard at `/`: plain HTML, CSS and JavaScript modules embedded in the binary (no
//! CDN, no build step; works offline), served with strict security headers, and the cheap
//! monitor counts it shows (`GET /api/v1/summary`).
//!
//! The pages talk to the same `/api/v1` as every other client, with the token the user signs in
//! with (kept in the browser's `sessionStorage`).

use serde_json::json;
use warp::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, respond};

#[cfg(test)]
mod tests;

/// The policy for every dashboard response: scripts, styles, images and API calls from this
/// origin only; no inline script, no plugins, no framing, no foreign form targets.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its name under `/assets/`, its content type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page every dashboard route starts from.
const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The files under `/assets/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/app.css"),
    },
    Asset { name: "app.js", content_type: JS, body: include_str!("../assets/app.js") },
    Asset { name: "api.js", content_type: JS, body: include_str!("../assets/api.js") },
    Asset { name: "dom.js", content_type: JS, body: include_str!("../assets/dom.js") },
    Asset { name: "board.js", content_type: JS, body: include_str!("../assets/board.js") },
    Asset { name: "monitor.js", content_type: JS, body: include_str!("../assets/monitor.js") },
    Asset { name: "chart.js", content_type: JS, body: include_str!("../assets/chart.js") },
    Asset { name: "forms.js", content_type: JS, body: include_str!("../assets/forms.js") },
    Asset { name: "schema.js", content_type: JS, body: include_str!("../assets/schema.js") },
    Asset { name: "reactions.js", content_type: JS, body: include_str!("../assets/reactions.js") },
    Asset { name: "cluster.js", content_type: JS, body: include_str!("../assets/cluster.js") },
];

/// Returns `GET /` (the dashboard), `GET /assets/{name}` and `GET /api/v1/summary`.
pub fn routes(api: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let index = warp::path::end()
        .and(warp::get())
        .map(|| page(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML));
    let asset = warp::path!("assets" / String).and(warp::get()).map(|name: String| {
        match ASSETS.iter().find(|asset| asset.name == name) {
            Some(asset) => page(StatusCode::OK, asset.content_type, asset.body),
            None => page(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "no such asset\n"),
        }
    });
    let summary =
        warp::path!("api" / "v1" / "summary").and(warp::get()).and(api.authed()).then(summary);
    index.or(asset).unify().or(summary).unify()
}

/// Returns a dashboard file with its security and cache headers.
fn page(status: StatusCode, content_type: &'static str, body: &'static str) -> Response {
    let mut response = warp::reply::with_status(body, status).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The files change with the binary and carry no version in their names: the browser
    // revalidates each time rather than running a stale script against a newer API.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn summary(api: ApiState, _caller: Caller) -> Response {
    respond(
        async {
            let counts = api.node.summary().await.map_err(ApiError::from)?;
            let total = counts.healthy + counts.failed + counts.unknown;
            Ok(warp::reply::json(&json!({"monitors": {
                "total": total,
                "healthy": counts.healthy,
                "failed": counts.failed,
                "unknown": counts.unknown,
            }})))
        }
        .await,
    )
}
