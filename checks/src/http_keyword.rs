//! `http-keyword`: GET a URL; healthy when the body contains a keyword (or a regex match), or,
//! with `present: false`, when it does not.
//!
//! At most the first 1 MiB of the body is read, chunk by chunk; a keyword beyond it is not found.

use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use regex::bytes::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::support::{
    default_timeout_ms, host_and_port, no_answer_within, parse_http_url, request_error_outcome,
    status_outcome, validate_status_codes, validate_timeout_ms,
};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// How much of the body is searched: the first 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How many characters of the keyword a reason quotes.
const QUOTED_KEYWORD_CHARS: usize = 80;

fn default_present() -> bool {
    true
}

/// Config of an `http-keyword` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL to GET; `http` or `https` only. Redirects are not followed.
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
}

impl CheckType for Config {
    const NAME: &'static str = "http-keyword";
    const DESCRIPTION: &'static str =
        "GET a URL; healthy when the body does (or does not) contain a keyword or regex";

    /// Checks every field; compiles `keyword` when `regex` is set.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`url`, `keyword`, `codes`, `codes[i]`,
    /// `timeout_ms`).
    fn validate(&self) -> Result<(), ConfigError> {
        parse_http_url(&self.url)?;
        self.compile_matcher()?;
        if let Some(codes) = &self.codes {
            validate_status_codes(codes)?;
        }
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(HttpKeywordCheck::new(self, context)?)))
    }
}

impl Config {
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
        let mut keyword: String = self.keyword.chars().take(QUOTED_KEYWORD_CHARS).collect();
        if keyword.len() < self.keyword.len() {
            keyword.push('…');
        }
        format!("{noun} {keyword:?}")
    }
}

/// A runnable `http-keyword` check.
#[derive(Debug)]
pub struct HttpKeywordCheck {
    http: reqwest::Client,
    url: Url,
    target: String,
    matcher: Regex,
    quoted_keyword: String,
    present: bool,
    codes: Option<Vec<u16>>,
    timeout: Duration,
    timeout_ms: u64,
}

/// The start of a response body and whether more may have followed.
struct BodyPrefix {
    bytes: Vec<u8>,
    reached_limit: bool,
}

impl HttpKeywordCheck {
    /// Validates `config`, compiles the matcher and builds the check on the shared client.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does; a bad regex is `keyword`.
    pub fn new(config: &Config, context: &CheckContext) -> Result<Self, ConfigError> {
        config.validate()?;
        let url = parse_http_url(&config.url)?;
        Ok(Self {
            http: context.http.clone(),
            target: host_and_port(&url),
            url,
            matcher: config.compile_matcher()?,
            quoted_keyword: config.quoted_keyword(),
            present: config.present,
            codes: config.codes.clone(),
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Sends the GET and judges the status, then the body.
    async fn fetch_and_judge(&self) -> Result<CheckOutcome, reqwest::Error> {
        let mut response = self.http.get(self.url.clone()).timeout(self.timeout).send().await?;
        if let Some(codes) = &self.codes {
            let outcome = status_outcome(response.status(), codes);
            if !matches!(outcome, CheckOutcome::Healthy { .. }) {
                return Ok(outcome);
            }
        }
        let body = read_body_prefix(&mut response, MAX_BODY_BYTES).await?;
        Ok(self.judge_body(&body))
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

/// Reads at most `limit` bytes of the body, stopping at the first chunk that reaches it.
async fn read_body_prefix(
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

#[async_trait::async_trait]
impl Check for HttpKeywordCheck {
    fn kind(&self) -> &'static str {
        "http-keyword"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        // One deadline for the status line and the body together.
        match tokio::time::timeout(self.timeout, self.fetch_and_judge()).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => request_error_outcome(&error, &self.target, self.timeout_ms),
            Err(_) => no_answer_within(self.timeout_ms),
        }
    }
}

#[cfg(test)]
#[path = "http_keyword_tests.rs"]
mod tests;
