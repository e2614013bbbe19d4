//! The node's egress policy as checks apply it: a guarded resolver for the shared HTTP
//! clients, a port-aware check of every URL (each redirect hop too) before it is requested,
//! resolve-once-then-connect for raw sockets, and a refusal at create time of IP literals the
//! policy denies.
//!
//! A run-time denial is a `Failed` outcome naming the rule, like a name that does not resolve:
//! the target as it resolves now cannot be checked, and saying so loudly is better than an
//! `Unknown` that would leave a mis-aimed monitor quiet forever.

use std::error::Error;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::{Egress, ResolveError, resolve_allowed};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::ConfigError;
use crate::support::unbracketed_host;

/// A reqwest resolver that resolves a name and keeps only the addresses the policy allows (by
/// range: the port is not known here, so [`check_url`] judges it before each request).
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    egress: Arc<Egress>,
}

impl GuardedResolver {
    /// Returns a resolver applying `egress`.
    pub(crate) fn new(egress: Arc<Egress>) -> Self {
        Self { egress }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = Arc::clone(&self.egress);
        Box::pin(async move {
            let allowed = resolve_allowed(&egress, name.as_str(), 0)
                .await
                .map_err(|error| Box::new(error) as Box<dyn Error + Send + Sync>)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Returns the failed outcome of a resolution the policy (or the resolver) refused.
pub(crate) fn resolve_error_outcome(error: &ResolveError) -> CheckOutcome {
    CheckOutcome::Failed { reason: error.to_string() }
}

/// Checks the host and port of `url` (an http(s) URL) against the policy before a request.
///
/// # Errors
/// The failed outcome naming the host, the address and the rule.
pub(crate) async fn check_url(egress: &Egress, url: &Url) -> Result<(), CheckOutcome> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(0);
    resolve_allowed(egress, host, port).await.map(drop).map_err(|e| resolve_error_outcome(&e))
}

/// Resolves `host` once and returns the allowed addresses to connect to, in resolver order.
///
/// # Errors
/// The failed outcome: the name does not resolve, or every address is denied.
pub(crate) async fn allowed_addrs(
    egress: &Egress,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, CheckOutcome> {
    resolve_allowed(egress, host, port).await.map_err(|error| resolve_error_outcome(&error))
}

/// Refuses, at create time, a `field` whose host is an IP literal the policy denies on `port`.
///
/// # Errors
/// [`ConfigError`] naming `field` and the rule.
pub(crate) fn refuse_denied_literal(
    egress: &Egress,
    field: &str,
    host: &str,
    port: u16,
) -> Result<(), ConfigError> {
    let Ok(ip) = unbracketed_host(host).parse::<IpAddr>() else {
        return Ok(());
    };
    egress.check(ip, port).map_err(|denied| ConfigError::invalid(field, denied.to_string()))
}

/// Refuses, at create time, a URL whose host is an IP literal the policy denies.
///
/// # Errors
/// As [`refuse_denied_literal`].
pub(crate) fn refuse_denied_url(
    egress: &Egress,
    field: &str,
    url: &Url,
) -> Result<(), ConfigError> {
    let port = url.port_or_known_default().unwrap_or(0);
    refuse_denied_literal(egress, field, url.host_str().unwrap_or_default(), port)
}

/// Resolves `host` once, then connects to the first allowed address that accepts; `target`
/// (`host:port`) names it in failure reasons.
///
/// # Errors
/// The failed (or, when this node ran out of sockets, unknown) outcome.
pub(crate) async fn connect_tcp(
    egress: &Egress,
    host: &str,
    port: u16,
    target: &str,
) -> Result<tokio::net::TcpStream, CheckOutcome> {
    let mut last_error = None;
    for addr in allowed_addrs(egress, host, port).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = Some(error),
        }
    }
    let error = last_error.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into());
    Err(crate::support::io_error_outcome(&error, target))
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
