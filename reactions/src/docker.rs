//! What the Docker Engine API reactions share: the `endpoint` (the daemon's unix socket or a TCP
//! address), the API version prefix, container names, one request sent over either transport
//! under the reaction's deadline, and Docker's error answers as [`ReactionError`]s.
//!
//! The types: [`docker_restart_container`](crate::docker_restart_container),
//! [`docker_start_container`](crate::docker_start_container),
//! [`docker_kill_container`](crate::docker_kill_container) (all three run a
//! [`ContainerActionReaction`]) and [`docker_pull_image`](crate::docker_pull_image).
//!
//! reqwest cannot dial a unix socket, so that transport speaks HTTP/1.1 through hyper's client
//! connection API on a `tokio::net::UnixStream`; TCP endpoints use the node's pooled client.
//! Docker answers errors as `{"message": "No such container: web"}`: the message is quoted.
//! API reference: <https://docs.docker.com/reference/api/engine/version/v1.43/>.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;

use crate::api::{self, innermost_message, tidy};
use crate::{ConfigError, ReactionError};

mod container;

pub use container::{ContainerAction, ContainerActionReaction};

/// Default `endpoint`: the local daemon's socket.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";
/// Default `api_version`: Docker Engine 24 and later answer it.
pub const DEFAULT_API_VERSION: &str = "v1.43";
/// The `Host` header sent over the unix socket (HTTP/1.1 requires one; Docker ignores it).
const SOCKET_HOST: &str = "docker";
/// How much of an error answer is read to find Docker's message.
const ERROR_BODY_BYTES: usize = 4096;
/// Longest accepted container name or id.
const MAX_CONTAINER_LEN: usize = 255;

/// Serde default of `endpoint`.
pub fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.into()
}

/// Serde default of `api_version`.
pub fn default_api_version() -> String {
    DEFAULT_API_VERSION.into()
}

/// Where the Docker daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket, e.g. `/var/run/docker.sock`.
    Unix(PathBuf),
    /// An `http`/`https` base URL whose path ends in `/`.
    Tcp(Url),
}

impl Endpoint {
    /// Parses `unix:///absolute/path`, `http://host:port` or `https://host:port`, naming
    /// `endpoint` on error.
    ///
    /// # Errors
    /// Another scheme (with a hint for `tcp://`), a relative socket path, or a URL with a query
    /// or fragment.
    pub fn parse(endpoint: &str) -> Result<Self, ConfigError> {
        let invalid = |message: &str| ConfigError::invalid("endpoint", message);
        if let Some(path) = endpoint.strip_prefix("unix://") {
            if !path.starts_with('/') || path.len() < 2 || path.contains('\0') {
                return Err(invalid(
                    "a unix socket path must be absolute, as in unix:///var/run/docker.sock",
                ));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if endpoint.starts_with("tcp://") {
            return Err(invalid(
                "write tcp://HOST:PORT as http://HOST:2375 or https://HOST:2376 (tls)",
            ));
        }
        let mut url = api::parse_http_url("endpoint", endpoint).map_err(|error| {
            let message = format!("{}; or give unix:///PATH for a socket", error.message);
            ConfigError::invalid("endpoint", message)
        })?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not have a query or fragment"));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self::Tcp(url))
    }
}

/// Checks an API version prefix such as `v1.43`, naming `api_version`.
///
/// # Errors
/// Anything but `v`, digits, `.`, digits.
pub fn validate_api_version(version: &str) -> Result<(), ConfigError> {
    let digits = |part: &str| {
        !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit())
    };
    match version.strip_prefix('v').and_then(|rest| rest.split_once('.')) {
        Some((major, minor)) if digits(major) && digits(minor) => Ok(()),
        _ => Err(ConfigError::invalid("api_version", "must look like v1.43")),
    }
}

/// Checks a container name or id as Docker accepts them: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (which
/// covers 12 to 64 hex digit ids), naming `container`.
///
/// # Errors
/// Empty, one character, too long, or another character (a name never holds `/`).
pub fn validate_container(container: &str) -> Result<(), ConfigError> {
    let invalid = |message: &str| ConfigError::invalid("container", message);
    let mut bytes = container.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok || container.len() < 2 {
        return Err(invalid(
            "must be a container name or id: a letter or digit, then at least one letter, \
             digit, `_`, `.` or `-`",
        ));
    }
    if container.len() > MAX_CONTAINER_LEN {
        return Err(invalid("must be at most 255 characters"));
    }
    Ok(())
}

/// A validated Docker endpoint, API version and deadline.
#[derive(Debug, Clone)]
pub struct Target {
    endpoint: Endpoint,
    api_version: String,
    timeout_ms: u64,
}

impl Target {
    /// Validates the fields every Docker type has, in this order.
    ///
    /// # Errors
    /// The first invalid field: `endpoint`, `api_version` or `timeout_ms`.
    pub fn parse(endpoint: &str, api_version: &str, timeout_ms: u64) -> Result<Self, ConfigError> {
        let endpoint = Endpoint::parse(endpoint)?;
        validate_api_version(api_version)?;
        api::validate_timeout_ms(timeout_ms)?;
        Ok(Self { endpoint, api_version: api_version.to_owned(), timeout_ms })
    }
}

/// The Docker Engine API of one reaction: where, which version, how long, over which client.
#[derive(Debug, Clone)]
pub struct DockerApi {
    kind: &'static str,
    target: Target,
    http: crate::egress::GuardedClient,
}

impl DockerApi {
    /// Returns the API of reaction type `kind` at `target`; TCP requests go through `http`.
    pub fn new(kind: &'static str, target: Target, http: crate::egress::GuardedClient) -> Self {
        Self { kind, target, http }
    }

    /// Returns the reaction type name.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Returns the deadline of a run starting now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.target.timeout_ms)
    }

    /// Returns the error of a run that ran out of time.
    pub fn timed_out(&self) -> ReactionError {
        ReactionError::Timeout { kind: self.kind, timeout_ms: self.target.timeout_ms }
    }

    /// Sends `POST /{api_version}/{path}?{query}` with `headers` and no body, and returns the
    /// answer once its head has arrived, all before `deadline`.
    ///
    /// # Errors
    /// [`ReactionError::Timeout`] past the deadline; [`ReactionError::Transport`] when the
    /// daemon cannot be reached (naming the socket) or the connection fails.
    pub async fn post(
        &self,
        path: &str,
        query: &[(&str, &str)],
        headers: Vec<(HeaderName, HeaderValue)>,
        deadline: Instant,
    ) -> Result<DockerResponse, ReactionError> {
        let path = format!("{}/{}", self.target.api_version, path.trim_start_matches('/'));
        let query = (!query.is_empty()).then(|| {
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish()
        });
        let send = async {
            match &self.target.endpoint {
                Endpoint::Unix(socket) => self.post_unix(socket, &path, query, headers).await,
                Endpoint::Tcp(base) => self.post_tcp(base, &path, query, headers, deadline).await,
            }
        };
        tokio::time::timeout_at(deadline, send).await.unwrap_or_else(|_| Err(self.timed_out()))
    }

    async fn post_unix(
        &self,
        socket: &Path,
        path: &str,
        query: Option<String>,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<DockerResponse, ReactionError> {
        let kind = self.kind;
        let transport = |message: String| ReactionError::Transport { kind, message };
        let stream = UnixStream::connect(socket).await.map_err(|error| {
            transport(format!("cannot connect to docker socket {}: {error}", socket.display()))
        })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| transport(innermost_message(&error)))?;
        // The connection runs beside the request and ends with the response (or on drop).
        let connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let uri = match query {
            Some(query) => format!("/{path}?{query}"),
            None => format!("/{path}"),
        };
        let mut request = hyper::Request::post(uri)
            .header(HOST, SOCKET_HOST)
            .header(USER_AGENT, concat!("CloudRoutes/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request.body(Empty::<Bytes>::new()).map_err(|error| {
            ReactionError::Failed { kind, message: format!("cannot build the request: {error}") }
        })?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| transport(innermost_message(&error)))?;
        Ok(DockerResponse {
            status: response.status().as_u16(),
            body: ResponseBody::Unix { body: response.into_body(), _connection: connection },
        })
    }

    async fn post_tcp(
        &self,
        base: &Url,
        path: &str,
        query: Option<String>,
        headers: Vec<(HeaderName, HeaderValue)>,
        deadline: Instant,
    ) -> Result<DockerResponse, ReactionError> {
        let mut url = api::endpoint(base, path);
        url.set_query(query.as_deref());
        self.http.check_url(self.kind, &url).await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut request = self.http.post(url).timeout(remaining);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|error| {
            if error.is_timeout() {
                return self.timed_out();
            }
            let mut message = innermost_message(&error);
            if error.is_connect() {
                message = format!("cannot connect to docker at {base}: {message}");
            }
            ReactionError::Transport { kind: self.kind, message }
        })?;
        Ok(DockerResponse { status: response.status().as_u16(), body: ResponseBody::Tcp(response) })
    }
}

/// Aborts the task driving a unix-socket connection when the answer is dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The body of an answer, read as it arrives.
#[derive(Debug)]
enum ResponseBody {
    Unix { body: Incoming, _connection: AbortOnDrop },
    Tcp(reqwest::Response),
}

/// An answer of the Docker daemon whose head has arrived.
#[derive(Debug)]
pub struct DockerResponse {
    /// The HTTP status.
    pub status: u16,
    body: ResponseBody,
}

impl DockerResponse {
    /// Returns the next piece of the body, or `None` at its end.
    ///
    /// # Errors
    /// The connection failed mid-body (the message says how).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match &mut self.body {
            ResponseBody::Unix { body, .. } => loop {
                match body.frame().await {
                    None => return Ok(None),
                    Some(Err(error)) => return Err(innermost_message(&error)),
                    // Trailers carry no data: skip them.
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
            ResponseBody::Tcp(response) => {
                response.chunk().await.map_err(|error| innermost_message(&error))
            }
        }
    }

    /// Reads an error answer (what arrives before `deadline`) and returns it as
    /// [`ReactionError::Rejected`] quoting Docker's `message`.
    pub async fn rejection(mut self, kind: &'static str, deadline: Instant) -> ReactionError {
        let mut body = Vec::new();
        let read = async {
            while body.len() < ERROR_BODY_BYTES {
                match self.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
        };
        // The status is the answer; a body that stalls only shortens what is quoted.
        let _ = tokio::time::timeout_at(deadline, read).await;
        ReactionError::Rejected { kind, status: self.status, body: docker_message(&body) }
    }
}

/// Returns the `message` of a Docker error document, or the body itself, as one short line.
pub fn docker_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("message").and_then(|m| m.as_str()).map(str::to_owned));
    match message {
        Some(message) => tidy(message.as_bytes()),
        None => tidy(body),
    }
}

#[cfg(test)]
#[path = "docker_tests.rs"]
pub(crate) mod tests;
