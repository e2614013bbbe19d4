//! The node's egress policy as reactions apply it: [`GuardedClient`], the one HTTP client
//! every reaction sends through, and [`connect_tcp`] for raw connections (SSH).
//!
//! A name is resolved through a guarded resolver that drops denied addresses; before each
//! request the URL's host and port are judged (reqwest does not resolve IP literals, and only
//! here is the port known); each redirect hop to an IP literal is judged by the redirect
//! policy, each hop to a name by the resolver. A denial is a final
//! [`ReactionError::Failed`] naming the host, the address and the rule: retrying cannot help.

use std::error::Error;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use cloudroutes_engine::egress::{Egress, ResolveError, resolve_allowed};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::net::TcpStream;
use url::Url;

use crate::{ConfigError, ReactionError};

/// How many redirects a reaction's request follows.
const MAX_REDIRECTS: usize = 10;

/// A reqwest resolver keeping only the addresses the policy allows (by range: the port is
/// judged before each request by [`GuardedClient::check_url`]).
#[derive(Debug, Clone)]
struct GuardedResolver {
    egress: Arc<Egress>,
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

/// The node's pooled HTTP client for reactions, bound to its egress policy. It dereferences to
/// the [`reqwest::Client`] it wraps.
#[derive(Debug, Clone)]
pub struct GuardedClient {
    client: reqwest::Client,
    egress: Arc<Egress>,
}

impl Deref for GuardedClient {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        &self.client
    }
}

impl GuardedClient {
    /// Builds the client: names resolve through `egress`, redirects (up to ten) are judged hop
    /// by hop.
    ///
    /// # Errors
    /// Fails when the TLS backend cannot be initialised.
    pub fn new(egress: Arc<Egress>) -> Result<Self, reqwest::Error> {
        let policy = Arc::clone(&egress);
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match literal_denial(&policy, attempt.url()) {
                Some(denied) => attempt.error(denied),
                None => attempt.follow(),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("CloudRoutes/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect)
            .dns_resolver(GuardedResolver { egress: Arc::clone(&egress) })
            .build()?;
        Ok(Self { client, egress })
    }

    /// Returns the policy the client applies.
    pub fn egress(&self) -> &Arc<Egress> {
        &self.egress
    }

    /// Judges the host and port of `url` before a request of reaction type `kind` is sent.
    ///
    /// # Errors
    /// [`ReactionError::Failed`] naming the host, the address and the rule;
    /// [`ReactionError::Transport`] when the name does not resolve.
    pub async fn check_url(&self, kind: &'static str, url: &Url) -> Result<(), ReactionError> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(0);
        resolve_allowed(&self.egress, host, port).await.map(drop).map_err(|e| refusal(kind, &e))
    }
}

/// Returns the denial text when `url`'s host is an IP literal the policy denies on its port.
fn literal_denial(egress: &Egress, url: &Url) -> Option<String> {
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    let port = url.port_or_known_default().unwrap_or(0);
    egress.check(ip, port).err().map(|denied| format!("redirect to {host}: {denied}"))
}

/// Refuses, at create time, a `field` URL whose host is an IP literal the policy denies.
///
/// # Errors
/// [`ConfigError`] naming `field` and the rule.
pub fn refuse_denied_literal(egress: &Egress, field: &str, url: &Url) -> Result<(), ConfigError> {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = host.parse::<IpAddr>() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(0);
    egress.check(ip, port).map_err(|denied| ConfigError::invalid(field, denied.to_string()))
}

/// Returns the reaction error for a failed resolution: final when the policy refused.
pub fn refusal(kind: &'static str, error: &ResolveError) -> ReactionError {
    match error {
        ResolveError::Denied { .. } => ReactionError::Failed { kind, message: error.to_string() },
        _ => ReactionError::Transport { kind, message: error.to_string() },
    }
}

/// Resolves `host` once and connects to the first allowed address that accepts; when none
/// does, the last connect error goes through `unreachable`.
///
/// # Errors
/// As [`refusal`] when no address may be used, else what `unreachable` makes of the error.
pub async fn connect_tcp(
    egress: &Egress,
    kind: &'static str,
    host: &str,
    port: u16,
    unreachable: impl FnOnce(std::io::Error) -> ReactionError,
) -> Result<TcpStream, ReactionError> {
    let addrs = resolve_allowed(egress, host, port).await.map_err(|e| refusal(kind, &e))?;
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = Some(error),
        }
    }
    Err(unreachable(last_error.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into())))
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
