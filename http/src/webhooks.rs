//! Webhook intake. The key in the URL is the monitor's own secret, compared in constant time;
//! no bearer token is needed. The body is the sender's own format, which the monitor's type
//! parses (see `cloudroutes_checks::intake`):
//!
//! - `POST /api/v1/webhooks/{monitor_id}/{key}` and `…/{key}/{action}`;
//! - `GET` of the same paths for types that take pings (`heartbeat`: `curl URL` in a crontab);
//! - `POST /api/{type}/{monitor_id}/{key}/{action}`: the original product's URL shape, for old
//!   clients (`cr-api` is the original's name for `webhook`).
//!
//! Every accepted request answers `{"result": "success", "status": "…", "streak": N}`, or
//! `{"result": "ignored", "reason": "…"}` when the payload carries no result; Slack gets the
//! same as a slash-command reply.

use bytes::Bytes;
use cloudroutes_checks::{CheckConfig, Intake, IntakeError, IntakeRequest};
use cloudroutes_engine::{Method, MonitorId, MonitorState};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use warp::http::{HeaderMap, StatusCode};
use warp::{Filter, Rejection, Reply};

use crate::ApiState;
use crate::body;
use crate::error::{ApiError, respond};

/// Largest webhook body accepted (Alertmanager groups can carry many alerts).
pub const WEBHOOK_BODY_LIMIT: u64 = 256 * 1024;

/// The original product's type names in its webhook URLs, mapped to ours.
const ORIGINAL_NAMES: [(&str, &str); 1] = [("cr-api", "webhook")];

/// One intake request after routing: which monitor, with which key, and what was sent.
struct Delivery {
    id: String,
    key: String,
    /// The type the URL names (original URL shape only).
    url_type: Option<String>,
    action: Option<String>,
    get: bool,
    content_type: Option<String>,
    body: Bytes,
    /// The request's headers (signatures some senders add).
    headers: HeaderMap,
}

/// Returns the webhook intake routes.
pub fn routes(
    api: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let with_api = warp::any().map(move || api.clone());
    let content_type = warp::header::optional::<String>("content-type");
    let body = body::limited(WEBHOOK_BODY_LIMIT);
    let post = warp::path!("api" / "v1" / "webhooks" / String / String)
        .map(|id, key| (id, key, None))
        .or(warp::path!("api" / "v1" / "webhooks" / String / String / String)
            .map(|id, key, action| (id, key, Some(action))))
        .unify()
        .and(warp::post())
        .and(content_type)
        .and(body.clone())
        .and(warp::header::headers_cloned())
        .map(|(id, key, action), content_type, body, headers| Delivery {
            id,
            key,
            url_type: None,
            action,
            get: false,
            content_type,
            body,
            headers,
        });
    let get = warp::path!("api" / "v1" / "webhooks" / String / String)
        .map(|id, key| (id, key, None))
        .or(warp::path!("api" / "v1" / "webhooks" / String / String / String)
            .map(|id, key, action| (id, key, Some(action))))
        .unify()
        .and(warp::get().or(warp::head()).unify())
        .map(|(id, key, action)| Delivery {
            id,
            key,
            url_type: None,
            action,
            get: true,
            content_type: None,
            body: Bytes::new(),
            headers: HeaderMap::new(),
        });
    let original = warp::path!("api" / String / String / String / String)
        .and_then(|url_type: String, id, key, action| async move {
            // `/api/v1/…` is this API's own space (`/api/v1/monitors/{id}/fail`, say).
            if url_type == "v1" {
                return Err(warp::reject::not_found());
            }
            Ok((url_type, id, key, action))
        })
        .untuple_one()
        .and(warp::post())
        .and(warp::header::optional::<String>("content-type"))
        .and(body)
        .and(warp::header::headers_cloned())
        .map(|url_type, id, key, action, content_type, body, headers| Delivery {
            id,
            key,
            url_type: Some(url_type),
            action: Some(action),
            get: false,
            content_type,
            body,
            headers,
        });
    post.or(get).unify().or(original).unify().and(with_api).then(intake)
}

async fn intake(delivery: Delivery, api: ApiState) -> warp::reply::Response {
    respond(handle(delivery, api).await)
}

async fn handle(delivery: Delivery, api: ApiState) -> Result<warp::reply::Response, ApiError> {
    let id = MonitorId::from(delivery.id);
    let view = api.node.get_monitor(&id).await.map_err(|_| unknown())?;
    if !bool::from(view.monitor.webhook_key.as_bytes().ct_eq(delivery.key.as_bytes())) {
        return Err(unknown());
    }
    let kind = view.monitor.check.kind().to_owned();
    if let Some(url_type) = &delivery.url_type {
        let named = ORIGINAL_NAMES
            .iter()
            .find(|(old, _)| old == url_type)
            .map_or(url_type.as_str(), |(_, new)| new);
        if named != kind {
            return Err(unknown());
        }
    }
    let config = CheckConfig::parse(&view.monitor.check).map_err(|error| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the stored check does not parse: {error}"),
        )
    })?;
    if delivery.get && !config.is_pingable() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("a `{kind}` monitor takes its webhook results by POST"),
        ));
    }
    let request = IntakeRequest {
        action: delivery.action.as_deref(),
        content_type: delivery.content_type.as_deref(),
        body: &delivery.body,
        headers: Some(&delivery.headers),
    };
    let Some(parsed) = config.intake(&request) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("monitor `{id}` is a `{kind}` monitor and takes no webhook results"),
        ));
    };
    let answer = match parsed.map_err(intake_error)? {
        Intake::Result(outcome) => success(&api.node.observe(&id, outcome, Method::Webhook).await?),
        Intake::Status => success(&view.state),
        Intake::Deliver(delivery) => success(&api.node.deliver(&id, delivery).await?),
        Intake::Ignore(reason) => json!({"result": "ignored", "reason": reason}),
    };
    let answer = if kind == "slack-webhook" { slack_reply(&answer) } else { answer };
    Ok(warp::reply::with_status(warp::reply::json(&answer), StatusCode::OK).into_response())
}

fn success(state: &MonitorState) -> Value {
    json!({"result": "success", "status": state.status.as_str(), "streak": state.streak})
}

/// A slash-command reply: only the person who typed it sees it.
fn slack_reply(answer: &Value) -> Value {
    let text = match answer["result"].as_str() {
        Some("success") => format!(
            "CloudRoutes: monitor is {} (streak {})",
            answer["status"].as_str().unwrap_or("unknown"),
            answer["streak"]
        ),
        _ => format!("CloudRoutes: {}", answer["reason"].as_str().unwrap_or("nothing recorded")),
    };
    json!({"response_type": "ephemeral", "text": text})
}

fn intake_error(error: IntakeError) -> ApiError {
    match error {
        // The body as a whole does not parse: the same error as any malformed JSON body.
        IntakeError::Invalid(error) if error.field == "body" => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("body is {}", error.message),
        ),
        IntakeError::Invalid(error) => ApiError::invalid(error.field, error.message),
        IntakeError::Denied(message) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
    }
}

/// One answer for "no such monitor" and "wrong key", so ids cannot be probed with bad keys.
fn unknown() -> ApiError {
    ApiError::not_found("no webhook monitor with this id and key")
}
