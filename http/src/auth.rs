//! Bearer-token authentication and role checks.
//!
//! Two kinds of token: the bootstrap admin token (`CLOUDROUTES_ADMIN_TOKEN` or
//! `DATA_DIR/admin.token`, an admin named `admin`), compared in constant time; and API tokens
//! made with `POST /api/v1/tokens`, stored only as the SHA-256 of their secret and looked up by
//! that hash (the stored hash is compared again in constant time). A lookup is cached for
//! `limits.token_cache_ms`, so a token revoked on another node stops working within that time;
//! on the node that revokes it, at once.
//!
//! What a role may do is one table, [`required_role`]: admin everything; editor monitors and
//! reactions and every read except tokens and audit; viewer reads only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudroutes_engine::Store;
use cloudroutes_engine::access::ApiToken;
pub use cloudroutes_engine::access::Role;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use warp::Filter;
use warp::http::{Method, StatusCode};

use crate::error::ApiError;

/// The prefix of every API token's secret, so a leaked one is easy to recognise and search for.
pub const TOKEN_PREFIX: &str = "crt_";

/// Most token lookups remembered; the cache is emptied when it grows past this.
const CACHE_MAX: usize = 10_000;

/// Token lookups by hash: when each was made and what it found.
type LookupCache = Arc<Mutex<HashMap<String, (Instant, Option<ApiToken>)>>>;

/// Who is calling: a token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (`admin` for the bootstrap admin token).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// The tokens this node accepts.
#[derive(Clone)]
pub struct Auth {
    admin_token: Arc<str>,
    store: Option<Arc<dyn Store>>,
    cache: LookupCache,
    cache_ttl: Duration,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(<redacted>)")
    }
}

/// Returns the hex SHA-256 of a token secret: how API tokens are stored and looked up.
pub fn token_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Returns a new API token secret: [`TOKEN_PREFIX`] then 32 bytes of the OS RNG in hex.
pub fn new_token_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{TOKEN_PREFIX}{hex}")
}

impl Auth {
    /// Accepts `admin_token` as an admin token, and no other.
    pub fn new(admin_token: impl Into<String>) -> Self {
        Self {
            admin_token: admin_token.into().into(),
            store: None,
            cache: Arc::default(),
            cache_ttl: Duration::ZERO,
        }
    }

    /// Accepts `admin_token` and the API tokens in `store`, remembering lookups for
    /// `cache_ttl`.
    pub fn with_store(
        admin_token: impl Into<String>,
        store: Arc<dyn Store>,
        cache_ttl: Duration,
    ) -> Self {
        Self { store: Some(store), cache_ttl, ..Self::new(admin_token) }
    }

    /// Forgets every cached lookup (after a token was revoked here).
    pub fn forget_cached(&self) {
        self.cache.lock().unwrap_or_else(|poison| poison.into_inner()).clear();
    }

    /// Returns the caller for an `Authorization` header value.
    ///
    /// # Errors
    /// 401 when the header is missing, not a bearer token, or names no valid token (unknown,
    /// revoked or expired); 503 when the store cannot be asked.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Caller, ApiError> {
        let Some(header) = header else {
            return Err(ApiError::unauthorized(
                "missing bearer token: send `Authorization: Bearer TOKEN` (the admin token is printed at first start and kept in DATA_DIR/admin.token)",
            ));
        };
        let Some(token) = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))
        else {
            return Err(ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`"));
        };
        let token = token.trim();
        if bool::from(token.as_bytes().ct_eq(self.admin_token.as_bytes())) {
            return Ok(Caller { name: "admin".into(), role: Role::Admin });
        }
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(ApiError::unauthorized("invalid token"));
        }
        let hash = token_hash(token);
        let found = self.lookup(&hash).await?;
        let Some(found) = found.filter(|t| bool::from(t.hash.as_bytes().ct_eq(hash.as_bytes())))
        else {
            return Err(ApiError::unauthorized("invalid token (unknown or revoked)"));
        };
        if found.is_expired(OffsetDateTime::now_utc()) {
            return Err(ApiError::unauthorized(format!("token `{}` has expired", found.name)));
        }
        Ok(Caller { name: found.name, role: found.role })
    }

    async fn lookup(&self, hash: &str) -> Result<Option<ApiToken>, ApiError> {
        let Some(store) = &self.store else { return Ok(None) };
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(|poison| poison.into_inner());
            if let Some((at, token)) = cache.get(hash)
                && now.duration_since(*at) < self.cache_ttl
            {
                return Ok(token.clone());
            }
        }
        let token = store.token_by_hash(hash).await.map_err(|error| {
            tracing::error!(error = %error, "store failed while checking a token");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "cannot check the token now",
            )
        })?;
        if !self.cache_ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|poison| poison.into_inner());
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash.to_owned(), (now, token.clone()));
        }
        Ok(token)
    }
}

/// Returns the least role that may call `method` on `path` (the role table).
pub fn required_role(method: &Method, path: &str) -> Role {
    let path = path.trim_end_matches('/');
    if path == "/api/v1/tokens"
        || path.starts_with("/api/v1/tokens/")
        || path == "/api/v1/audit"
        || path.starts_with("/api/v1/cluster/")
    {
        return Role::Admin;
    }
    if method == Method::GET || method == Method::HEAD {
        return Role::Viewer;
    }
    let editable = ["/api/v1/monitors", "/api/v1/reactions"];
    if editable.iter().any(|base| path == *base || path.starts_with(&format!("{base}/"))) {
        Role::Editor
    } else {
        Role::Admin
    }
}

/// Returns the 403 a caller gets for a route that needs `needed`.
pub fn forbidden(needed: Role, caller: &Caller) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("this request needs the {needed} role; this token is a {}", caller.role),
    )
}

/// The rejection of a caller whose token's role is too small: the 403 and who was refused
/// (`error::recover` answers the 403 and keeps the caller for the audit of denied calls).
#[derive(Debug, Clone)]
pub struct Forbidden {
    /// The 403.
    pub error: ApiError,
    /// Who was refused.
    pub caller: Caller,
}

impl warp::reject::Reject for Forbidden {}

/// A filter that passes callers whose token may call this route (per [`required_role`]):
/// 401 without a valid token, 403 with a token of too small a role.
pub fn authenticated(
    auth: Auth,
) -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("authorization"))
        .and_then(move |method: Method, path: warp::path::FullPath, header: Option<String>| {
            let auth = auth.clone();
            async move {
                let caller =
                    auth.authenticate(header.as_deref()).await.map_err(warp::reject::custom)?;
                let needed = required_role(&method, path.as_str());
                if caller.role.allows(needed) {
                    Ok(caller)
                } else {
                    let error = forbidden(needed, &caller);
                    Err(warp::reject::custom(Forbidden { error, caller }))
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table_per_route_class() {
        let table: &[(Method, &str, Role)] = &[
            (Method::GET, "/api/v1/monitors", Role::Viewer),
            (Method::GET, "/api/v1/monitors/m1/events", Role::Viewer),
            (Method::GET, "/api/v1/reactions/r1", Role::Viewer),
            (Method::GET, "/api/v1/check-types", Role::Viewer),
            (Method::GET, "/api/v1/reaction-types", Role::Viewer),
            (Method::GET, "/api/v1/cluster", Role::Viewer),
            (Method::POST, "/api/v1/monitors", Role::Editor),
            (Method::PUT, "/api/v1/monitors/m1", Role::Editor),
            (Method::DELETE, "/api/v1/monitors/m1", Role::Editor),
            (Method::POST, "/api/v1/monitors/m1/run", Role::Editor),
            (Method::POST, "/api/v1/monitors/m1/fail", Role::Editor),
            (Method::POST, "/api/v1/monitors/m1/heal", Role::Editor),
            (Method::POST, "/api/v1/monitors/m1/rotate-key", Role::Editor),
            (Method::POST, "/api/v1/reactions", Role::Editor),
            (Method::DELETE, "/api/v1/reactions/r1", Role::Editor),
            (Method::POST, "/api/v1/cluster/nodes/n1/drain", Role::Admin),
            (Method::GET, "/api/v1/tokens", Role::Admin),
            (Method::POST, "/api/v1/tokens", Role::Admin),
            (Method::DELETE, "/api/v1/tokens/t1", Role::Admin),
            (Method::GET, "/api/v1/audit", Role::Admin),
            (Method::POST, "/api/v1/monitorsx", Role::Admin),
            (Method::PATCH, "/api/v1/anything-else", Role::Admin),
        ];
        for (method, path, role) in table {
            assert_eq!(required_role(method, path), *role, "{method} {path}");
        }
    }

    #[test]
    fn secrets_are_long_prefixed_and_hash_to_hex_sha256() {
        let (a, b) = (new_token_secret(), new_token_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64, "{a}");
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn the_admin_token_is_an_admin_and_others_are_refused() {
        let auth = Auth::new("s3cret-admin-token");
        let caller = auth.authenticate(Some("Bearer s3cret-admin-token")).await.unwrap();
        assert_eq!(caller, Caller { name: "admin".into(), role: Role::Admin });
        for header in [None, Some("Bearer nope"), Some("Basic x"), Some("Bearer crt_00")] {
            let error = auth.authenticate(header).await.unwrap_err();
            assert_eq!(error.status, StatusCode::UNAUTHORIZED, "{header:?}");
        }
    }

    #[test]
    fn forbidden_names_the_role_needed_and_the_callers() {
        let caller = Caller { name: "ci".into(), role: Role::Viewer };
        let error = forbidden(Role::Editor, &caller);
        assert_eq!(error.status, StatusCode::FORBIDDEN);
        assert_eq!(error.message, "this request needs the editor role; this token is a viewer");
    }
}
