//! The node's egress policy, built from `[egress]` and the node's own endpoints: the API,
//! cluster and Redis ports are denied on every local address, and the Redis server itself,
//! unless `egress.allow_node_ports`.
//!
//! A listener bound to an unspecified address (`0.0.0.0`, `::`) answers on every interface,
//! so then every address of every local interface (read once at startup) counts as the
//! node's own: an operator who allows `10.0.0.0/8` to watch the LAN does not open the node's
//! API on its LAN address.

use std::net::{IpAddr, SocketAddr};

use cloudroutes_engine::config::NodeConfig;
use cloudroutes_engine::egress::Egress;
use tracing::{info, warn};

use crate::error::NodeError;

/// The port Redis listens on when `store.url` names none.
const REDIS_DEFAULT_PORT: u16 = 6379;

/// Builds the policy every check and reaction of this node connects through.
///
/// # Errors
/// `Unavailable` when an `[egress]` prefix does not parse (validated config never does).
pub(crate) async fn policy(config: &NodeConfig) -> Result<Egress, NodeError> {
    policy_with_interfaces(config, local_interface_addrs).await
}

/// Builds the policy, asking `interfaces` for the local interface addresses when a listener
/// binds an unspecified address (tests pass a fake list).
async fn policy_with_interfaces(
    config: &NodeConfig,
    interfaces: impl FnOnce() -> Vec<IpAddr>,
) -> Result<Egress, NodeError> {
    let egress = config.egress.policy().map_err(|e| NodeError::Unavailable(format!("{e}")))?;
    let mut ports = Vec::new();
    let mut addrs = Vec::new();
    let mut protected = Vec::new();
    let mut note = |addr: SocketAddr| {
        if addr.port() != 0 {
            ports.push(addr.port());
        }
        addrs.push(addr.ip());
    };
    note(config.http.addr);
    if let Some((host, port)) = config.cluster.addr.as_deref().and_then(split_host_port) {
        match host.parse::<IpAddr>() {
            Ok(ip) => note(SocketAddr::new(ip, port)),
            // A name: the listener binds what it resolves to, so those are ours too.
            Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => found.for_each(&mut note),
                Err(error) => {
                    ports.push(port);
                    warn!(host = %host, error = %error, "cannot resolve the cluster address");
                }
            },
        }
    }
    if addrs.iter().any(IpAddr::is_unspecified) {
        addrs.extend(interfaces());
    }
    addrs.sort_unstable();
    addrs.dedup();
    if !config.is_embedded()
        && let Some((host, port)) = redis_host_port(&config.store.url)
    {
        ports.push(port);
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(found) => protected.extend(found),
            Err(error) => warn!(host = %host, error = %error, "cannot resolve the redis host"),
        }
    }
    ports.sort_unstable();
    ports.dedup();
    info!(
        allow = ?config.egress.allow,
        deny = ?config.egress.deny,
        node_ports = ?ports,
        node_addrs = ?addrs,
        allow_node_ports = config.egress.allow_node_ports,
        "egress policy"
    );
    Ok(egress
        .with_node_ports(&ports, &addrs, config.egress.allow_node_ports)
        .with_protected_endpoints(&protected))
}

/// Returns the addresses (IPv4 and IPv6) of every local interface, or none (with a warning)
/// when the system will not list them.
fn local_interface_addrs() -> Vec<IpAddr> {
    let interfaces = match nix::ifaddrs::getifaddrs() {
        Ok(interfaces) => interfaces,
        Err(error) => {
            warn!(error = %error, "cannot list the local interface addresses");
            return Vec::new();
        }
    };
    let mut found: Vec<IpAddr> = interfaces
        .filter_map(|interface| {
            let address = interface.address?;
            let v4 = address.as_sockaddr_in().map(|sin| IpAddr::V4(sin.ip()));
            v4.or_else(|| address.as_sockaddr_in6().map(|sin6| IpAddr::V6(sin6.ip())))
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// Splits `host:port` (`[v6]:port` too).
fn split_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

/// Returns the host and port of a `redis://` or `rediss://` URL.
fn redis_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if authority.ends_with(']') || !authority.contains(':') {
        let host = authority.trim_start_matches('[').trim_end_matches(']');
        return Some((host.to_owned(), REDIS_DEFAULT_PORT));
    }
    split_host_port(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_give_their_host_and_port() {
        let cases = [
            ("redis://127.0.0.1:6380/0", ("127.0.0.1", 6380)),
            ("redis://:secret@redis.internal/2", ("redis.internal", 6379)),
            ("rediss://user:pw@[::1]:7000", ("::1", 7000)),
            ("redis://[fd00::5]", ("fd00::5", 6379)),
        ];
        for (url, (host, port)) in cases {
            assert_eq!(redis_host_port(url), Some((host.to_owned(), port)), "{url}");
        }
    }

    #[tokio::test]
    async fn the_node_api_cluster_and_redis_ports_are_denied_on_local_addresses() {
        let mut config = NodeConfig::default();
        config.http.addr = "127.0.0.1:18080".parse().unwrap();
        config.cluster.addr = Some("10.0.0.7:17000".into());
        config.store.url = "redis://127.0.0.1:16379/0".into();
        config.egress.allow = vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()];
        let egress = policy(&config).await.unwrap();
        for (ip, port) in [("127.0.0.1", 18080), ("127.0.0.2", 17000), ("10.0.0.7", 16379)] {
            let denied = egress.check(ip.parse().unwrap(), port).unwrap_err();
            assert!(denied.rule.contains("egress.allow_node_ports = false"), "{denied}");
        }
        assert!(egress.check("127.0.0.1".parse().unwrap(), 18081).is_ok());
        assert!(egress.check("10.0.0.8".parse().unwrap(), 18080).is_ok(), "not our address");
        config.egress.allow_node_ports = true;
        let open = policy(&config).await.unwrap();
        assert!(open.check("127.0.0.1".parse().unwrap(), 18080).is_ok());
    }

    fn fake_interfaces() -> Vec<IpAddr> {
        ["127.0.0.1", "10.0.0.5", "192.168.7.20", "fd00::5", "fe80::1"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect()
    }

    /// Issue 7: with the API on `0.0.0.0`, the node's LAN address is its own too.
    #[tokio::test]
    async fn a_listener_on_every_interface_makes_every_interface_address_the_node_own() {
        let mut config = NodeConfig::default();
        config.http.addr = "0.0.0.0:18080".parse().unwrap();
        config.egress.allow = vec!["10.0.0.0/8".into(), "192.168.0.0/16".into(), "fd00::/8".into()];
        let egress = policy_with_interfaces(&config, fake_interfaces).await.unwrap();
        for ip in ["10.0.0.5", "192.168.7.20", "fd00::5", "::ffff:10.0.0.5"] {
            let denied = egress.check(ip.parse().unwrap(), 18080).unwrap_err();
            assert!(denied.rule.contains("the node's own port 18080"), "{ip}: {denied}");
            assert!(egress.check(ip.parse().unwrap(), 18081).is_ok(), "{ip}: other ports");
        }
        assert!(egress.check("10.0.0.6".parse().unwrap(), 18080).is_ok(), "another host");

        config.http.addr = "[::]:18080".parse().unwrap();
        let egress = policy_with_interfaces(&config, fake_interfaces).await.unwrap();
        assert!(egress.check("10.0.0.5".parse().unwrap(), 18080).is_err(), "`::` too");

        config.egress.allow_node_ports = true;
        let open = policy_with_interfaces(&config, fake_interfaces).await.unwrap();
        assert!(open.check("10.0.0.5".parse().unwrap(), 18080).is_ok());
    }

    #[tokio::test]
    async fn a_listener_on_one_address_does_not_list_the_interfaces() {
        let mut config = NodeConfig::default();
        config.http.addr = "10.0.0.7:18080".parse().unwrap();
        config.egress.allow = vec!["10.0.0.0/8".into()];
        let egress = policy_with_interfaces(&config, || panic!("interfaces listed")).await;
        let egress = egress.unwrap();
        assert!(egress.check("10.0.0.7".parse().unwrap(), 18080).is_err());
        assert!(egress.check("10.0.0.5".parse().unwrap(), 18080).is_ok(), "not bound there");
    }

    #[tokio::test]
    async fn a_cluster_listener_on_every_interface_counts_too() {
        let mut config = NodeConfig::default();
        config.http.addr = "127.0.0.1:18080".parse().unwrap();
        config.cluster.addr = Some("0.0.0.0:17000".into());
        config.egress.allow = vec!["10.0.0.0/8".into()];
        let egress = policy_with_interfaces(&config, fake_interfaces).await.unwrap();
        for port in [17000, 18080] {
            assert!(egress.check("10.0.0.5".parse().unwrap(), port).is_err(), "{port}");
        }
    }

    #[test]
    fn the_real_interface_list_holds_loopback() {
        let found = local_interface_addrs();
        assert!(found.iter().any(IpAddr::is_loopback), "{found:?}");
    }
}
