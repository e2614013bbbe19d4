//! Request bodies: read with a size cap (chunked bodies too), parsed as JSON with the offending
//! field named in errors.

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::Filter;
use warp::http::StatusCode;

use crate::error::ApiError;

/// A filter that yields the whole body, or rejects with 413 past `limit` bytes.
pub fn limited(limit: u64) -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length").and(warp::body::stream()).and_then(
        move |length: Option<u64>, stream| async move {
            if length.is_some_and(|length| length > limit) {
                return Err(warp::reject::custom(ApiError::too_large(limit)));
            }
            collect(stream, limit).await.map_err(warp::reject::custom)
        },
    )
}

async fn collect<S, B>(stream: S, limit: u64) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("cannot read body: {e}"))
        })?;
        if body.len() as u64 + chunk.remaining() as u64 > limit {
            return Err(ApiError::too_large(limit));
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            body.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    Ok(Bytes::from(body))
}

/// Parses a JSON body into `T`, naming the offending field on error.
///
/// # Errors
/// 400 `malformed_json` for bad JSON, 400 `invalid_field` naming the field otherwise.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "body must be a JSON object",
        ));
    }
    cloudroutes_engine::plugin::from_json(value).map_err(|e| {
        if e.field.is_empty() {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.message)
        } else {
            ApiError::invalid(e.field, e.message)
        }
    })
}

/// Parses an optional JSON body: empty means `T::default()`.
///
/// # Errors
/// As [`json`].
pub fn optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { json(bytes) }
}
