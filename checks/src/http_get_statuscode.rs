//! `http-get-statuscode`: GET a URL; healthy when the response status is one of `codes`, it came
//! within `max_response_ms` (when set), and, with `expect_json`, the JSON body holds the
//! expected value.
//!
//! Without `expect_json` the status decides. A small body is read and discarded so the
//! keep-alive connection goes back to the pool; a large one is dropped unread.

use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use reqwest::Method;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::http_options::{
    Answer, CustomHeaders, ExpectJson, HttpOptions, HttpRequest, Verdict, default_verify_tls,
};
use crate::support::{default_codes, default_timeout_ms, parse_http_url, validate_status_codes};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// Config of an `http-get-statuscode` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL to GET; `http` or `https` only. Redirects are followed only with
    /// `follow_redirects`: otherwise a 301 is a status.
    #[schemars(url)]
    pub url: String,
    /// Status codes that count as healthy (each 100 to 599, at least one).
    #[serde(default = "default_codes")]
    #[schemars(length(min = 1), inner(range(min = 100, max = 599)))]
    pub codes: Vec<u16>,
    /// Milliseconds to wait for the answer (and, with `expect_json`, its body), 1 to 120000;
    /// no answer in time is a failure.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
    /// Host header to send instead of the URL's (virtual hosts): the check connects to the
    /// URL's address and sends `Host: <host>`, e.g. `www.example.com` or `example.com:8080`;
    /// over https the certificate must still match the URL's host.
    #[serde(default)]
    #[schemars(length(min = 1, max = 259))]
    pub host: Option<String>,
    /// Follow redirects (up to 10) and judge the final response. The `host` override and the
    /// `Authorization`, `Cookie` headers are sent only while a hop stays on the URL's origin.
    #[serde(default)]
    pub follow_redirects: bool,
    /// Verify the server's TLS certificate. False accepts any certificate (self-signed
    /// internal services).
    #[serde(default = "default_verify_tls")]
    pub verify_tls: bool,
    /// Custom request headers, name to value (at most 32); `Host` is set with `host`.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 32))]
    pub headers: CustomHeaders,
    /// Response-time threshold in milliseconds (1 to `timeout_ms`): healthy only if the
    /// status line and headers (after any redirects) arrived within it.
    #[serde(default)]
    #[schemars(range(min = 1, max = 120_000))]
    pub max_response_ms: Option<u64>,
    /// Healthy only if the body (first 1 MiB) is JSON holding `value` at the JSON Pointer
    /// `path`, e.g. `{"path": "/status", "value": "ok"}`.
    #[serde(default)]
    pub expect_json: Option<ExpectJson>,
}

impl CheckType for Config {
    const NAME: &'static str = "http-get-statuscode";
    const DESCRIPTION: &'static str = "GET a URL; healthy when the status code is one of the \
        expected codes (optionally in time, and with a JSON value in the body)";

    /// Checks every field: the URL's scheme and host, the codes, the timeout's range, the
    /// shared HTTP options and the JSON assertion.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`url`, `codes`, `codes[i]`,
    /// `timeout_ms`, `host`, `headers`, `headers.<name>`, `max_response_ms`,
    /// `expect_json.path`).
    fn validate(&self) -> Result<(), ConfigError> {
        self.checked_url().map(drop)
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(HttpGetStatuscodeCheck::new(self, context)?)))
    }
}

impl Config {
    /// Validates every field, as `validate` does, and returns the parsed URL (parsed once:
    /// building a check validates its config again).
    fn checked_url(&self) -> Result<Url, ConfigError> {
        let url = parse_http_url(&self.url)?;
        validate_status_codes(&self.codes)?;
        self.options().validate(&[])?;
        if let Some(expect_json) = &self.expect_json {
            expect_json.validate()?;
        }
        Ok(url)
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

/// A runnable `http-get-statuscode` check.
#[derive(Debug)]
pub struct HttpGetStatuscodeCheck {
    request: HttpRequest,
    codes: Vec<u16>,
    expect_json: Option<ExpectJson>,
}

impl HttpGetStatuscodeCheck {
    /// Validates `config` and builds the check on the node's shared HTTP client (the one
    /// without certificate verification when `verify_tls` is false).
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config, context: &CheckContext) -> Result<Self, ConfigError> {
        let url = config.checked_url()?;
        Ok(Self {
            request: HttpRequest::new(Method::GET, url, &config.options(), None, context)?,
            codes: config.codes.clone(),
            expect_json: config.expect_json.clone(),
        })
    }

    async fn judge(&self, answer: Answer) -> Verdict {
        self.request.judge_status_and_json(answer, &self.codes, self.expect_json.as_ref()).await
    }
}

#[async_trait::async_trait]
impl Check for HttpGetStatuscodeCheck {
    fn kind(&self) -> &'static str {
        "http-get-statuscode"
    }

    fn timeout(&self) -> Duration {
        self.request.timeout()
    }

    async fn run(&self) -> CheckOutcome {
        self.request.run(|answer| self.judge(answer)).await
    }
}

#[cfg(test)]
#[path = "http_get_statuscode_tests.rs"]
mod tests;
