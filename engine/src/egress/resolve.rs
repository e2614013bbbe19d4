//! Name resolution under the egress policy: resolve once, keep only allowed addresses, and
//! connect to exactly those (so a second lookup cannot hand back another address).

use std::io;
use std::net::{IpAddr, SocketAddr};

use super::{Denied, Egress};

/// Why no address of a target may be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The name did not resolve.
    #[error("could not resolve {host}: {source}")]
    Lookup {
        /// The name.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The name resolved to nothing.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// The name.
        host: String,
    },
    /// Every address the name resolved to is denied; the first denial is named.
    #[error("{host}: {denied}")]
    Denied {
        /// The name (or the address, for an IP literal).
        host: String,
        /// The first refused address and the rule that refused it.
        denied: Denied,
    },
}

impl ResolveError {
    /// Returns the denial when the policy (not the resolver) is why there is no address.
    pub fn denied(&self) -> Option<&Denied> {
        match self {
            Self::Denied { denied, .. } => Some(denied),
            _ => None,
        }
    }
}

/// Returns the addresses of `host` (a name or an IP literal, IPv6 possibly bracketed) on
/// `port` that the policy allows, in resolver order.
///
/// # Errors
/// [`ResolveError`]: the lookup failed, found nothing, or every address is denied.
pub async fn resolve_allowed(
    egress: &Egress,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        // tokio resolves names on its blocking pool, so a slow resolver never stalls the runtime.
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|source| ResolveError::Lookup { host: bare.to_owned(), source })?
            .collect(),
    };
    filter_allowed(egress, bare, found)
}

/// Keeps the addresses of `found` that the policy allows.
///
/// # Errors
/// [`ResolveError::NoAddress`] when `found` is empty, [`ResolveError::Denied`] naming the first
/// denial when every address is denied.
pub fn filter_allowed(
    egress: &Egress,
    host: &str,
    found: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let mut allowed = Vec::new();
    let mut first_denial = None;
    for addr in found {
        match egress.check(addr.ip(), addr.port()) {
            Ok(()) => allowed.push(addr),
            Err(denied) => {
                first_denial.get_or_insert(denied);
            }
        }
    }
    match first_denial {
        _ if !allowed.is_empty() => Ok(allowed),
        Some(denied) => Err(ResolveError::Denied { host: host.to_owned(), denied }),
        None => Err(ResolveError::NoAddress { host: host.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_to_loopback_and_is_denied_without_an_allow() {
        let error = resolve_allowed(&Egress::default(), "localhost", 80).await.unwrap_err();
        let denied = error.denied().expect("denied by the policy");
        assert!(denied.addr.ip().is_loopback(), "{error}");
        assert!(denied.rule.contains("(loopback)"), "{error}");
        assert!(error.to_string().starts_with("localhost: egress to "), "{error}");
        let allowed = resolve_allowed(&Egress::loopback_for_tests(), "localhost", 80).await;
        assert!(allowed.unwrap().iter().all(|addr| addr.ip().is_loopback()));
    }

    #[tokio::test]
    async fn ip_literals_are_checked_without_a_lookup() {
        let error = resolve_allowed(&Egress::default(), "[fd00:ec2::254]", 80).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "fd00:ec2::254: egress to [fd00:ec2::254]:80 is denied by built-in deny \
             fd00:ec2::254/128 (cloud metadata)"
        );
        let public = resolve_allowed(&Egress::default(), "192.0.2.1", 443).await.unwrap();
        assert_eq!(public, ["192.0.2.1:443".parse().unwrap()]);
    }

    #[test]
    fn denied_addresses_are_dropped_and_the_allowed_ones_kept() {
        let rebinding = ["169.254.169.254:80".parse().unwrap(), "192.0.2.7:80".parse().unwrap()];
        let kept = filter_allowed(&Egress::default(), "mixed.example", rebinding).unwrap();
        assert_eq!(kept, ["192.0.2.7:80".parse().unwrap()]);
        let none = filter_allowed(&Egress::default(), "empty.example", []).unwrap_err();
        assert!(matches!(none, ResolveError::NoAddress { .. }), "{none}");
    }
}
