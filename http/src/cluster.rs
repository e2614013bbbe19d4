//! `/api/v1/cluster`: the nodes with their liveness, partitions and monitors; draining a node.

use cloudroutes_actors::{ClusterView, NodeStatus};
use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use crate::ApiState;
use crate::audit::{self, Action};
use crate::auth::Caller;
use crate::error::respond;
use crate::views::rfc3339;

/// Returns `GET /api/v1/cluster` and `POST /api/v1/cluster/nodes/{id}/drain`.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let view = warp::path!("api" / "v1" / "cluster").and(warp::get()).and(api.authed()).then(view);
    let drain = warp::path!("api" / "v1" / "cluster" / "nodes" / String / "drain")
        .and(warp::post())
        .and(api.authed())
        .then(drain);
    view.or(drain).unify()
}

async fn view(api: ApiState, _caller: Caller) -> warp::reply::Response {
    respond(
        async {
            let view = api.node.cluster_view().await?;
            Ok(warp::reply::json(&cluster(&view)))
        }
        .await,
    )
}

async fn drain(id: String, api: ApiState, caller: Caller) -> warp::reply::Response {
    let result = api.node.drain(&id).await.map_err(crate::ApiError::from);
    let what = Action { action: "drain", kind: "node", id: Some(&id), name: Some(&id) };
    audit::record(&api, &caller, what, &result).await;
    respond(result.map(|_| {
        let body = json!({"node": id, "draining": true});
        warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED)
    }))
}

/// The JSON shape of the cluster view.
pub fn cluster(view: &ClusterView) -> Value {
    json!({
        "mode": view.mode,
        "node_id": view.node_id,
        "partitions": view.partitions,
        "nodes": view.nodes.iter().map(node).collect::<Vec<_>>(),
    })
}

fn node(node: &NodeStatus) -> Value {
    json!({
        "id": node.id,
        "http_addr": node.http_addr,
        "cluster_addr": node.cluster_addr,
        "zone": node.zone,
        "alive": node.alive,
        "draining": node.draining,
        "partitions": node.partitions,
        "monitors": node.monitors,
        "last_heartbeat": rfc3339(node.last_heartbeat),
        "started_at": rfc3339(node.started_at),
    })
}
