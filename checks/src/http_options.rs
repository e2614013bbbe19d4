//! What the HTTP check types share: the request options (`host`, `follow_redirects`,
//! `verify_tls`, `headers`, `max_response_ms`), their validation, sending a request with them,
//! and the `expect_json` assertion on a response body.
//!
//! serde cannot combine `deny_unknown_fields` with `flatten`, so each type's `Config` declares
//! these fields itself and hands them here as an `HttpOptions` view.
//!
//! Redirects are followed here, hop by hop, on the node's non-following client rather than by a
//! redirect-following one: a `host` override and credentials in `headers` belong to the URL's
//! own origin, so they are sent only while a hop stays on that origin (scheme, host and port).

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_rustls::rustls;
use url::{Position, Url};

use crate::support::{
    MAX_TIMEOUT_MS, drain_for_reuse, host_and_port, no_answer_within, request_error_outcome,
    status_outcome, validate_timeout_ms,
};
use crate::{CheckContext, ConfigError};

mod expect_json;

pub use expect_json::ExpectJson;

/// The most redirects followed when `follow_redirects` is on.
pub const MAX_REDIRECTS: usize = 10;
/// The most custom request headers a check may send.
pub const MAX_HEADERS: usize = 32;
/// The longest value of one custom header.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// How much of a response body is read to search it or parse it as JSON: the first 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest `host` override: a 253-byte DNS name, a colon and a port.
const MAX_HOST_OVERRIDE_BYTES: usize = 259;
/// How many characters of a redirect location a reason quotes.
const QUOTED_LOCATION_CHARS: usize = 80;

/// Headers the client manages itself; a check may not set them in `headers`.
const MANAGED_HEADERS: [(&str, &str); 8] = [
    ("host", "use the `host` field to set the host header"),
    ("content-length", "is set from the request body"),
    ("transfer-encoding", "is set from the request body"),
    ("connection", "is a hop-by-hop header managed by the client"),
    ("keep-alive", "is a hop-by-hop header managed by the client"),
    ("proxy-connection", "is a hop-by-hop header managed by the client"),
    ("te", "is a hop-by-hop header managed by the client"),
    ("upgrade", "is a hop-by-hop header managed by the client"),
];

/// Redirect statuses followed (300, 304 and 305 are not redirects to follow).
const FOLLOWED_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// Custom headers not sent to a redirect target on another origin, as browsers do.
const CROSS_ORIGIN_DROPPED: [HeaderName; 3] =
    [header::AUTHORIZATION, header::COOKIE, header::PROXY_AUTHORIZATION];

/// Serde default of `verify_tls`.
pub(crate) fn default_verify_tls() -> bool {
    true
}

/// Custom request headers, name to value. `Debug` shows the names only: values often carry
/// tokens.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub struct CustomHeaders(pub BTreeMap<String, String>);

impl fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.keys().map(|name| (name, "***"))).finish()
    }
}

/// The shared options of one HTTP check's config, borrowed from its fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpOptions<'a> {
    /// `host`: the Host header to send instead of the URL's.
    pub host: Option<&'a str>,
    /// `follow_redirects`.
    pub follow_redirects: bool,
    /// `verify_tls`.
    pub verify_tls: bool,
    /// `headers`.
    pub headers: &'a CustomHeaders,
    /// `max_response_ms`.
    pub max_response_ms: Option<u64>,
    /// `timeout_ms`.
    pub timeout_ms: u64,
}

impl HttpOptions<'_> {
    /// Checks the shared options in field order: `timeout_ms`, `host`, `headers`,
    /// `max_response_ms`. `also_managed` lists more header names a type sets itself, with why.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`headers.<name>` for one header).
    pub(crate) fn validate(&self, also_managed: &[(&str, &str)]) -> Result<(), ConfigError> {
        validate_timeout_ms(self.timeout_ms)?;
        if let Some(host) = self.host {
            host_header_value(host)?;
        }
        header_map(self.headers, also_managed)?;
        if let Some(max_response_ms) = self.max_response_ms {
            if !(1..=MAX_TIMEOUT_MS).contains(&max_response_ms) {
                return Err(ConfigError::invalid(
                    "max_response_ms",
                    format!("must be between 1 and {MAX_TIMEOUT_MS}"),
                ));
            }
            if max_response_ms > self.timeout_ms {
                return Err(ConfigError::invalid(
                    "max_response_ms",
                    format!("must be at most timeout_ms ({})", self.timeout_ms),
                ));
            }
        }
        Ok(())
    }
}

/// Returns the Host header for a `host` override: a host name or IP address with an optional
/// port, normalised as a URL authority (lowercase, IDN as punycode, default port dropped).
fn host_header_value(host: &str) -> Result<HeaderValue, ConfigError> {
    let invalid = || {
        ConfigError::invalid(
            "host",
            "must be a host name or ip address with an optional port, e.g. `www.example.com` \
             or `example.com:8080`",
        )
    };
    if host.is_empty() {
        return Err(ConfigError::invalid("host", "must not be empty"));
    }
    if host.len() > MAX_HOST_OVERRIDE_BYTES {
        return Err(ConfigError::invalid(
            "host",
            format!("must be at most {MAX_HOST_OVERRIDE_BYTES} bytes"),
        ));
    }
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "/\\@?#".contains(c);
    if host.contains(forbidden) {
        return Err(invalid());
    }
    let parsed = Url::parse(&format!("http://{host}/")).map_err(|_| invalid())?;
    let authority = &parsed[Position::BeforeHost..Position::AfterPort];
    if authority.is_empty() {
        return Err(invalid());
    }
    HeaderValue::from_str(authority).map_err(|_| invalid())
}

/// Validates `headers` and returns them as a header map with every value marked sensitive.
fn header_map(
    headers: &CustomHeaders,
    also_managed: &[(&str, &str)],
) -> Result<HeaderMap, ConfigError> {
    if headers.0.len() > MAX_HEADERS {
        return Err(ConfigError::invalid(
            "headers",
            format!("must have at most {MAX_HEADERS} headers, not {}", headers.0.len()),
        ));
    }
    let mut map = HeaderMap::with_capacity(headers.0.len());
    for (name, value) in &headers.0 {
        let field = || format!("headers.{name}");
        let parsed_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::invalid(field(), "not a valid http header name"))?;
        let managed = MANAGED_HEADERS.iter().chain(also_managed);
        if let Some((_, why)) = managed.into_iter().find(|(m, _)| *m == parsed_name.as_str()) {
            return Err(ConfigError::invalid(field(), format!("{parsed_name} {why}")));
        }
        if map.contains_key(&parsed_name) {
            return Err(ConfigError::invalid(
                field(),
                format!("{parsed_name} is given twice (header names are case-insensitive)"),
            ));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return Err(ConfigError::invalid(
                field(),
                format!("value must be at most {MAX_HEADER_VALUE_BYTES} bytes"),
            ));
        }
        let mut parsed_value = HeaderValue::from_str(value).map_err(|_| {
            ConfigError::invalid(
                field(),
                "not a valid http header value (no line breaks or control characters)",
            )
        })?;
        parsed_value.set_sensitive(true);
        map.insert(parsed_name, parsed_value);
    }
    Ok(map)
}

/// Returns `text` cut to `max_chars` characters, with `…` when something was cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A request body and its content type. `Debug` shows the length only: bodies may hold
/// credentials.
#[derive(Clone)]
pub(crate) struct Payload {
    /// The bytes sent.
    pub bytes: Vec<u8>,
    /// The `Content-Type` header sent with them.
    pub content_type: HeaderValue,
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes, {:?})", self.bytes.len(), self.content_type)
    }
}

/// A validated HTTP request of one check, ready to send on every run.
#[derive(Debug)]
pub(crate) struct HttpRequest {
    client: reqwest::Client,
    egress: Arc<Egress>,
    method: Method,
    url: Url,
    host: Option<HeaderValue>,
    headers: HeaderMap,
    payload: Option<Payload>,
    follow_redirects: bool,
    timeout: Duration,
    timeout_ms: u64,
    max_response_ms: Option<u64>,
}

/// The final response of an exchange (after any redirects) and when its head arrived.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The response, its body still unread.
    pub response: reqwest::Response,
    /// Time from sending the first request to this response's status line and headers.
    pub elapsed: Duration,
}

impl Answer {
    /// `host:port` of the server that gave this response (built only for a reason that names
    /// it, not on every check).
    pub fn target(&self) -> String {
        host_and_port(self.response.url())
    }
}

/// What a check made of an answer, and the response whose body is drained afterwards so its
/// connection goes back to the pool.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// The check's outcome.
    pub outcome: CheckOutcome,
    /// A response with an unread body, drained once the outcome is known.
    pub unread: Option<reqwest::Response>,
}

impl From<CheckOutcome> for Verdict {
    fn from(outcome: CheckOutcome) -> Self {
        Self { outcome, unread: None }
    }
}

/// The start of a response body and whether more may have followed.
#[derive(Debug)]
pub(crate) struct BodyPrefix {
    /// The bytes read.
    pub bytes: Vec<u8>,
    /// True when the read stopped at its limit.
    pub reached_limit: bool,
}

impl HttpRequest {
    /// Validates the options and builds the request on the node's client that fits
    /// `verify_tls`; `payload` is the body a POST sends.
    ///
    /// # Errors
    /// Returns the first invalid option, as [`HttpOptions::validate`] does.
    pub(crate) fn new(
        method: Method,
        url: Url,
        options: &HttpOptions<'_>,
        payload: Option<Payload>,
        context: &CheckContext,
    ) -> Result<Self, ConfigError> {
        let client = if options.verify_tls { &context.http } else { &context.http_unverified };
        crate::egress::refuse_denied_url(&context.egress, "url", &url)?;
        Ok(Self {
            client: client.clone(),
            egress: Arc::clone(&context.egress),
            method,
            url,
            host: options.host.map(host_header_value).transpose()?,
            headers: header_map(options.headers, &[])?,
            payload,
            follow_redirects: options.follow_redirects,
            timeout: validate_timeout_ms(options.timeout_ms)?,
            timeout_ms: options.timeout_ms,
            max_response_ms: options.max_response_ms,
        })
    }

    /// Returns the longest one run may take (`timeout_ms`).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the request and lets `judge` decide on the answer, all within `timeout_ms`; then
    /// drains what `judge` left unread, within what remains of it.
    pub(crate) async fn run<F, Fut>(&self, judge: F) -> CheckOutcome
    where
        F: FnOnce(Answer) -> Fut,
        Fut: Future<Output = Verdict>,
    {
        let started = Instant::now();
        let exchange = async {
            match self.send(started).await {
                Ok(answer) => judge(answer).await,
                Err(outcome) => Verdict::from(outcome),
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Verdict { outcome, unread }) => {
                if let Some(response) = unread {
                    drain_for_reuse(response, self.timeout.saturating_sub(started.elapsed())).await;
                }
                outcome
            }
            Err(_) => no_answer_within(self.timeout_ms),
        }
    }

    /// Sends the request, following up to [`MAX_REDIRECTS`] redirects when asked.
    async fn send(&self, started: Instant) -> Result<Answer, CheckOutcome> {
        let mut url = self.url.clone();
        let mut method = self.method.clone();
        let mut payload = self.payload.as_ref();
        let mut redirects = 0;
        loop {
            // Every hop is judged on its own host and port before anything is sent to it.
            crate::egress::check_url(&self.egress, &url).await?;
            // No per-request timeout: the one of `run` covers every hop and the body, and a
            // second timer per check costs CPU on every check.
            let mut request = self.client.request(method.clone(), url.clone());
            // The first hop is the configured URL itself: no need to build two origins (four
            // allocations) on every check to find that out. A plain GET adds no header at all.
            let same_origin = redirects == 0 || url.origin() == self.url.origin();
            let host = self.host.as_ref().filter(|_| same_origin);
            if !self.headers.is_empty() || host.is_some() || payload.is_some() {
                let mut headers = self.headers.clone();
                if let Some(host) = host {
                    headers.insert(header::HOST, host.clone());
                }
                if !same_origin {
                    for name in &CROSS_ORIGIN_DROPPED {
                        headers.remove(name);
                    }
                }
                if let Some(payload) = payload {
                    headers.insert(header::CONTENT_TYPE, payload.content_type.clone());
                    // An empty body would go without any length; servers may answer 411.
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(payload.bytes.len()));
                    request = request.body(payload.bytes.clone());
                }
                request = request.headers(headers);
            }
            let response = request.send().await.map_err(|error| {
                http_error_outcome(&error, &host_and_port(&url), self.timeout_ms)
            })?;
            let status = response.status();
            if !self.follow_redirects || !FOLLOWED_STATUSES.contains(&status.as_u16()) {
                return Ok(Answer { response, elapsed: started.elapsed() });
            }
            let Some(location) = response.headers().get(header::LOCATION) else {
                return Ok(Answer { response, elapsed: started.elapsed() });
            };
            let next = redirect_target(&url, location, status.as_u16())?;
            if redirects == MAX_REDIRECTS {
                return Err(CheckOutcome::Failed {
                    reason: format!(
                        "more than {MAX_REDIRECTS} redirects, the last from {} to {}",
                        without_query(&url),
                        without_query(&next)
                    ),
                });
            }
            // 303 turns any method but HEAD into GET; 301 and 302 turn POST into GET, as
            // browsers do; 307 and 308 repeat the request as it was.
            let becomes_get = match status.as_u16() {
                303 => method != Method::HEAD,
                301 | 302 => method == Method::POST,
                _ => false,
            };
            if becomes_get {
                method = Method::GET;
                payload = None;
            }
            drain_for_reuse(response, self.timeout.saturating_sub(started.elapsed())).await;
            redirects += 1;
            url = next;
        }
    }

    /// Judges the head of an answer: the status against `codes` (when given), then the time
    /// against `max_response_ms`. `Ok` holds the healthy reason so far: `HTTP 200`, or
    /// `HTTP 200 in 12 ms` when a threshold is set.
    pub(crate) fn judge_head(
        &self,
        answer: &Answer,
        codes: Option<&[u16]>,
    ) -> Result<String, CheckOutcome> {
        let status = answer.response.status();
        if let Some(codes) = codes {
            let outcome = status_outcome(status, codes);
            if !matches!(outcome, CheckOutcome::Healthy { .. }) {
                return Err(outcome);
            }
        }
        let code = status.as_u16();
        let elapsed_ms = answer.elapsed.as_millis();
        match self.max_response_ms {
            Some(max) if elapsed_ms > u128::from(max) => Err(CheckOutcome::Failed {
                reason: format!("HTTP {code} in {elapsed_ms} ms, slower than {max} ms"),
            }),
            Some(_) => Ok(format!("HTTP {code} in {elapsed_ms} ms")),
            None => Ok(format!("HTTP {code}")),
        }
    }

    /// Judges an answer by its status, its time and, when given, a JSON assertion on its body.
    pub(crate) async fn judge_status_and_json(
        &self,
        mut answer: Answer,
        codes: &[u16],
        expect_json: Option<&ExpectJson>,
    ) -> Verdict {
        let head = match self.judge_head(&answer, Some(codes)) {
            Ok(head) => head,
            Err(outcome) => return Verdict { outcome, unread: Some(answer.response) },
        };
        let Some(expect_json) = expect_json else {
            let outcome = CheckOutcome::Healthy { reason: head };
            return Verdict { outcome, unread: Some(answer.response) };
        };
        let body = match read_body_prefix(&mut answer.response, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(error) => return self.body_error_outcome(&error, &answer.target()).into(),
        };
        let outcome = match expect_json.judge(&body) {
            Ok(json) => CheckOutcome::Healthy { reason: format!("{head}, {json}") },
            Err(outcome) => outcome,
        };
        // A body cut at the limit is not drained: dropping it closes that one connection.
        Verdict { outcome, unread: (!body.reached_limit).then_some(answer.response) }
    }

    /// Returns the outcome of an error while reading a body from `target`.
    pub(crate) fn body_error_outcome(&self, error: &reqwest::Error, target: &str) -> CheckOutcome {
        http_error_outcome(error, target, self.timeout_ms)
    }
}

/// Returns where a redirect leads: `location` resolved against `url`, http or https only.
fn redirect_target(url: &Url, location: &HeaderValue, status: u16) -> Result<Url, CheckOutcome> {
    let failed = |reason: String| CheckOutcome::Failed { reason };
    let from = without_query(url);
    let location = location
        .to_str()
        .map_err(|_| failed(format!("HTTP {status} from {from} with an unreadable location")))?;
    let next = url.join(location).map_err(|error| {
        failed(format!(
            "HTTP {status} from {from} to an invalid location {:?}: {error}",
            truncate(location, QUOTED_LOCATION_CHARS)
        ))
    })?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(failed(format!(
            "HTTP {status} from {from} to a {} url, only http and https are followed",
            next.scheme()
        )));
    }
    Ok(next)
}

/// Returns a URL without its query and fragment, as reasons show it (queries may hold tokens).
fn without_query(url: &Url) -> &str {
    &url[..Position::AfterPath]
}

/// Reads at most `limit` bytes of the body, stopping at the first chunk that reaches it.
pub(crate) async fn read_body_prefix(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<BodyPrefix, reqwest::Error> {
    let expected = response.content_length().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(expected.min(limit));
    while let Some(chunk) = response.chunk().await? {
        let room = limit - bytes.len();
        if chunk.len() >= room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(BodyPrefix { bytes, reached_limit: true });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(BodyPrefix { bytes, reached_limit: false })
}

/// Returns the outcome of a failed HTTP exchange with `target`; a certificate the client
/// refused says so.
fn http_error_outcome(error: &reqwest::Error, target: &str, timeout_ms: u64) -> CheckOutcome {
    match find_tls_error(error) {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => {
            CheckOutcome::Failed { reason: format!("tls certificate of {target} refused: {tls}") }
        }
        Some(tls) => {
            CheckOutcome::Failed { reason: format!("tls handshake with {target} failed: {tls}") }
        }
        None => request_error_outcome(error, target, timeout_ms),
    }
}

/// Returns the TLS error in the `source` chain of `error`, looking inside `io::Error`s too
/// (their `source` skips the error they wrap).
fn find_tls_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        let wrapped = error.downcast_ref::<io::Error>().and_then(io::Error::get_ref);
        if let Some(found) = wrapped.and_then(|inner| find_tls_error(inner)) {
            return Some(found);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
#[path = "http_test_servers.rs"]
pub(crate) mod test_servers;

#[cfg(test)]
#[path = "http_options_tests.rs"]
mod tests;
