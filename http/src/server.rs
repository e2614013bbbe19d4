//! The HTTP server: our own accept loop around hyper's HTTP/1.1 connections, because warp's
//! server has no hook for timeouts.
//!
//! - Headers: a client must send a request's headers within `limits.header_timeout_ms`, and an
//!   idle keep-alive connection waits that long for its next request; past it the connection
//!   is closed (hyper's header-read timeout), so a slowloris client cannot hold connections.
//! - Requests: from its headers to its answer a request may take `limits.request_timeout_ms`
//!   (run-now gets the longest check timeout on top); past it the handler is dropped and the
//!   caller gets 408 `request_timeout` when its body was still arriving, else 503 `timeout`,
//!   and the connection is closed.
//! - The client's address is put in each request's extensions as [`PeerAddr`] (warp's
//!   `addr::remote` only works under warp's own server); [`peer_addr`] reads it.
//! - Every answer is logged on target `cloudroutes::http` with the peer address, method, path
//!   (webhook keys masked), status and time taken.
//! - Shutdown: stop accepting, close idle connections, let requests in flight finish for at
//!   most the request timeout, then return.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudroutes_engine::config::LimitsSection;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use warp::Filter;
use warp::http::{HeaderValue, Method, Request, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::error::ApiError;

/// The client address of a request, put in its extensions by the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// A filter that yields the client address of the request, when the accept loop set one
/// (warp's test requests have none).
pub fn peer_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<PeerAddr>().map(|peer: Option<PeerAddr>| peer.map(|peer| peer.0))
}

/// How long a client may take, from `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To send a request's headers, and to start the next request on a keep-alive connection.
    pub header: Duration,
    /// From a request's headers to its answer.
    pub request: Duration,
}

impl Timeouts {
    /// Returns the timeouts `[limits]` sets.
    pub fn new(limits: &LimitsSection) -> Self {
        Self {
            header: Duration::from_millis(limits.header_timeout_ms),
            request: Duration::from_millis(limits.request_timeout_ms),
        }
    }

    /// Returns how long a request to `method` `path` may take: run-now waits for the check
    /// itself, so it gets the longest check timeout on top.
    pub fn for_request(&self, method: &Method, path: &str) -> Duration {
        if is_run_now(method, path) {
            self.request + cloudroutes_checks::MAX_CHECK_TIMEOUT
        } else {
            self.request
        }
    }
}

fn is_run_now(method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    method == Method::POST && matches!(parts.as_slice(), ["api", "v1", "monitors", _, "run"])
}

/// Serves `filter` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (for at most the request timeout) and returns.
pub async fn serve_filter<F>(
    filter: F,
    listener: tokio::net::TcpListener,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let service = TowerToHyperService::new(warp::service(filter));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = service.clone();
        let handler = hyper::service::service_fn(move |request| {
            answer(service.clone(), request, PeerAddr(peer), timeouts)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.header)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), handler);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(target: "cloudroutes::http", peer = %peer, error = %error, "connection closed");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(timeouts.request, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            target: "cloudroutes::http",
            "requests still in flight after the request timeout; shutting down anyway"
        );
    }
}

/// Waits a little after an accept error that is not one connection's (out of file
/// descriptors, say), so the loop does not spin.
async fn pause_after_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(target: "cloudroutes::http", error = %error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Answers one request: tags it with its peer address, runs the service within its
/// deadline and logs the answer.
async fn answer<S>(
    service: TowerToHyperService<S>,
    request: Request<Incoming>,
    peer: PeerAddr,
    timeouts: Timeouts,
) -> Result<Response, Infallible>
where
    TowerToHyperService<S>:
        hyper::service::Service<Request<TrackedBody>, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let version = request.version();
    let deadline = timeouts.for_request(&method, &path);
    let body_done = Arc::new(AtomicBool::new(request.body().is_end_stream()));
    let mut request = request.map(|inner| TrackedBody { inner, done: Arc::clone(&body_done) });
    request.extensions_mut().insert(peer);
    let call = hyper::service::Service::call(&service, request);
    let response = match tokio::time::timeout(deadline, call).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => timed_out(body_done.load(Ordering::Acquire), deadline),
    };
    tracing::info!(
        target: "cloudroutes::http",
        "{} \"{} {} {:?}\" {} {:.1}ms",
        peer.0,
        method,
        masked_path(&path),
        version,
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0,
    );
    Ok(response)
}

/// Returns the answer to a request that ran out of time, closing the connection: 408 when its
/// body was still arriving, 503 when the server was slow.
pub fn timed_out(body_done: bool, deadline: Duration) -> Response {
    let ms = deadline.as_millis();
    let error = if body_done {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the server did not answer within {ms} ms (limits.request_timeout_ms)"),
        )
    } else {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request body did not arrive within {ms} ms (limits.request_timeout_ms)"),
        )
    };
    let mut response = error.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Returns `path` with a webhook intake key masked (`/api/v1/webhooks/{id}/***`): keys are
/// secrets and stay out of logs and the audit trail.
pub fn masked_path(path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "v1", "webhooks", id, _, rest @ ..] => {
            let mut masked = format!("/api/v1/webhooks/{id}/***");
            for part in rest {
                masked.push('/');
                masked.push_str(part);
            }
            masked
        }
        ["api", kind, id, _, action] if *kind != "v1" => format!("/api/{kind}/{id}/***/{action}"),
        _ => path.to_owned(),
    }
}

/// A request body that notes when it has been read to its end, so a timeout can tell a slow
/// client (408) from a slow server (503).
#[derive(Debug)]
pub struct TrackedBody {
    inner: Incoming,
    done: Arc<AtomicBool>,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_now_gets_the_longest_check_timeout_on_top() {
        let timeouts = Timeouts::new(&LimitsSection::default());
        let plain = timeouts.for_request(&Method::GET, "/api/v1/monitors");
        assert_eq!(plain, Duration::from_secs(30));
        let run = timeouts.for_request(&Method::POST, "/api/v1/monitors/m1/run");
        assert_eq!(run, Duration::from_secs(30) + cloudroutes_checks::MAX_CHECK_TIMEOUT);
        assert_eq!(timeouts.for_request(&Method::GET, "/api/v1/monitors/m1/run"), plain);
        assert_eq!(timeouts.for_request(&Method::POST, "/api/v1/monitors/m1/fail"), plain);
    }

    #[test]
    fn webhook_keys_are_masked_and_other_paths_kept() {
        assert_eq!(masked_path("/api/v1/webhooks/m1/s3cret"), "/api/v1/webhooks/m1/***");
        assert_eq!(
            masked_path("/api/v1/webhooks/m1/s3cret/failed"),
            "/api/v1/webhooks/m1/***/failed"
        );
        assert_eq!(masked_path("/api/cr-api/m1/s3cret/healthy"), "/api/cr-api/m1/***/healthy");
        assert_eq!(masked_path("/api/v1/monitors/m1/run"), "/api/v1/monitors/m1/run");
    }

    #[test]
    fn a_timeout_says_whose_fault_and_closes_the_connection() {
        let slow_client = timed_out(false, Duration::from_millis(500));
        assert_eq!(slow_client.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(slow_client.headers()[header::CONNECTION], "close");
        let slow_server = timed_out(true, Duration::from_millis(500));
        assert_eq!(slow_server.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
