//! HTTP servers the end-to-end tests run on loopback: a [`Target`] for checks to probe and a
//! [`Receiver`] that records what reactions send.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use warp::Filter;

use super::{body_value, wait_for};

/// Serves a warp filter on 127.0.0.1 at an ephemeral port, on the current runtime.
async fn serve<F>(filter: F) -> SocketAddr
where
    F: Filter<Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(warp::serve(filter).incoming(listener).run());
    addr
}

struct TargetInner {
    status: AtomicU16,
    hits: AtomicUsize,
    body: Mutex<String>,
}

/// An HTTP server for checks: answers every request with the current status and body.
#[derive(Clone)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<TargetInner>,
}

impl Target {
    /// Starts a target answering `status` with the body `all systems go`.
    pub async fn start(status: u16) -> Target {
        let inner = Arc::new(TargetInner {
            status: AtomicU16::new(status),
            hits: AtomicUsize::new(0),
            body: Mutex::new("all systems go".to_owned()),
        });
        let shared = Arc::clone(&inner);
        let route = warp::body::bytes().map(move |_body: warp::hyper::body::Bytes| {
            shared.hits.fetch_add(1, Ordering::SeqCst);
            let status = shared.status.load(Ordering::SeqCst);
            let body = shared.body.lock().unwrap().clone();
            warp::http::Response::builder()
                .status(status)
                .header("content-type", "text/plain")
                .body(body)
                .unwrap()
        });
        let addr = serve(route).await;
        Target { addr, inner }
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes the status every later request gets.
    pub fn set_status(&self, status: u16) {
        self.inner.status.store(status, Ordering::SeqCst);
    }

    /// Changes the body every later request gets.
    pub fn set_body(&self, body: &str) {
        *self.inner.body.lock().unwrap() = body.to_owned();
    }

    /// How many requests arrived so far.
    pub fn hits(&self) -> usize {
        self.inner.hits.load(Ordering::SeqCst)
    }
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// Headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The body as JSON (`Value::Null` when empty, a string when not JSON).
    pub body: Value,
    /// Arrival, monotonic.
    pub at: Instant,
    /// Arrival, wall clock (comparable with the node's timestamps).
    pub wall: SystemTime,
}

impl Recorded {
    /// One header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

struct ReceiverInner {
    status: AtomicU16,
    requests: Mutex<Vec<Recorded>>,
}

/// An HTTP server that records every request (a reaction's webhook target).
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<ReceiverInner>,
}

impl Receiver {
    /// Starts a receiver answering 200.
    pub async fn start() -> Receiver {
        let inner = Arc::new(ReceiverInner {
            status: AtomicU16::new(200),
            requests: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&inner);
        let route = warp::method()
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |method: warp::http::Method,
                      path: warp::path::FullPath,
                      headers: warp::http::HeaderMap,
                      body: warp::hyper::body::Bytes| {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| {
                            (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into())
                        })
                        .collect();
                    shared.requests.lock().unwrap().push(Recorded {
                        method: method.to_string(),
                        path: path.as_str().to_owned(),
                        headers,
                        body: body_value(&body),
                        at: Instant::now(),
                        wall: SystemTime::now(),
                    });
                    let status = shared.status.load(Ordering::SeqCst);
                    warp::http::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(r#"{"received":true}"#.to_owned())
                        .unwrap()
                },
            );
        let addr = serve(route).await;
        Receiver { addr, inner }
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes the status every later request gets.
    pub fn set_status(&self, status: u16) {
        self.inner.status.store(status, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// The requests to one path, in arrival order.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.inner.requests.lock().unwrap().len()
    }

    /// How many requests to `path` arrived so far.
    pub fn count_to(&self, path: &str) -> usize {
        self.inner.requests.lock().unwrap().iter().filter(|r| r.path == path).count()
    }

    /// Waits until at least `n` requests to `path` arrived and returns them all.
    pub async fn wait_count_to(&self, path: &str, n: usize, timeout: Duration) -> Vec<Recorded> {
        wait_for(timeout, &format!("{n} request(s) to {path} at the receiver"), || async {
            let got = self.requests_to(path);
            (got.len() >= n).then_some(got)
        })
        .await
    }
}
