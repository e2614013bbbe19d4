//! `http-get-statuscode`: GET a URL; healthy when the response status is one of `codes`.
//!
//! The status decides. A small body is read and discarded so the keep-alive connection goes
//! back to the pool; a large one is dropped unread.

use std::time::Duration;

use tokio::time::Instant;

use cloudroutes_engine::CheckOutcome;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::support::{
    default_codes, default_timeout_ms, drain_for_reuse, host_and_port, no_answer_within,
    parse_http_url, request_error_outcome, status_outcome, validate_status_codes,
    validate_timeout_ms,
};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// Config of an `http-get-statuscode` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL to GET; `http` or `https` only. Redirects are not followed: a 301 is a status.
    #[schemars(url)]
    pub url: String,
    /// Status codes that count as healthy (each 100 to 599, at least one).
    #[serde(default = "default_codes")]
    #[schemars(length(min = 1), inner(range(min = 100, max = 599)))]
    pub codes: Vec<u16>,
    /// Milliseconds to wait for the status line, 1 to 120000; no answer in time is a failure.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl CheckType for Config {
    const NAME: &'static str = "http-get-statuscode";
    const DESCRIPTION: &'static str =
        "GET a URL; healthy when the status code is one of the expected codes";

    /// Checks every field: the URL's scheme and host, the codes, the timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`url`, `codes`, `codes[i]`,
    /// `timeout_ms`).
    fn validate(&self) -> Result<(), ConfigError> {
        parse_http_url(&self.url)?;
        validate_status_codes(&self.codes)?;
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(HttpGetStatuscodeCheck::new(self, context)?)))
    }
}

/// A runnable `http-get-statuscode` check.
#[derive(Debug)]
pub struct HttpGetStatuscodeCheck {
    http: reqwest::Client,
    url: Url,
    target: String,
    codes: Vec<u16>,
    timeout: Duration,
    timeout_ms: u64,
}

impl HttpGetStatuscodeCheck {
    /// Validates `config` and builds the check on the node's shared HTTP client.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config, context: &CheckContext) -> Result<Self, ConfigError> {
        config.validate()?;
        let url = parse_http_url(&config.url)?;
        Ok(Self {
            http: context.http.clone(),
            target: host_and_port(&url),
            url,
            codes: config.codes.clone(),
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }
}

#[async_trait::async_trait]
impl Check for HttpGetStatuscodeCheck {
    fn kind(&self) -> &'static str {
        "http-get-statuscode"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        let request = self.http.get(self.url.clone()).timeout(self.timeout).send();
        // The client's own timeout should fire first; this one bounds the run whatever it does.
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(response)) => {
                let outcome = status_outcome(response.status(), &self.codes);
                drain_for_reuse(response, self.timeout.saturating_sub(started.elapsed())).await;
                outcome
            }
            Ok(Err(error)) => request_error_outcome(&error, &self.target, self.timeout_ms),
            Err(_) => no_answer_within(self.timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;

    use super::*;
    use crate::test_support::{
        counting_keep_alive_server, refused_port, serve_http, silent_server,
    };
    use crate::{CheckConfig, check_types};

    fn check(url: String, codes: &[u16], timeout_ms: u64) -> HttpGetStatuscodeCheck {
        let config = Config { url, codes: codes.to_vec(), timeout_ms };
        HttpGetStatuscodeCheck::new(&config, &CheckContext::new().unwrap()).unwrap()
    }

    fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
        CheckConfig::parse(&serde_json::from_value(value).unwrap())
    }

    #[tokio::test]
    async fn healthy_when_the_status_is_expected() {
        let addr = serve_http(200, b"hello".to_vec()).await;
        let outcome = check(format!("http://{addr}/health"), &[200], 2000).run().await;
        assert_eq!(outcome, CheckOutcome::Healthy { reason: "HTTP 200".into() });
    }

    #[tokio::test]
    async fn checks_reuse_one_keep_alive_connection() {
        let (addr, connections) = counting_keep_alive_server().await;
        let check = check(format!("http://{addr}/"), &[200], 2000);
        for _ in 0..5 {
            assert_eq!(check.run().await, CheckOutcome::Healthy { reason: "HTTP 200".into() });
        }
        let opened = connections.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(opened, 1, "five checks opened {opened} connections");
    }

    #[tokio::test]
    async fn healthy_when_any_listed_status_answers() {
        let addr = serve_http(301, Vec::new()).await;
        let outcome = check(format!("http://{addr}/"), &[200, 301], 2000).run().await;
        assert_eq!(outcome, CheckOutcome::Healthy { reason: "HTTP 301".into() });
    }

    #[tokio::test]
    async fn failed_on_an_unexpected_status() {
        let addr = serve_http(503, b"down".to_vec()).await;
        let outcome = check(format!("http://{addr}/"), &[200], 2000).run().await;
        let reason = "HTTP 503, expected one of 200".to_owned();
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }

    #[tokio::test]
    async fn failed_when_the_connection_is_refused() {
        let port = refused_port().await;
        let outcome = check(format!("http://127.0.0.1:{port}/"), &[200], 2000).run().await;
        let reason = format!("connection refused: 127.0.0.1:{port}");
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }

    #[tokio::test]
    async fn failed_in_time_when_the_server_never_answers() {
        let addr = silent_server().await;
        let started = Instant::now();
        let outcome = check(format!("http://{addr}/"), &[200], 300).run().await;
        assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
        let reason = "no answer within 300 ms".to_owned();
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }

    #[test]
    fn defaults_to_200_and_5000_ms() {
        let Ok(CheckConfig::HttpGetStatuscode(config)) =
            parse(json!({"type": "http-get-statuscode", "url": "https://example.com/"}))
        else {
            panic!("expected an http-get-statuscode config");
        };
        assert_eq!(config.codes, vec![200]);
        assert_eq!(config.timeout_ms, 5000);
    }

    #[test]
    fn rejects_invalid_fields_naming_them() {
        let cases = [
            (json!({"type": "http-get-statuscode", "url": "ftp://x/"}), "url"),
            (json!({"type": "http-get-statuscode", "url": "not a url"}), "url"),
            (json!({"type": "http-get-statuscode", "url": "http://x", "codes": []}), "codes"),
            (
                json!({"type": "http-get-statuscode", "url": "http://x", "codes": [200, 700]}),
                "codes[1]",
            ),
            (
                json!({"type": "http-get-statuscode", "url": "http://x", "codes": [70000]}),
                "codes[0]",
            ),
            (
                json!({"type": "http-get-statuscode", "url": "http://x", "timeout_ms": 0}),
                "timeout_ms",
            ),
            (
                json!({"type": "http-get-statuscode", "url": "http://x", "timeout_ms": 120_001}),
                "timeout_ms",
            ),
            (json!({"type": "http-get-statuscode", "url": "http://x", "bogus": 1}), "bogus"),
            (json!({"type": "http-get-statuscode"}), "url"),
        ];
        for (value, field) in cases {
            let error = parse(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{value}: {error}");
        }
    }

    #[test]
    fn schema_lists_every_field() {
        let types = check_types();
        let info = types.iter().find(|t| t.name == "http-get-statuscode").unwrap();
        let properties = info.schema["properties"].as_object().unwrap();
        for field in ["url", "codes", "timeout_ms"] {
            let description = properties[field]["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{field} has no description");
        }
        assert_eq!(properties["codes"]["default"], json!([200]));
        assert_eq!(info.schema["additionalProperties"], json!(false));
    }
}
