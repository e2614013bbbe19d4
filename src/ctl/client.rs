//! The console's HTTP client: one token, one base URL, the API's errors as messages.

use anyhow::{Context, bail};
use serde_json::Value;

/// The largest page the API serves.
const PAGE_LIMIT: usize = 1000;

pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
}

impl Client {
    /// Sends one request and returns the JSON answer (`null` for an empty one, as on 204).
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach {}; is a node running there? (--url or CLOUDROUTES_URL)",
                self.base
            )
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let error = &body["error"];
        let mut message = error["message"].as_str().unwrap_or("no error message").to_owned();
        if let Some(field) = error["field"].as_str() {
            message.push_str(&format!(" (field `{field}`)"));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("{message} (check --token or CLOUDROUTES_TOKEN)");
        }
        bail!("HTTP {status}: {message}")
    }

    /// GETs `path`.
    pub(super) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Pages through a list endpoint (`{"items", "next_cursor"}`) with `query` and returns
    /// the items, at most `max` of them when given.
    pub(super) async fn get_all(
        &self,
        path: &str,
        query: &[(&str, &str)],
        max: Option<usize>,
    ) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let limit = max.map_or(PAGE_LIMIT, |max| (max - items.len()).clamp(1, PAGE_LIMIT));
            let limit = limit.to_string();
            let mut pairs: Vec<(&str, &str)> = query.to_vec();
            pairs.push(("limit", &limit));
            if let Some(cursor) = &cursor {
                pairs.push(("cursor", cursor));
            }
            let page = self.get(&format!("{path}?{}", encode_query(&pairs))).await?;
            items.extend(page["items"].as_array().into_iter().flatten().cloned());
            if let Some(max) = max
                && items.len() >= max
            {
                items.truncate(max);
                return Ok(items);
            }
            match page["next_cursor"].as_str() {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
    }
}

/// `key=value&…`, each part percent-encoded.
fn encode_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
