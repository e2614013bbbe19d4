//! The Cloudflare API v4 client: one request with its credentials, the answer envelope, and
//! the DNS record calls.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::{Auth, IDENTICAL_RECORD_EXISTS, MAX_PAGES, PER_PAGE};
use crate::api::{self, ApiCall, Body};
use crate::{ConfigError, ReactionContext, ReactionError};

/// A DNS record as the API lists it (the fields the reactions use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DnsRecord {
    /// Its id.
    pub id: String,
    /// `A`, `AAAA`, `CNAME`, …
    #[serde(rename = "type")]
    pub record_type: String,
    /// Fully qualified name.
    pub name: String,
    /// Content (an address for `A`/`AAAA`).
    pub content: String,
    /// TTL in seconds; 1 means automatic.
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Whether Cloudflare proxies it.
    #[serde(default)]
    pub proxied: Option<bool>,
    /// Priority (MX).
    #[serde(default)]
    pub priority: Option<u16>,
}

impl DnsRecord {
    /// Returns `TYPE name` for details.
    pub fn label(&self) -> String {
        format!("{} {}", self.record_type, self.name)
    }
}

/// A failed exchange, with the API's error codes when it gave any.
struct Failure {
    error: ReactionError,
    codes: Vec<i64>,
}

impl From<ReactionError> for Failure {
    fn from(error: ReactionError) -> Self {
        Self { error, codes: Vec::new() }
    }
}

/// The answer envelope.
#[derive(Deserialize)]
struct Envelope {
    success: Option<bool>,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ResultInfo {
    #[serde(default)]
    total_pages: Option<usize>,
    #[serde(default)]
    total_count: Option<usize>,
}

/// Returns the errors as one line: `9109 Invalid access token; 1003 …`.
fn describe(errors: &[ApiMessage]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| match e.code {
            Some(code) => format!("{code} {}", e.message),
            None => e.message.clone(),
        })
        .collect();
    api::tidy(parts.join("; ").as_bytes())
}

/// The Cloudflare API of one reaction: base URL, credentials and per-call timeout.
#[derive(Debug, Clone)]
pub struct Client {
    kind: &'static str,
    http: crate::egress::GuardedClient,
    base: Url,
    auth: Auth,
    timeout_ms: u64,
}

impl Client {
    /// Returns a client for reaction type `kind` on the node's shared HTTP client.
    ///
    /// # Errors
    /// An invalid `api_base_url` or `timeout_ms`.
    pub fn new(
        kind: &'static str,
        context: &ReactionContext,
        api_base_url: &str,
        auth: Auth,
        timeout_ms: u64,
    ) -> Result<Self, ConfigError> {
        let base = api::parse_base_url(api_base_url)?;
        api::validate_timeout_ms(timeout_ms)?;
        Ok(Self { kind, http: context.http.clone(), base, auth, timeout_ms })
    }

    fn records_url(&self, zone_id: &str) -> Url {
        api::endpoint(&self.base, &format!("zones/{zone_id}/dns_records"))
    }

    fn record_url(&self, zone_id: &str, record_id: &str) -> Result<Url, ReactionError> {
        // Ids come from answers (and notes) and go into the path: refuse anything that could
        // leave it.
        for (what, id) in [("zone", zone_id), ("record", record_id)] {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                let message = format!("{what} id {id:?} is not alphanumeric");
                return Err(ReactionError::Failed { kind: self.kind, message });
            }
        }
        Ok(api::endpoint(&self.base, &format!("zones/{zone_id}/dns_records/{record_id}")))
    }

    /// Sends one request and returns the envelope of a successful answer.
    async fn exchange(&self, method: Method, url: Url, body: Body) -> Result<Envelope, Failure> {
        let call = ApiCall::new(self.kind, &self.http, method, url, self.timeout_ms);
        let call = match &self.auth {
            Auth::Token(token) => call.bearer(token.expose()),
            Auth::GlobalKey { email, key } => {
                call.header("X-Auth-Email", email).secret_header("x-auth-key", key.expose())
            }
        };
        let answer = match call.body(body).send().await {
            Ok(answer) => answer,
            Err(ReactionError::Rejected { kind, status, body }) => {
                // The excerpt is short; when it still holds the envelope, quote its errors.
                let envelope = serde_json::from_str::<Envelope>(&body).ok();
                let (body, codes) = match envelope {
                    Some(envelope) if !envelope.errors.is_empty() => {
                        let codes = envelope.errors.iter().filter_map(|e| e.code).collect();
                        (describe(&envelope.errors), codes)
                    }
                    _ => (body, Vec::new()),
                };
                return Err(Failure {
                    error: ReactionError::Rejected { kind, status, body },
                    codes,
                });
            }
            Err(error) => return Err(error.into()),
        };
        let envelope: Envelope =
            serde_json::from_value(answer.json(self.kind)?).map_err(|error| {
                self.failed(format!("answer is not a cloudflare api envelope: {error}"))
            })?;
        match envelope.success {
            Some(true) => Ok(envelope),
            Some(false) => {
                let codes = envelope.errors.iter().filter_map(|e| e.code).collect();
                let errors = describe(&envelope.errors);
                let message = format!("HTTP {} with success false: {errors}", answer.status);
                Err(Failure { error: self.failed(message), codes })
            }
            None => Err(self.failed("answer has no `success` field".into()).into()),
        }
    }

    fn failed(&self, message: String) -> ReactionError {
        ReactionError::Failed { kind: self.kind, message }
    }

    fn record_from(&self, value: Value) -> Result<DnsRecord, ReactionError> {
        serde_json::from_value(value)
            .map_err(|error| self.failed(format!("answer has an unexpected record: {error}")))
    }

    /// Lists every record of the zone matching `filter` (query pairs such as `type`, `name`,
    /// `content`), walking all pages.
    ///
    /// # Errors
    /// The API's failures; more than 50000 matching records.
    pub async fn list_records(
        &self,
        zone_id: &str,
        filter: &[(&str, &str)],
    ) -> Result<Vec<DnsRecord>, ReactionError> {
        let mut records = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = self.records_url(zone_id);
            url.query_pairs_mut()
                .extend_pairs(filter)
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &PER_PAGE.to_string());
            let envelope =
                self.exchange(Method::GET, url, Body::Empty).await.map_err(|f| f.error)?;
            let Value::Array(items) = envelope.result else {
                return Err(self.failed("answer's result is not a list of records".into()));
            };
            let count = items.len();
            for item in items {
                records.push(self.record_from(item)?);
            }
            let more = match envelope.result_info {
                Some(ResultInfo { total_pages: Some(total_pages), .. }) => page < total_pages,
                Some(ResultInfo { total_count: Some(total_count), .. }) => {
                    records.len() < total_count
                }
                _ => count >= PER_PAGE,
            };
            if !more || count == 0 {
                return Ok(records);
            }
        }
        Err(self.failed(format!("more than {} matching records", MAX_PAGES * PER_PAGE)))
    }

    /// Returns the record `record_id`, or `None` when the API answers 404 (it was deleted).
    ///
    /// # Errors
    /// The API's other failures.
    pub async fn get_record(
        &self,
        zone_id: &str,
        record_id: &str,
    ) -> Result<Option<DnsRecord>, ReactionError> {
        let url = self.record_url(zone_id, record_id)?;
        match self.exchange(Method::GET, url, Body::Empty).await {
            Ok(envelope) => Ok(Some(self.record_from(envelope.result)?)),
            Err(Failure { error: ReactionError::Rejected { status: 404, .. }, .. }) => Ok(None),
            Err(failure) => Err(failure.error),
        }
    }

    /// Creates a record from `body` (`type`, `name`, `content`, `ttl`, `proxied`, …); `None`
    /// when the API says an identical record already exists.
    ///
    /// # Errors
    /// The API's other failures.
    pub async fn create_record(
        &self,
        zone_id: &str,
        body: Value,
    ) -> Result<Option<DnsRecord>, ReactionError> {
        let url = self.records_url(zone_id);
        match self.exchange(Method::POST, url, Body::Json(body)).await {
            Ok(envelope) => Ok(Some(self.record_from(envelope.result)?)),
            Err(failure) if failure.codes.contains(&IDENTICAL_RECORD_EXISTS) => Ok(None),
            Err(failure) => Err(failure.error),
        }
    }

    /// Changes the fields in `body` of record `record_id` (`PATCH`: the others stay).
    ///
    /// # Errors
    /// The API's failures.
    pub async fn patch_record(
        &self,
        zone_id: &str,
        record_id: &str,
        body: Value,
    ) -> Result<(), ReactionError> {
        let url = self.record_url(zone_id, record_id)?;
        self.exchange(Method::PATCH, url, Body::Json(body)).await.map_err(|f| f.error)?;
        Ok(())
    }

    /// Deletes record `record_id`; a 404 (already gone) counts as done.
    ///
    /// # Errors
    /// The API's other failures.
    pub async fn delete_record(&self, zone_id: &str, record_id: &str) -> Result<(), ReactionError> {
        let url = self.record_url(zone_id, record_id)?;
        match self.exchange(Method::DELETE, url, Body::Empty).await {
            Ok(_) | Err(Failure { error: ReactionError::Rejected { status: 404, .. }, .. }) => {
                Ok(())
            }
            Err(failure) => Err(failure.error),
        }
    }
}
