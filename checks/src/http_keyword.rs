//! `http-keyword`: GET a URL; healthy when the body contains a keyword (or a regex match), or,
//! with `present: false`, when it does not.
//!
//! At most the first 1 MiB of the body is read, chunk by chunk; a keyword beyond it is not found.

use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use regex::bytes::Regex;
use reqwest::Method;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::http_options::{
    Answer, BodyPrefix, CustomHeaders, HttpOptions, HttpRequest, Verdict, default_verify_tls,
    read_body_prefix, truncate,
};
use crate::support::{default_timeout_ms, parse_http_url, validate_status_codes};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// How much of the body is searched: the first 1 MiB.
pub const MAX_BODY_BYTES: usize = crate::http_options::MAX_BODY_BYTES;

/// How many characters of the keyword a reason quotes.
const QUOTED_KEYWORD_CHARS: usize = 80;

fn default_present() -> bool {
    true
}

/// Config of an `http-keyword` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL to GET; `http` or `https` only. Redirects are followed only with
    /// `follow_redirects`.
    #[schemars(url)]
    pub url: String,
    /// Text to look for in the first 1 MiB of the body (case-sensitive); a regex if `regex`.
    #[schemars(length(min = 1))]
    pub keyword: String,
    /// Treat `keyword` as a regular expression (Rust `regex` syntax, e.g. `(?i)ok`).
    #[serde(default)]
    pub regex: bool,
    /// True: healthy when the keyword is found. False: healthy when it is not.
    #[serde(default = "default_present")]
    pub present: bool,
    /// Status codes the response must also have (each 100 to 599); any status when omitted.
    #[serde(default)]
    #[schemars(length(min = 1), inner(range(min = 100, max = 599)))]
    pub codes: Option<Vec<u16>>,
    /// Milliseconds to wait for the response and its body, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
    /// Host header to send instead of the URL's (virtual hosts): the check connects to the
    /// URL's address and sends `Host: <host>`, e.g. `www.example.com` or `example.com:8080`;
    /// over https the certificate must still match the URL's host.
    #[serde(default)]
    #[schemars(length(min = 1, max = 259))]
    pub host: Option<String>,
    /// Follow redirects (up to 10) and search the final response. The `host` override and the
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
}

impl CheckType for Config {
    const NAME: &'static str = "http-keyword";
    const DESCRIPTION: &'static str =
        "GET a URL; healthy when the body does (or does not) contain a keyword or regex";

    /// Checks every field; compiles `keyword` when `regex` is set.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`url`, `keyword`, `codes`, `codes[i]`,
    /// `timeout_ms`, `host`, `headers`, `headers.<name>`, `max_response_ms`).
    fn validate(&self) -> Result<(), ConfigError> {
        self.checked_url().map(drop)
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(HttpKeywordCheck::new(self, context)?)))
    }
}

impl Config {
    /// Validates every field, as `validate` does, and returns the parsed URL (parsed once:
    /// building a check validates its config again).
    fn checked_url(&self) -> Result<Url, ConfigError> {
        let url = parse_http_url(&self.url)?;
        self.compile_matcher()?;
        if let Some(codes) = &self.codes {
            validate_status_codes(codes)?;
        }
        self.options().validate(&[])?;
        Ok(url)
    }

    /// Returns a matcher for `keyword`: the regex itself, or the keyword escaped as a literal.
    fn compile_matcher(&self) -> Result<Regex, ConfigError> {
        if self.keyword.is_empty() {
            return Err(ConfigError::invalid("keyword", "must not be empty"));
        }
        let pattern = if self.regex { self.keyword.clone() } else { regex::escape(&self.keyword) };
        Regex::new(&pattern).map_err(|error| {
            // Syntax errors span several lines (pattern, caret, message): keep the message.
            let text = error.to_string();
            let last_line = text.lines().last().unwrap_or_default().trim();
            let message = last_line.strip_prefix("error: ").unwrap_or(last_line);
            ConfigError::invalid("keyword", format!("invalid regex: {message}"))
        })
    }

    /// Returns how reasons name what is searched: `keyword "OK"` or `regex "o+k"`.
    fn quoted_keyword(&self) -> String {
        let noun = if self.regex { "regex" } else { "keyword" };
        let keyword = truncate(&self.keyword, QUOTED_KEYWORD_CHARS);
        format!("{noun} {keyword:?}")
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

/// A runnable `http-keyword` check.
#[derive(Debug)]
pub struct HttpKeywordCheck {
    request: HttpRequest,
    matcher: Regex,
    quoted_keyword: String,
    present: bool,
    codes: Option<Vec<u16>>,
}

impl HttpKeywordCheck {
    /// Validates `config`, compiles the matcher and builds the check on the shared client.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does; a bad regex is `keyword`.
    pub fn new(config: &Config, context: &CheckContext) -> Result<Self, ConfigError> {
        let url = config.checked_url()?;
        Ok(Self {
            request: HttpRequest::new(Method::GET, url, &config.options(), None, context)?,
            matcher: config.compile_matcher()?,
            quoted_keyword: config.quoted_keyword(),
            present: config.present,
            codes: config.codes.clone(),
        })
    }

    /// Judges the status (when `codes` is set) and the response time, then the body.
    async fn judge(&self, mut answer: Answer) -> Verdict {
        if let Err(outcome) = self.request.judge_head(&answer, self.codes.as_deref()) {
            return Verdict { outcome, unread: Some(answer.response) };
        }
        match read_body_prefix(&mut answer.response, MAX_BODY_BYTES).await {
            Ok(body) => self.judge_body(&body).into(),
            Err(error) => self.request.body_error_outcome(&error, &answer.target()).into(),
        }
    }

    fn judge_body(&self, body: &BodyPrefix) -> CheckOutcome {
        let what = &self.quoted_keyword;
        let searched = if body.reached_limit {
            format!("the first {} bytes", body.bytes.len())
        } else {
            format!("{} bytes", body.bytes.len())
        };
        match (self.matcher.is_match(&body.bytes), self.present) {
            (true, true) => CheckOutcome::Healthy { reason: format!("{what} found") },
            (false, true) => {
                CheckOutcome::Failed { reason: format!("{what} not found in {searched}") }
            }
            (true, false) => {
                CheckOutcome::Failed { reason: format!("{what} found, expected it absent") }
            }
            (false, false) => {
                CheckOutcome::Healthy { reason: format!("{what} not found in {searched}") }
            }
        }
    }
}

#[async_trait::async_trait]
impl Check for HttpKeywordCheck {
    fn kind(&self) -> &'static str {
        "http-keyword"
    }

    fn timeout(&self) -> Duration {
        self.request.timeout()
    }

    async fn run(&self) -> CheckOutcome {
        // One deadline for the status line and the body together.
        self.request.run(|answer| self.judge(answer)).await
    }
}

#[cfg(test)]
#[path = "http_keyword_tests.rs"]
mod tests;
