//! What the reaction types that call an HTTP API share: the `api_base_url` field, one request
//! with its auth and deadline, and its failures as [`ReactionError`]s.
//!
//! Every cloud type takes `api_base_url` (defaulting to the real service) so that users can
//! point it at a proxy or a compatible API, and tests at a local fake.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::egress::GuardedClient;
use crate::{ConfigError, ReactionError};

/// How much of a rejecting answer's body an error quotes.
pub const BODY_EXCERPT_BYTES: usize = 200;
/// Default `timeout_ms` of API reactions.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest accepted `timeout_ms`.
pub const MAX_TIMEOUT_MS: u64 = 120_000;
/// Largest answer body read (larger ones are cut).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Serde default of `timeout_ms`.
pub fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Returns `timeout_ms` as a duration when it lies in 1..=120000.
///
/// # Errors
/// Outside that range, naming `timeout_ms`.
pub fn validate_timeout_ms(timeout_ms: u64) -> Result<Duration, ConfigError> {
    if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(ConfigError::invalid(
            "timeout_ms",
            format!("must be between 1 and {MAX_TIMEOUT_MS}"),
        ));
    }
    Ok(Duration::from_millis(timeout_ms))
}

/// Parses an `http`/`https` URL with a host, naming `field` on error.
///
/// # Errors
/// Not a URL, another scheme, or no host.
pub fn parse_http_url(field: &str, url: &str) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url).map_err(|error| {
        ConfigError::invalid(
            field,
            format!("not a valid url: {}", error.to_string().to_lowercase()),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        let message = format!("scheme must be http or https, not `{}`", parsed.scheme());
        return Err(ConfigError::invalid(field, message));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(field, "must name a host"));
    }
    Ok(parsed)
}

/// Parses an `api_base_url`: an `http`/`https` URL without query or fragment. Paths are
/// joined under it, so `https://proxy.internal/do/` and `…/do` mean the same.
///
/// # Errors
/// As [`parse_http_url`], naming `api_base_url`; a query or fragment is refused too.
pub fn parse_base_url(url: &str) -> Result<Url, ConfigError> {
    let mut parsed = parse_http_url("api_base_url", url)?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::invalid("api_base_url", "must not have a query or fragment"));
    }
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    Ok(parsed)
}

/// Returns `base` joined with `path` (relative: `v2/droplets/1/actions`).
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path(), path.trim_start_matches('/'));
    url.set_path(&joined);
    url
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document (`Content-Type: application/json`).
    Json(serde_json::Value),
    /// An HTML form (`Content-Type: application/x-www-form-urlencoded`).
    Form(Vec<(String, String)>),
    /// Bytes sent as they are, with their content type: for a body that was signed (AWS
    /// Signature Version 4 hashes the exact bytes).
    Raw {
        /// The `Content-Type` header.
        content_type: &'static str,
        /// The body.
        bytes: Vec<u8>,
    },
}

/// One API request: built by a reaction, sent by [`ApiCall::send`].
#[derive(Debug)]
pub struct ApiCall {
    kind: &'static str,
    http: GuardedClient,
    url: Url,
    request: reqwest::RequestBuilder,
    timeout: Duration,
    timeout_ms: u64,
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, up to 1 MiB.
    pub body: Vec<u8>,
}

impl Answer {
    /// Returns the body as JSON.
    ///
    /// # Errors
    /// [`ReactionError::Failed`] when it is not JSON.
    pub fn json(&self, kind: &'static str) -> Result<serde_json::Value, ReactionError> {
        serde_json::from_slice(&self.body).map_err(|error| ReactionError::Failed {
            kind,
            message: format!("answer is not json ({error}): {}", tidy(&self.body)),
        })
    }
}

impl ApiCall {
    /// Starts a request of reaction type `kind`, to be answered within `timeout_ms`; the
    /// URL is judged by the client's egress policy when the request is sent.
    pub fn new(
        kind: &'static str,
        http: &GuardedClient,
        method: reqwest::Method,
        url: Url,
        timeout_ms: u64,
    ) -> Self {
        let timeout = Duration::from_millis(timeout_ms);
        let request = http.request(method, url.clone()).timeout(timeout);
        Self { kind, http: http.clone(), url, request, timeout, timeout_ms }
    }

    /// Adds a header whose value is a secret (kept out of the HTTP stack's debug output).
    #[must_use]
    pub fn secret_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(mut value) = HeaderValue::from_str(value) {
            value.set_sensitive(true);
            let mut map = HeaderMap::new();
            map.insert(HeaderName::from_static(name), value);
            self.request = self.request.headers(map);
        }
        self
    }

    /// Adds `Authorization: Bearer TOKEN`.
    #[must_use]
    pub fn bearer(self, token: &str) -> Self {
        self.secret_header("authorization", &format!("Bearer {token}"))
    }

    /// Adds HTTP basic auth.
    #[must_use]
    pub fn basic(mut self, user: &str, password: &str) -> Self {
        self.request = self.request.basic_auth(user, Some(password));
        self
    }

    /// Adds a plain header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: Body) -> Self {
        self.request = match body {
            Body::Empty => self.request,
            Body::Json(value) => self
                .request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(value.to_string()),
            Body::Form(pairs) => {
                let encoded = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .finish();
                self.request
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(encoded)
            }
            Body::Raw { content_type, bytes } => {
                self.request.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes)
            }
        };
        self
    }

    /// Sends the request and reads the answer within the deadline.
    ///
    /// # Errors
    /// [`ReactionError::Timeout`], [`ReactionError::Transport`], or
    /// [`ReactionError::Rejected`] for a non-2xx status (quoting the start of the body).
    pub async fn send(self) -> Result<Answer, ReactionError> {
        self.exchange(false).await
    }

    /// Sends the request and returns the answer whatever its status, with its body (up to
    /// 1 MiB): for APIs whose error bodies must be parsed, not quoted (Twilio's `code` and
    /// `message`). The caller maps a non-2xx status to an error.
    ///
    /// # Errors
    /// [`ReactionError::Timeout`] or [`ReactionError::Transport`].
    pub async fn send_any_status(self) -> Result<Answer, ReactionError> {
        self.exchange(true).await
    }

    async fn exchange(self, any_status: bool) -> Result<Answer, ReactionError> {
        let kind = self.kind;
        let timed_out = || ReactionError::Timeout { kind, timeout_ms: self.timeout_ms };
        let deadline = tokio::time::Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, self.http.check_url(kind, &self.url)).await {
            Ok(checked) => checked?,
            Err(_) => return Err(timed_out()),
        }
        let mut response = match tokio::time::timeout_at(deadline, self.request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) if error.is_timeout() => return Err(timed_out()),
            Ok(Err(error)) => {
                return Err(ReactionError::Transport { kind, message: innermost_message(&error) });
            }
            Err(_) => return Err(timed_out()),
        };
        let status = response.status().as_u16();
        let success = response.status().is_success();
        let limit = if success || any_status { MAX_ANSWER_BYTES } else { BODY_EXCERPT_BYTES };
        let mut body = Vec::new();
        let read = tokio::time::timeout_at(deadline, read_up_to(&mut response, &mut body, limit));
        let complete = read.await.is_ok();
        if !success {
            // The status is the answer; a body that stalls only shortens what is read of it.
            if any_status {
                return Ok(Answer { status, body });
            }
            return Err(ReactionError::Rejected { kind, status, body: tidy(&body) });
        }
        if !complete {
            return Err(timed_out());
        }
        Ok(Answer { status, body })
    }
}

/// Appends body chunks to `out` until it holds `limit` bytes or the body ends.
pub async fn read_up_to(response: &mut reqwest::Response, out: &mut Vec<u8>, limit: usize) {
    while out.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    out.truncate(limit);
}

/// Returns bytes as one line of text: invalid UTF-8 replaced, whitespace runs collapsed, cut
/// to [`BODY_EXCERPT_BYTES`].
pub fn tidy(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(BODY_EXCERPT_BYTES)];
    String::from_utf8_lossy(cut).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Returns the message of the deepest error in the `source` chain: the most specific one.
pub fn innermost_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// Checks a bearer token or API key: not empty, and no whitespace or control characters (it
/// goes into an HTTP header, which would refuse them). Messages never quote the value.
///
/// # Errors
/// Naming `field`.
pub fn validate_token(field: &str, token: &str) -> Result<(), ConfigError> {
    if token.is_empty() {
        return Err(ConfigError::invalid(field, "must not be empty"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(field, "must not contain spaces or control characters"));
    }
    Ok(())
}

/// Returns `error` with a rejecting answer's excerpt replaced by the API's own message, as
/// `message` picks it from the JSON body (DigitalOcean and Heroku send `{"message": …}`).
/// Other errors, and bodies that are not JSON or carry no message, are returned unchanged.
pub fn quote_message(
    error: ReactionError,
    message: impl Fn(&serde_json::Value) -> Option<String>,
) -> ReactionError {
    let ReactionError::Rejected { kind, status, body } = error else { return error };
    let picked = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| message(&json))
        .map(|text| tidy(text.as_bytes()))
        .filter(|text| !text.is_empty());
    ReactionError::Rejected { kind, status, body: picked.unwrap_or(body) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_api::{FakeApi, Reply};

    #[test]
    fn base_urls_join_paths_with_or_without_a_trailing_slash() {
        for base in ["https://api.example.com", "https://api.example.com/"] {
            let base = parse_base_url(base).unwrap();
            assert_eq!(
                endpoint(&base, "v2/droplets").as_str(),
                "https://api.example.com/v2/droplets"
            );
        }
        let proxied = parse_base_url("http://127.0.0.1:9000/do").unwrap();
        assert_eq!(endpoint(&proxied, "/v2/x").as_str(), "http://127.0.0.1:9000/do/v2/x");
        for bad in ["ftp://x", "https://x/?a=1", "nonsense", "https://x/#f"] {
            assert_eq!(parse_base_url(bad).unwrap_err().field, "api_base_url", "{bad}");
        }
    }

    fn call(fake: &FakeApi, method: reqwest::Method, path: &str, timeout_ms: u64) -> ApiCall {
        let url = endpoint(&parse_base_url(&fake.base_url()).unwrap(), path);
        let egress = cloudroutes_engine::egress::Egress::loopback_for_tests();
        let http = GuardedClient::new(std::sync::Arc::new(egress)).unwrap();
        ApiCall::new("test", &http, method, url, timeout_ms)
    }

    #[tokio::test]
    async fn a_call_sends_auth_and_body_and_maps_answers_to_errors() {
        let fake = FakeApi::start().await;
        fake.reply(
            "POST",
            "/v2/things",
            vec![
                Reply::json(201, json!({"id": 7})),
                Reply::json(503, json!({"message": "try later"})),
                Reply::json(422, json!({"message": "bad droplet"})),
            ],
        );
        let answer = call(&fake, reqwest::Method::POST, "v2/things", 2000)
            .bearer("tok")
            .body(Body::Json(json!({"type": "reboot"})))
            .send()
            .await
            .unwrap();
        assert_eq!((answer.status, answer.json("test").unwrap()), (201, json!({"id": 7})));
        let request = &fake.requests()[0];
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v2/things"));
        assert_eq!(request.header("authorization"), Some("Bearer tok"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.json(), json!({"type": "reboot"}));
        let unavailable = call(&fake, reqwest::Method::POST, "v2/things", 2000).send().await;
        let error = unavailable.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert_eq!(error.to_string(), r#"test: target answered HTTP 503 {"message":"try later"}"#);
        let rejected = call(&fake, reqwest::Method::POST, "v2/things", 2000).send().await;
        assert!(!rejected.unwrap_err().is_retryable(), "a 422 is final");
    }

    #[tokio::test]
    async fn a_slow_answer_times_out_and_a_form_is_encoded() {
        let fake = FakeApi::start().await;
        fake.reply("GET", "/slow", vec![Reply::slow(Duration::from_secs(5))]);
        let error = call(&fake, reqwest::Method::GET, "slow", 200).send().await.unwrap_err();
        assert!(matches!(error, ReactionError::Timeout { timeout_ms: 200, .. }), "{error}");
        let form =
            vec![("To".to_owned(), "+1 555".to_owned()), ("Body".to_owned(), "a&b".to_owned())];
        call(&fake, reqwest::Method::POST, "form", 2000)
            .basic("AC1", "secret")
            .body(Body::Form(form.clone()))
            .send()
            .await
            .unwrap();
        let request = fake.requests().pop().unwrap();
        assert_eq!(request.form(), form);
        assert_eq!(request.header("authorization"), Some("Basic QUMxOnNlY3JldA=="));
    }

    #[tokio::test]
    async fn send_any_status_returns_a_rejecting_answer_whole() {
        let fake = FakeApi::start().await;
        let message = "x".repeat(500);
        fake.reply(
            "POST",
            "/m",
            vec![Reply::json(400, json!({"code": 21211, "message": message}))],
        );
        let answer = call(&fake, reqwest::Method::POST, "m", 2000).send_any_status().await.unwrap();
        assert_eq!(answer.status, 400);
        assert_eq!(answer.json("test").unwrap(), json!({"code": 21211, "message": message}));
    }

    #[test]
    fn quote_message_keeps_the_api_message_or_the_excerpt() {
        let rejected =
            |body: &str| ReactionError::Rejected { kind: "t", status: 404, body: body.into() };
        let pick = |json: &serde_json::Value| json["message"].as_str().map(str::to_owned);
        let quoted = quote_message(rejected(r#"{"id":"not_found","message":"gone  away"}"#), pick);
        assert_eq!(quoted.to_string(), "t: target answered HTTP 404 gone away");
        for body in ["<html>oops</html>", r#"{"id":"x"}"#, r#"{"message":" "}"#] {
            assert_eq!(
                quote_message(rejected(body), pick).to_string(),
                format!("t: target answered HTTP 404 {body}")
            );
        }
        let timeout = quote_message(ReactionError::Timeout { kind: "t", timeout_ms: 5 }, pick);
        assert!(matches!(timeout, ReactionError::Timeout { timeout_ms: 5, .. }));
    }

    #[test]
    fn tokens_must_be_header_safe() {
        assert!(validate_token("api_token", "dop_v1_abc").is_ok());
        for bad in ["", "a b", "a\nb", "tab\there"] {
            let error = validate_token("api_token", bad).unwrap_err();
            assert_eq!(error.field, "api_token");
            assert!(!bad.is_empty() || error.message == "must not be empty");
        }
    }

    #[test]
    fn tidy_cuts_and_flattens() {
        assert_eq!(tidy(b"a\n  b\tc"), "a b c");
        assert_eq!(tidy(&[b'x'; 500]).len(), BODY_EXCERPT_BYTES);
    }
}
