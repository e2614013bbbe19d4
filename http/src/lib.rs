//! The CloudRoutes HTTP API (warp): REST v1, webhook intake, metrics and health.
//!
//! - [`monitors`], [`reactions`]: the resources of API.md.
//! - [`cluster`]: nodes, partitions and draining.
//! - [`webhooks`]: result intake authenticated by each monitor's key.
//! - [`meta`]: type catalogs with JSON Schemas, `/healthz`, `/readyz`, `/metrics`.
//! - [`dashboard`]: the web dashboard at `/` (embedded assets) and `/api/v1/summary`.
//! - [`tokens`]: API tokens (admin); [`audit`]: the audit trail; [`limits`]: rate limits;
//!   [`denials`]: denied calls in the audit trail, bounded.
//! - [`server`]: the accept loop with header and request timeouts, peer addresses, the access
//!   log and graceful shutdown.
//! - [`auth`]: bearer tokens and the role table; [`body`]: capped bodies and JSON with named fields;
//!   [`error`]: the error body; [`views`]: the JSON shapes; [`openapi`]: the API document.

use std::future::Future;
use std::net::SocketAddr;

use cloudroutes_actors::Node;
use warp::Filter;

pub mod audit;
pub mod auth;
pub mod body;
pub mod cluster;
pub mod dashboard;
pub mod denials;
pub mod error;
pub mod limits;
pub mod meta;
pub mod monitors;
pub mod openapi;
pub mod reactions;
pub mod server;
pub mod tokens;
pub mod views;
pub mod webhooks;

pub use auth::Auth;
pub use error::ApiError;

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The node.
    pub node: Node,
    /// Accepted tokens.
    pub auth: Auth,
    /// Largest API request body.
    pub body_limit: u64,
    /// Base URL for links in responses (webhook URLs).
    pub public_url: String,
    /// Rate limits.
    pub limits: std::sync::Arc<limits::Limiters>,
    /// Audit entries kept.
    pub audit_keep: usize,
}

impl ApiState {
    /// A filter that authenticates the caller, checks its role against the route (401, 403)
    /// and yields the state and the caller.
    pub fn authed(
        &self,
    ) -> impl Filter<Extract = (ApiState, auth::Caller), Error = warp::Rejection> + Clone + use<>
    {
        let state = self.clone();
        warp::any().map(move || state.clone()).and(auth::authenticated(self.auth.clone()))
    }
}

/// Returns every route, with rejections turned into the documented error body.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone {
    let guard = limits::guard(std::sync::Arc::clone(&api.limits));
    let routes = webhooks::routes(api.clone())
        .or(monitors::routes(api.clone()))
        .unify()
        .or(reactions::routes(api.clone()))
        .unify()
        .or(cluster::routes(api.clone()))
        .unify()
        .or(dashboard::routes(api.clone()))
        .unify()
        .or(tokens::routes(api.clone()))
        .unify()
        .or(audit::routes(api.clone()))
        .unify()
        .or(meta::routes(api.clone()))
        .unify();
    let has_body = warp::header::headers_cloned().map(|headers: warp::http::HeaderMap| {
        let length = headers.get(warp::http::header::CONTENT_LENGTH);
        let length = length.and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        length != Some(0) && (length.is_some() || headers.contains_key("transfer-encoding"))
    });
    let state = api;
    warp::path::full()
        .and(has_body)
        .and(warp::method())
        .and(warp::header::headers_cloned().map(|headers: warp::http::HeaderMap| {
            let value = headers.get(warp::http::header::AUTHORIZATION);
            value.and_then(|v| v.to_str().ok()).map(str::to_owned)
        }))
        .and(server::peer_addr())
        .and(guard.and(routes).recover(error::recover).unify())
        .then(
            move |path: warp::path::FullPath,
                  has_body,
                  method: warp::http::Method,
                  authorization: Option<String>,
                  peer,
                  response: warp::reply::Response| {
                let api = state.clone();
                async move {
                    let request = denials::Request {
                        method: &method,
                        path: path.as_str(),
                        authorization: authorization.as_deref(),
                        peer,
                    };
                    denials::note_response(&api, request, &response).await;
                    error::finish(path.as_str(), has_body, response)
                }
            },
        )
}

/// Serves the API on `listener` until `shutdown` completes, with `timeouts` (see [`server`]);
/// records denied calls' folded counts meanwhile and at the end.
pub async fn serve(
    api: ApiState,
    listener: tokio::net::TcpListener,
    timeouts: server::Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let recorder = tokio::spawn(denials::record_ended_windows(api.clone()));
    server::serve_filter(routes(api.clone()), listener, timeouts, shutdown).await;
    recorder.abort();
    denials::record_open_windows(&api).await;
}

/// Returns the public URL for an address when none is configured.
pub fn default_public_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
