//! API errors: `{"error": {"code", "message", "field"}}` with the right status code.

use cloudroutes_actors::NodeError;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

/// An error answered to an API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `invalid_field`.
    pub code: &'static str,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
    /// The offending field's path, when one is to blame.
    pub field: Option<String>,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    /// Returns an error with no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    /// Returns a 400 `invalid_field` error naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        let message =
            if message.starts_with(&field) { message } else { format!("{field} {message}") };
        Self { status: StatusCode::BAD_REQUEST, code: "invalid_field", message, field: Some(field) }
    }

    /// Returns a 404 `not_found` error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// Returns a 401 `unauthorized` error.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// Returns a 403 `forbidden` error.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Returns a 413 `payload_too_large` error.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        match error {
            NodeError::NotFound { .. } => Self::not_found(error.to_string()),
            NodeError::Invalid { field, message } => Self::invalid(field, message),
            NodeError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            NodeError::Store(err) => {
                tracing::error!(error = %err, "store failed during an API call");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    format!("store: {err}"),
                )
            }
            NodeError::Unavailable(message) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "field": self.field}});
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                warp::http::header::WWW_AUTHENTICATE,
                warp::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Turns any rejection into the documented error body.
///
/// # Errors
/// Never: every rejection becomes a response.
pub async fn recover(rejection: Rejection) -> Result<Response, std::convert::Infallible> {
    if let Some(limited) = rejection.find::<crate::limits::RateLimited>() {
        return Ok(limited.clone().into_response());
    }
    if let Some(denied) = rejection.find::<crate::auth::Forbidden>() {
        let mut response = denied.error.clone().into_response();
        response.extensions_mut().insert(denied.caller.clone());
        return Ok(response);
    }
    let error = if let Some(error) = rejection.find::<ApiError>() {
        error.clone()
    } else if rejection.is_not_found() {
        ApiError::not_found("no such endpoint; see /api/v1/openapi.json")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this endpoint",
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body too large")
    } else if let Some(err) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_header", err.to_string())
    } else if let Some(err) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", err.to_string())
    } else {
        tracing::warn!(rejection = ?rejection, "unhandled rejection");
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "request not understood")
    };
    Ok(error.into_response())
}

/// Finishes an answer: a 405 gets the `Allow` header it owes (RFC 9110) with the methods the
/// API document lists for `path`; an error answered to a request with a body that may not
/// have been read (rejected before it) closes the connection, so the client does not send
/// its next request on a connection the server is dropping.
pub fn finish(path: &str, has_body: bool, mut response: Response) -> Response {
    use warp::http::{HeaderValue, header};
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let methods = crate::openapi::allowed_methods(path).join(", ");
        if let Ok(value) = HeaderValue::from_str(&methods)
            && !methods.is_empty()
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
    }
    if has_body && response.status().is_client_error() {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Turns a handler result into a response.
pub fn respond<T: Reply>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}
