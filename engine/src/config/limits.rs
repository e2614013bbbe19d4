//! `[limits]`: rate limits, HTTP timeouts, the token cache and the audit trail's size.
//!
//! Rate limits are token buckets: a bucket holds up to `*_burst` requests and refills at
//! `*_rate_per_sec`; a rate of 0 turns that limit off. The API's budget (per token and per
//! client address) is separate from webhook intake's (per monitor and per client address), so
//! a flood of intake calls cannot starve the API.

use serde::Deserialize;

use crate::error::ConfigError;

/// `[limits]`: what one caller may ask of a node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// API requests per second per token and per client address (0: unlimited).
    #[serde(default = "default_api_rate_per_sec")]
    pub api_rate_per_sec: u64,
    /// API requests one token or address may send at once before the rate applies.
    #[serde(default = "default_api_burst")]
    pub api_burst: u64,
    /// Webhook intake requests per second per monitor (0: unlimited).
    #[serde(default = "default_intake_rate_per_sec")]
    pub intake_rate_per_sec: u64,
    /// Webhook intake requests one monitor may receive at once before the rate applies.
    #[serde(default = "default_intake_burst")]
    pub intake_burst: u64,
    /// Webhook intake requests per second per client address, all monitors together
    /// (0: unlimited).
    #[serde(default = "default_intake_addr_rate_per_sec")]
    pub intake_addr_rate_per_sec: u64,
    /// Webhook intake requests one client address may send at once before the rate applies.
    #[serde(default = "default_intake_addr_burst")]
    pub intake_addr_burst: u64,
    /// Most rate-limit buckets kept in memory per limit; idle ones are evicted first.
    #[serde(default = "default_max_tracked_clients")]
    pub max_tracked_clients: u64,
    /// How long a node remembers a token lookup, in milliseconds: a revoked token stops
    /// working on every node within this time (on the node that revoked it, at once).
    #[serde(default = "default_token_cache_ms")]
    pub token_cache_ms: u64,
    /// Audit entries kept; the oldest are dropped past it.
    #[serde(default = "default_audit_max_entries")]
    pub audit_max_entries: u64,
    /// How long a client may take to send a request's headers, in milliseconds; it also bounds
    /// how long an idle keep-alive connection waits for its next request. Past it the
    /// connection is closed.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// How long one request may take from its headers to its answer (reading the body and
    /// handling it), in milliseconds; past it the caller gets 408 (body still arriving) or 503
    /// and the connection is closed. Run-now (`POST /api/v1/monitors/{id}/run`) gets the
    /// longest check timeout (120 s) on top, so no check the API accepts is cut.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Denied calls (401, 403, 429) are audited at most twice per window per caller (token
    /// name, else client address) and kind: the first at once, the rest of the window folded
    /// into one entry with their count when the window ends. In milliseconds.
    #[serde(default = "default_denied_audit_window_ms")]
    pub denied_audit_window_ms: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            api_rate_per_sec: default_api_rate_per_sec(),
            api_burst: default_api_burst(),
            intake_rate_per_sec: default_intake_rate_per_sec(),
            intake_burst: default_intake_burst(),
            intake_addr_rate_per_sec: default_intake_addr_rate_per_sec(),
            intake_addr_burst: default_intake_addr_burst(),
            max_tracked_clients: default_max_tracked_clients(),
            token_cache_ms: default_token_cache_ms(),
            audit_max_entries: default_audit_max_entries(),
            header_timeout_ms: default_header_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            denied_audit_window_ms: default_denied_audit_window_ms(),
        }
    }
}

fn default_api_rate_per_sec() -> u64 {
    100
}
fn default_api_burst() -> u64 {
    500
}
fn default_intake_rate_per_sec() -> u64 {
    50
}
fn default_intake_burst() -> u64 {
    200
}
fn default_intake_addr_rate_per_sec() -> u64 {
    500
}
fn default_intake_addr_burst() -> u64 {
    2_000
}
fn default_max_tracked_clients() -> u64 {
    10_000
}
fn default_token_cache_ms() -> u64 {
    2_000
}
fn default_audit_max_entries() -> u64 {
    100_000
}
fn default_header_timeout_ms() -> u64 {
    10_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_denied_audit_window_ms() -> u64 {
    60_000
}

impl LimitsSection {
    /// Checks every value's range.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `limits.…` key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ranges: [(&str, u64, u64, u64); 12] = [
            ("limits.api_rate_per_sec", self.api_rate_per_sec, 0, 1_000_000),
            ("limits.api_burst", self.api_burst, 1, 10_000_000),
            ("limits.intake_rate_per_sec", self.intake_rate_per_sec, 0, 1_000_000),
            ("limits.intake_burst", self.intake_burst, 1, 10_000_000),
            ("limits.intake_addr_rate_per_sec", self.intake_addr_rate_per_sec, 0, 1_000_000),
            ("limits.intake_addr_burst", self.intake_addr_burst, 1, 10_000_000),
            ("limits.max_tracked_clients", self.max_tracked_clients, 16, 10_000_000),
            ("limits.token_cache_ms", self.token_cache_ms, 0, 60_000),
            ("limits.audit_max_entries", self.audit_max_entries, 1, 100_000_000),
            ("limits.header_timeout_ms", self.header_timeout_ms, 100, 600_000),
            ("limits.request_timeout_ms", self.request_timeout_ms, 100, 3_600_000),
            ("limits.denied_audit_window_ms", self.denied_audit_window_ms, 100, 86_400_000),
        ];
        for (key, value, min, max) in ranges {
            if value < min || value > max {
                let message = format!("must be between {min} and {max}, got {value}");
                return Err(ConfigError::Invalid { key: key.into(), message });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_out_of_range_values_are_refused_by_name() {
        assert!(LimitsSection::default().validate().is_ok());
        let burst = LimitsSection { api_burst: 0, ..LimitsSection::default() };
        let error = burst.validate().unwrap_err().to_string();
        assert!(error.contains("limits.api_burst"), "{error}");
        let cache = LimitsSection { token_cache_ms: 60_001, ..LimitsSection::default() };
        assert!(cache.validate().unwrap_err().to_string().contains("limits.token_cache_ms"));
        for (key, section) in [
            (
                "limits.header_timeout_ms",
                LimitsSection { header_timeout_ms: 0, ..Default::default() },
            ),
            (
                "limits.request_timeout_ms",
                LimitsSection { request_timeout_ms: 0, ..Default::default() },
            ),
            (
                "limits.request_timeout_ms",
                LimitsSection { request_timeout_ms: 3_600_001, ..Default::default() },
            ),
            (
                "limits.denied_audit_window_ms",
                LimitsSection { denied_audit_window_ms: 0, ..Default::default() },
            ),
        ] {
            let error = section.validate().unwrap_err().to_string();
            assert!(error.contains(key) && error.contains("between"), "{error}");
        }
    }
}
