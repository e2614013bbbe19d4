//! Bearer-token authentication. Tokens are compared in constant time.

use subtle::ConstantTimeEq;
use warp::Filter;

use crate::error::ApiError;

/// A caller's role (API.md): admin can do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
}

/// The tokens this node accepts.
#[derive(Clone)]
pub struct Auth {
    admin_token: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(<redacted>)")
    }
}

impl Auth {
    /// Accepts `admin_token` as an admin token.
    pub fn new(admin_token: impl Into<String>) -> Self {
        Self { admin_token: admin_token.into() }
    }

    /// Returns the caller's role for an `Authorization` header value.
    ///
    /// # Errors
    /// 401 when the header is missing, not a bearer token, or names no valid token.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Role, ApiError> {
        let Some(header) = header else {
            return Err(ApiError::unauthorized(
                "missing bearer token: send `Authorization: Bearer TOKEN` (the admin token is printed at first start and kept in DATA_DIR/admin.token)",
            ));
        };
        let Some(token) = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))
        else {
            return Err(ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`"));
        };
        if bool::from(token.trim().as_bytes().ct_eq(self.admin_token.as_bytes())) {
            Ok(Role::Admin)
        } else {
            Err(ApiError::unauthorized("invalid token"))
        }
    }
}

/// A filter that passes authenticated callers and rejects others with 401.
pub fn authenticated(
    auth: Auth,
) -> impl Filter<Extract = (Role,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let auth = auth.clone();
        async move { auth.authenticate(header.as_deref()).map_err(warp::reject::custom) }
    })
}
