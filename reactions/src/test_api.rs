//! A local fake of a cloud API for the reaction tests: it records every request exactly
//! (method, path, query, headers, body) and answers what the test scripted, so a test asserts
//! the request the real API requires and the reaction's handling of each answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use warp::Filter;

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Header names in lowercase, with their values, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// Returns the value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Returns the body parsed as JSON; panics when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!("body is not json ({error}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    /// Returns the body parsed as a form, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The status.
    pub status: u16,
    /// The body (sent as `application/json`).
    pub body: String,
    /// Waits this long before answering (to test timeouts).
    pub delay: Duration,
}

impl Reply {
    /// A JSON answer with `status`.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self { status, body: body.to_string(), delay: Duration::ZERO }
    }

    /// An answer that comes only after `delay`.
    pub fn slow(delay: Duration) -> Self {
        Self { status: 200, body: "{}".into(), delay }
    }
}

#[derive(Debug, Default)]
struct Script {
    /// Answers by `METHOD path`, used in order; the last one repeats.
    replies: HashMap<String, Vec<Reply>>,
    requests: Vec<Recorded>,
}

/// The fake API server, on `127.0.0.1` and a free port (or a unix socket) until the test ends.
#[derive(Debug, Clone)]
pub(crate) struct FakeApi {
    /// Where it listens (unspecified for a unix-socket fake).
    pub addr: SocketAddr,
    socket: Option<PathBuf>,
    script: Arc<Mutex<Script>>,
}

impl FakeApi {
    /// Starts a fake that answers `200 {}` to anything not scripted.
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(warp::serve(recording_route(Arc::clone(&script))).incoming(listener).run());
        Self { addr, socket: None, script }
    }

    /// Starts the same fake on a unix socket at `path` (a local daemon's API, such as Docker's);
    /// its `addr` is unspecified and its `base_url` is `unix://PATH`.
    pub async fn start_unix(path: &Path) -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let listener = UnixListener::bind(path).unwrap();
        tokio::spawn(warp::serve(recording_route(Arc::clone(&script))).incoming(listener).run());
        let addr = SocketAddr::from(([0, 0, 0, 0], 0));
        Self { addr, socket: Some(path.to_owned()), script }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): the reaction's `api_base_url`; for a
    /// unix-socket fake, `unix://PATH`.
    pub fn base_url(&self) -> String {
        match &self.socket {
            Some(path) => format!("unix://{}", path.display()),
            None => format!("http://{}", self.addr),
        }
    }

    /// Scripts the answers to `method path`, used in order; the last one repeats.
    pub fn reply(&self, method: &str, path: &str, replies: Vec<Reply>) {
        self.script.lock().unwrap().replies.insert(format!("{method} {path}"), replies);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().requests.clone()
    }
}

/// Records each request into `script` and answers as it says.
fn recording_route(
    shared: Arc<Mutex<Script>>,
) -> impl Filter<Extract = (warp::http::Response<String>,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: warp::http::HeaderMap,
                  body: bytes::Bytes| {
                let shared = Arc::clone(&shared);
                async move {
                    let recorded = Recorded {
                        method: method.to_string(),
                        path: path.as_str().to_owned(),
                        query: (!query.is_empty()).then_some(query),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                                (k.as_str().to_owned(), value)
                            })
                            .collect(),
                        body: body.to_vec(),
                    };
                    let key = format!("{} {}", recorded.method, recorded.path);
                    let reply = {
                        let mut script = shared.lock().unwrap();
                        script.requests.push(recorded);
                        match script.replies.get_mut(&key) {
                            Some(replies) if replies.len() > 1 => replies.remove(0),
                            Some(replies) => replies[0].clone(),
                            None => Reply::json(200, serde_json::json!({})),
                        }
                    };
                    tokio::time::sleep(reply.delay).await;
                    warp::http::Response::builder()
                        .status(reply.status)
                        .header("content-type", "application/json")
                        .body(reply.body)
                        .unwrap()
                }
            },
        )
}

/// A loopback port nothing listens on, reserved while the returned socket lives: the socket is
/// bound but not listening, so a connection to the port is refused, and no server another test
/// starts meanwhile can be given the port. (A listener bound and dropped at once frees its port
/// for the next server, whose silence then looks like a slow API.)
pub(crate) fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind a loopback port");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}
