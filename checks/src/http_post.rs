//! `http-post`: POST a body to a URL; healthy when the response status is one of `codes`, it
//! came within `max_response_ms` (when set), and, with `expect_json`, the JSON body holds the
//! expected value.

use std::fmt;
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use reqwest::Method;
use reqwest::header::HeaderValue;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::http_options::{
    Answer, CustomHeaders, ExpectJson, HttpOptions, HttpRequest, Payload, Verdict,
    default_verify_tls,
};
use crate::support::{default_timeout_ms, parse_http_url, validate_status_codes};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// The largest `body` a check sends: 64 KiB.
pub const MAX_REQUEST_BODY_BYTES: usize = 64 * 1024;

/// Longest `content_type`.
const MAX_CONTENT_TYPE_BYTES: usize = 256;

/// Headers this type sets from its own fields.
const POST_MANAGED_HEADERS: [(&str, &str); 1] =
    [("content-type", "is set with the `content_type` field")];

fn default_post_codes() -> Vec<u16> {
    vec![200, 201, 202, 204]
}

fn default_content_type() -> String {
    "application/json".to_owned()
}

/// The body a check POSTs. `Debug` shows its length only: bodies may hold credentials.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub struct RequestBody(pub String);

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestBody({} bytes)", self.0.len())
    }
}

/// Config of an `http-post` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL to POST to; `http` or `https` only. Redirects are followed only with
    /// `follow_redirects`: otherwise a 301 is a status.
    #[schemars(url)]
    pub url: String,
    /// The request body, sent as is (at most 65536 bytes); empty when omitted.
    #[serde(default)]
    #[schemars(length(max = 65_536), extend("default" = ""))]
    pub body: RequestBody,
    /// The `Content-Type` header sent with the body.
    #[serde(default = "default_content_type")]
    #[schemars(length(min = 1, max = 256))]
    pub content_type: String,
    /// Status codes that count as healthy (each 100 to 599, at least one).
    #[serde(default = "default_post_codes")]
    #[schemars(length(min = 1), inner(range(min = 100, max = 599)))]
    pub codes: Vec<u16>,
    /// Milliseconds to wait for the answer (and, with `expect_json`, its body), 1 to 120000;
    /// no answer in time is a failure.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
    /// Host header to send instead of the URL's (virtual hosts): the check connects to the
    /// URL's address and sends `Host: <host>`, e.g. `api.example.com` or `example.com:8080`;
    /// over https the certificate must still match the URL's host.
    #[serde(default)]
    #[schemars(length(min = 1, max = 259))]
    pub host: Option<String>,
    /// Follow redirects (up to 10) and judge the final response: 307 and 308 repeat the POST,
    /// 301, 302 and 303 continue with a GET. The `host` override and the `Authorization`,
    /// `Cookie` headers are sent only while a hop stays on the URL's origin.
    #[serde(default)]
    pub follow_redirects: bool,
    /// Verify the server's TLS certificate. False accepts any certificate (self-signed
    /// internal services).
    #[serde(default = "default_verify_tls")]
    pub verify_tls: bool,
    /// Custom request headers, name to value (at most 32); `Host` is set with `host` and
    /// `Content-Type` with `content_type`.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 32))]
    pub headers: CustomHeaders,
    /// Response-time threshold in milliseconds (1 to `timeout_ms`): healthy only if the
    /// status line and headers (after any redirects) arrived within it.
    #[serde(default)]
    #[schemars(range(min = 1, max = 120_000))]
    pub max_response_ms: Option<u64>,
    /// Healthy only if the response body (first 1 MiB) is JSON holding `value` at the JSON
    /// Pointer `path`, e.g. `{"path": "/data/status", "value": "ok"}`.
    #[serde(default)]
    pub expect_json: Option<ExpectJson>,
}

impl CheckType for Config {
    const NAME: &'static str = "http-post";
    const DESCRIPTION: &'static str = "POST a body to a URL; healthy when the status code is one \
        of the expected codes (optionally in time, and with a JSON value in the body)";

    /// Checks every field: the URL, the body's size, the content type, the codes, the shared
    /// HTTP options and the JSON assertion.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`url`, `body`, `content_type`, `codes`,
    /// `codes[i]`, `timeout_ms`, `host`, `headers`, `headers.<name>`, `max_response_ms`,
    /// `expect_json.path`).
    fn validate(&self) -> Result<(), ConfigError> {
        self.checked_url().map(drop)
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(HttpPostCheck::new(self, context)?)))
    }
}

impl Config {
    /// Validates every field, as `validate` does, and returns the parsed URL (parsed once:
    /// building a check validates its config again).
    fn checked_url(&self) -> Result<Url, ConfigError> {
        let url = parse_http_url(&self.url)?;
        if self.body.0.len() > MAX_REQUEST_BODY_BYTES {
            return Err(ConfigError::invalid(
                "body",
                format!(
                    "must be at most {MAX_REQUEST_BODY_BYTES} bytes, not {}",
                    self.body.0.len()
                ),
            ));
        }
        self.content_type_header()?;
        validate_status_codes(&self.codes)?;
        self.options().validate(&POST_MANAGED_HEADERS)?;
        if let Some(expect_json) = &self.expect_json {
            expect_json.validate()?;
        }
        Ok(url)
    }

    /// Returns `content_type` as a header value: a `type/subtype` media type, parameters
    /// allowed (`application/json; charset=utf-8`).
    fn content_type_header(&self) -> Result<HeaderValue, ConfigError> {
        let invalid = |message: &str| ConfigError::invalid("content_type", message);
        if self.content_type.len() > MAX_CONTENT_TYPE_BYTES {
            return Err(invalid(&format!("must be at most {MAX_CONTENT_TYPE_BYTES} bytes")));
        }
        let media_type = self.content_type.split(';').next().unwrap_or_default().trim();
        let is_token = |part: &str| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        let well_formed = media_type
            .split_once('/')
            .is_some_and(|(kind, subtype)| is_token(kind) && is_token(subtype));
        if !well_formed {
            return Err(invalid("must be a media type like `application/json` or `text/plain`"));
        }
        HeaderValue::from_str(&self.content_type)
            .map_err(|_| invalid("not a valid http header value (visible ascii and spaces only)"))
    }

    /// Returns the options every HTTP check type shares.
    fn options(&self) -> HttpOptions<'_> {
        HttpOptions {
            host: self.host.as_deref(),
            follow_redirects: self.follow_redirects,
            verify_tls: self.verify_tls,
            headers: &self.headers,
            max_response_ms: self.max_response_ms,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// A runnable `http-post` check.
#[derive(Debug)]
pub struct HttpPostCheck {
    request: HttpRequest,
    codes: Vec<u16>,
    expect_json: Option<ExpectJson>,
}

impl HttpPostCheck {
    /// Validates `config` and builds the check on the node's shared HTTP client (the one
    /// without certificate verification when `verify_tls` is false).
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config, context: &CheckContext) -> Result<Self, ConfigError> {
        let url = config.checked_url()?;
        let payload = Payload {
            bytes: config.body.0.clone().into_bytes(),
            content_type: config.content_type_header()?,
        };
        let options = config.options();
        Ok(Self {
            request: HttpRequest::new(Method::POST, url, &options, Some(payload), context)?,
            codes: config.codes.clone(),
            expect_json: config.expect_json.clone(),
        })
    }

    async fn judge(&self, answer: Answer) -> Verdict {
        self.request.judge_status_and_json(answer, &self.codes, self.expect_json.as_ref()).await
    }
}

#[async_trait::async_trait]
impl Check for HttpPostCheck {
    fn kind(&self) -> &'static str {
        "http-post"
    }

    fn timeout(&self) -> Duration {
        self.request.timeout()
    }

    async fn run(&self) -> CheckOutcome {
        self.request.run(|answer| self.judge(answer)).await
    }
}

#[cfg(test)]
#[path = "http_post_tests.rs"]
mod tests;
