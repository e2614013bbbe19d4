//! Rate limits: token buckets per API token, per client address and, for webhook intake, per
//! monitor, in maps bounded in memory.
//!
//! [`guard`] runs once per request, before routing. API calls (`/api/v1/…` except intake) draw
//! on the caller address's bucket and, when a bearer token is sent, on that token's bucket
//! (keyed by the token's hash, so no secret is kept). Intake calls draw on their own buckets,
//! per monitor and per address, so an intake flood cannot starve the API. Past a limit the
//! answer is 429 `rate_limited` with `Retry-After` in seconds.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudroutes_engine::config::LimitsSection;
use warp::Filter;
use warp::Reply;
use warp::http::StatusCode;
use warp::path::FullPath;
use warp::reply::Response;

use crate::error::ApiError;

/// A rejection: a bucket is empty; retry after this many seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// Seconds until the bucket holds a request again (at least 1).
    pub retry_after_secs: u64,
    /// Which budget ran out, for the message: `token`, `client address`, `monitor`.
    pub scope: &'static str,
}

impl warp::reject::Reject for RateLimited {}

impl Reply for RateLimited {
    fn into_response(self) -> Response {
        let error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests for this {}; retry in {} s",
                self.scope, self.retry_after_secs
            ),
        );
        let mut response = error.into_response();
        if let Ok(value) = self.retry_after_secs.to_string().parse() {
            response.headers_mut().insert(warp::http::header::RETRY_AFTER, value);
        }
        response
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key: up to `burst` requests at once, refilled at `rate` per second; at
/// most `max_keys` keys, evicting full (idle) buckets first, then the fullest.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Returns a limiter; a `rate_per_sec` of 0 admits everything.
    pub fn new(rate_per_sec: u64, burst: u64, max_keys: usize) -> Self {
        Self {
            rate: rate_per_sec as f64,
            burst: burst.max(1) as f64,
            max_keys: max_keys.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `key`'s bucket at `now`.
    ///
    /// # Errors
    /// The wait until the bucket holds a request again, when it is empty.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|poison| poison.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.evict(&mut buckets, now);
        }
        let bucket =
            buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Drops buckets that have refilled (they hold nothing a fresh one would not); if none
    /// has, the one closest to full: a throttled caller's empty bucket is kept, so cycling
    /// through new keys cannot reset it.
    fn evict(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        let level =
            |b: &Bucket| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate;
        buckets.retain(|_, b| level(b) < burst);
        if buckets.len() >= self.max_keys {
            let fullest = buckets
                .iter()
                .max_by(|(_, a), (_, b)| level(a).total_cmp(&level(b)))
                .map(|(key, _)| key.clone());
            if let Some(fullest) = fullest {
                buckets.remove(&fullest);
            }
        }
    }

    /// Returns how many keys are tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|poison| poison.into_inner()).len()
    }
}

/// Every rate limit of a node, and the bounded log of the calls they and the role table deny.
#[derive(Debug)]
pub struct Limiters {
    api_by_token: RateLimiter,
    api_by_addr: RateLimiter,
    intake_by_monitor: RateLimiter,
    intake_by_addr: RateLimiter,
    denials: crate::denials::DenialLog,
}

impl Limiters {
    /// Returns the limiters `[limits]` describes.
    pub fn new(limits: &LimitsSection) -> Self {
        let max = usize::try_from(limits.max_tracked_clients).unwrap_or(usize::MAX);
        Self {
            api_by_token: RateLimiter::new(limits.api_rate_per_sec, limits.api_burst, max),
            api_by_addr: RateLimiter::new(limits.api_rate_per_sec, limits.api_burst, max),
            intake_by_monitor: RateLimiter::new(
                limits.intake_rate_per_sec,
                limits.intake_burst,
                max,
            ),
            intake_by_addr: RateLimiter::new(
                limits.intake_addr_rate_per_sec,
                limits.intake_addr_burst,
                max,
            ),
            denials: crate::denials::DenialLog::new(
                Duration::from_millis(limits.denied_audit_window_ms),
                max,
            ),
        }
    }

    /// Returns the bounded log of denied calls (see [`crate::denials`]).
    pub fn denials(&self) -> &crate::denials::DenialLog {
        &self.denials
    }

    /// Admits or refuses one request.
    ///
    /// # Errors
    /// [`RateLimited`] naming the budget that ran out.
    pub fn admit(
        &self,
        path: &str,
        authorization: Option<&str>,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), RateLimited> {
        let addr = addr.map_or_else(|| "unknown".to_owned(), |addr| addr.to_string());
        let refuse = |scope| {
            move |wait: Duration| RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                scope,
            }
        };
        if let Some(monitor) = intake_monitor(path) {
            self.intake_by_addr.take(&addr, now).map_err(refuse("client address"))?;
            return self.intake_by_monitor.take(monitor, now).map_err(refuse("monitor"));
        }
        if !path.starts_with("/api/") {
            return Ok(());
        }
        self.api_by_addr.take(&addr, now).map_err(refuse("client address"))?;
        if let Some(token) = authorization.map(str::trim).filter(|t| !t.is_empty()) {
            let key = crate::auth::token_hash(token);
            self.api_by_token.take(&key, now).map_err(refuse("token"))?;
        }
        Ok(())
    }
}

/// Returns the monitor id of a webhook intake path: `/api/v1/webhooks/{id}/…` or the
/// original shape `/api/{type}/{id}/{key}/{action}`.
fn intake_monitor(path: &str) -> Option<&str> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "v1", "webhooks", id, _, ..] => Some(id),
        ["api", kind, id, _, _] if *kind != "v1" => Some(id),
        _ => None,
    }
}

/// A filter that admits the request or rejects it with [`RateLimited`]; run it once per
/// request, before routing.
pub fn guard(
    limiters: Arc<Limiters>,
) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::path::full()
        .and(warp::header::optional::<String>("authorization"))
        .and(crate::server::peer_addr())
        .and_then(move |path: FullPath, authorization: Option<String>, addr: Option<SocketAddr>| {
            let limiters = Arc::clone(&limiters);
            async move {
                let ip = addr.map(|addr| addr.ip());
                limiters
                    .admit(path.as_str(), authorization.as_deref(), ip, Instant::now())
                    .map_err(warp::reject::custom)
            }
        })
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(2, 3, 100);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("k", start), Ok(()));
        }
        let wait = limiter.take("k", start).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(limiter.take("other", start), Ok(()), "each key has its own bucket");
        assert_eq!(limiter.take("k", start + Duration::from_millis(500)), Ok(()));
        assert!(limiter.take("k", start + Duration::from_millis(500)).is_err());
        for _ in 0..3 {
            assert_eq!(limiter.take("k", start + Duration::from_secs(60)), Ok(()));
        }
        assert!(limiter.take("k", start + Duration::from_secs(60)).is_err(), "capped at burst");
    }

    #[test]
    fn a_rate_of_zero_admits_everything() {
        let limiter = RateLimiter::new(0, 1, 1);
        let now = Instant::now();
        assert!((0..1000).all(|i| limiter.take(&i.to_string(), now).is_ok()));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn the_map_stays_bounded_and_evicts_idle_keys_first() {
        let limiter = RateLimiter::new(1, 5, 16);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.take("busy", start).unwrap();
        }
        for i in 0..1000 {
            limiter.take(&format!("k{i}"), start + Duration::from_millis(1)).unwrap();
            assert!(limiter.tracked() <= 16);
        }
        assert!(limiter.take("busy", start + Duration::from_millis(2)).is_err(), "busy kept");
    }

    #[test]
    fn intake_and_api_have_separate_budgets() {
        let limits = LimitsSection {
            api_rate_per_sec: 1,
            api_burst: 2,
            intake_rate_per_sec: 1,
            intake_burst: 1,
            intake_addr_rate_per_sec: 1,
            intake_addr_burst: 3,
            ..LimitsSection::default()
        };
        let limiters = Limiters::new(&limits);
        let (now, addr) = (Instant::now(), Some(IpAddr::from([127, 0, 0, 1])));
        let intake = "/api/v1/webhooks/m1/key";
        assert!(limiters.admit(intake, None, addr, now).is_ok());
        let refused = limiters.admit(intake, None, addr, now).unwrap_err();
        assert_eq!(refused, RateLimited { retry_after_secs: 1, scope: "monitor" });
        assert!(limiters.admit("/api/cr-api/m2/key/healthy", None, addr, now).is_ok());
        assert!(limiters.admit("/api/v1/monitors", Some("Bearer a"), addr, now).is_ok());
        assert!(limiters.admit("/api/v1/monitors", Some("Bearer b"), addr, now).is_ok());
        let refused = limiters.admit("/api/v1/monitors", Some("Bearer c"), addr, now).unwrap_err();
        assert_eq!(refused.scope, "client address");
        assert!(limiters.admit("/healthz", None, addr, now).is_ok(), "health is not limited");
    }

    #[test]
    fn intake_paths_name_their_monitor() {
        assert_eq!(intake_monitor("/api/v1/webhooks/m1/k"), Some("m1"));
        assert_eq!(intake_monitor("/api/v1/webhooks/m1/k/failed"), Some("m1"));
        assert_eq!(intake_monitor("/api/datadog-webhook/m2/k/failed"), Some("m2"));
        assert_eq!(intake_monitor("/api/v1/monitors/m1/fail"), None);
        assert_eq!(intake_monitor("/api/v1/monitors"), None);
    }
}
