//! The egress policy: which addresses a check or reaction may connect to.
//!
//! A node that can reboot servers must not be a way into its own network, so every outbound
//! connection of a check or reaction is decided here, on the resolved address (never only the
//! name, so DNS rebinding does not get through). The policy is pure: an [`IpAddr`] and a port
//! in, a [`Decision`] naming the rule that decided out.
//!
//! - Built-in denies ([`BUILT_IN_DENIES`]): cloud metadata, link-local, unspecified,
//!   multicast, broadcast, and the private ranges (loopback, RFC 1918, CGNAT, ULA).
//! - Operator lists (`[egress]` in `cluster.toml`): `allow` and `deny` CIDR lists. The most
//!   specific matching prefix wins; at the same prefix length an operator `deny` beats an
//!   operator `allow`, which beats a built-in deny. So `allow = ["169.254.0.0/16"]` does not
//!   open `169.254.169.254/32`; only listing that exact prefix does.
//! - The node's own ports (API, cluster, Redis) on any of its own addresses stay denied
//!   whatever the lists say, unless `egress.allow_node_ports = true`.
//!
//! IPv6 addresses that carry an IPv4 destination are judged as that IPv4 address
//! ([`canonical`]), so no wrapping sneaks a denied address past the IPv4 rules:
//! - IPv4-mapped, `::ffff:a.b.c.d` (the IPv4 address is the last 32 bits);
//! - NAT64 well-known prefix, `64:ff9b::/96` (RFC 6052: the last 32 bits);
//! - 6to4, `2002::/16` (RFC 3056: bits 16..48, so `2002:a9fe:a9fe::1` is 169.254.169.254);
//! - Teredo, `2001::/32` (RFC 4380: the client's address is the last 32 bits inverted, so
//!   `2001:0:…:5601:5601` is 169.254.169.254 wrapped — `!0x5601_5601`).
//!
//! The local-use NAT64 block `64:ff9b:1::/48` (RFC 8215) has no single place for the IPv4
//! address (each network picks its own prefix length inside it), so it cannot be unwrapped:
//! it is a built-in deny instead, like the other local ranges. So is the deprecated
//! IPv4-compatible form `::a.b.c.d` (`::/96`, RFC 4291), which nothing legitimate uses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

mod resolve;

pub use resolve::{ResolveError, filter_allowed, resolve_allowed};

/// An address prefix such as `10.0.0.0/8` or `fd00::/8`; a bare address is a `/32` or `/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR text did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a cidr prefix: {message}")]
pub struct CidrError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub message: String,
}

impl Cidr {
    /// Returns the prefix `network/prefix`, with the bits past `prefix` cleared.
    ///
    /// # Errors
    /// When `prefix` is longer than the address (32 for IPv4, 128 for IPv6).
    pub fn new(network: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let max = max_prefix(network);
        if prefix > max {
            return Err(CidrError {
                text: format!("{network}/{prefix}"),
                message: format!("prefix length must be at most {max}"),
            });
        }
        let network = match network {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(prefix))),
        };
        Ok(Self { network, prefix })
    }

    /// Returns the network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// Returns the prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Returns whether `addr` lies in this prefix (an IPv4 prefix never holds an IPv6 address;
    /// callers canonicalise mapped addresses first).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let error = |message: &str| CidrError { text: text.to_owned(), message: message.into() };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| error("expected an ip address such as 10.0.0.0/8 or fd00::/8"))?;
        let prefix = match prefix {
            None => max_prefix(addr),
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse().map_err(|_| error("prefix length is too long"))?
            }
            Some(_) => return Err(error("prefix length must be a number")),
        };
        let cidr = Self::new(addr, prefix).map_err(|e| error(&e.message))?;
        if cidr.network != addr {
            return Err(error(&format!("has host bits set; the network is {}", cidr)));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The ranges denied unless an operator allows them: `(prefix, why)`.
pub const BUILT_IN_DENIES: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade nat"),
    ("100.100.100.200/32", "cloud metadata"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("169.254.169.254/32", "cloud metadata"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/96", "ipv4-compatible (deprecated)"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use nat64"),
    ("fc00::/7", "unique local"),
    ("fd00:ec2::254/128", "cloud metadata"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

/// Where a rule comes from; at the same prefix length a later variant wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// One of [`BUILT_IN_DENIES`], with why it is denied.
    BuiltIn(&'static str),
    /// `egress.allow`.
    Allow,
    /// `egress.deny`.
    Deny,
}

/// One prefix of the policy and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The prefix it matches.
    pub cidr: Cidr,
    /// Where it comes from.
    pub origin: Origin,
}

impl Rule {
    /// Returns whether the rule lets a connection through.
    pub fn allows(&self) -> bool {
        self.origin == Origin::Allow
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin {
            Origin::BuiltIn(why) => write!(f, "built-in deny {} ({why})", self.cidr),
            Origin::Allow => write!(f, "egress.allow {}", self.cidr),
            Origin::Deny => write!(f, "egress.deny {}", self.cidr),
        }
    }
}

/// What the policy says about one address and port, and which rule said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The connection may go ahead; `rule` is the allow that opened it (`None`: no rule
    /// matched, the address is public).
    Allowed {
        /// The deciding allow rule, if any.
        rule: Option<Rule>,
    },
    /// The connection is refused.
    Denied(Denied),
}

/// A refused connection: the address, the port and the rule, as error text shows them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("egress to {addr} is denied by {rule}")]
pub struct Denied {
    /// The address and port refused (IPv6 in brackets).
    pub addr: SocketAddr,
    /// The rule that refused it, e.g. `built-in deny 169.254.169.254/32 (cloud metadata)`.
    pub rule: String,
}

/// The egress policy of a node. Cheap to share behind an `Arc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    rules: Vec<Rule>,
    node_ports: Vec<u16>,
    node_addrs: Vec<IpAddr>,
    protected: Vec<SocketAddr>,
    allow_node_ports: bool,
}

impl Default for Egress {
    /// The built-in denies, no operator lists, no node ports known.
    fn default() -> Self {
        Self::new(&[], &[])
    }
}

impl Egress {
    /// Returns the built-in denies with the operator's `allow` and `deny` lists on top.
    pub fn new(allow: &[Cidr], deny: &[Cidr]) -> Self {
        let built_in = BUILT_IN_DENIES.iter().map(|(text, why)| Rule {
            cidr: text.parse().expect("the built-in deny list holds valid prefixes"),
            origin: Origin::BuiltIn(why),
        });
        let allow = allow.iter().map(|cidr| Rule { cidr: *cidr, origin: Origin::Allow });
        let deny = deny.iter().map(|cidr| Rule { cidr: *cidr, origin: Origin::Deny });
        let rules = built_in.chain(allow).chain(deny).collect();
        Self {
            rules,
            node_ports: Vec::new(),
            node_addrs: Vec::new(),
            protected: Vec::new(),
            allow_node_ports: false,
        }
    }

    /// Returns the policy unit tests use for their servers on loopback: the built-in denies
    /// with `127.0.0.0/8` and `::1/128` allowed, and no node ports. Never used by a node.
    pub fn loopback_for_tests() -> Self {
        let loopback = ["127.0.0.0/8".parse(), "::1/128".parse()];
        let allow: Vec<Cidr> = loopback.into_iter().flatten().collect();
        Self::new(&allow, &[])
    }

    /// Returns the policy with the node's own `ports` (API, cluster, Redis) denied on loopback,
    /// on the unspecified addresses and on each of `addrs` (the node's own addresses), whatever
    /// the lists say, unless `allow_node_ports`.
    #[must_use]
    pub fn with_node_ports(mut self, ports: &[u16], addrs: &[IpAddr], allow: bool) -> Self {
        self.node_ports.extend_from_slice(ports);
        self.node_addrs.extend(addrs.iter().map(|addr| canonical(*addr)));
        self.allow_node_ports = allow;
        self
    }

    /// Returns the policy with `endpoints` (e.g. the node's own Redis server) always denied,
    /// unless node ports are allowed.
    #[must_use]
    pub fn with_protected_endpoints(mut self, endpoints: &[SocketAddr]) -> Self {
        self.protected.extend(
            endpoints.iter().map(|addr| SocketAddr::new(canonical(addr.ip()), addr.port())),
        );
        self
    }

    /// Returns the rules, built-in first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Decides whether a connection to `addr` port `port` may go ahead.
    pub fn decide(&self, addr: IpAddr, port: u16) -> Decision {
        let judged = canonical(addr);
        let target = SocketAddr::new(addr, port);
        if !self.allow_node_ports
            && let Some(rule) = self.node_rule(judged, port)
        {
            return Decision::Denied(Denied { addr: target, rule });
        }
        let winner = self
            .rules
            .iter()
            .filter(|rule| rule.cidr.contains(judged))
            .max_by_key(|rule| (rule.cidr.prefix(), rule.origin));
        match winner {
            Some(rule) if !rule.allows() => {
                Decision::Denied(Denied { addr: target, rule: rule.to_string() })
            }
            rule => Decision::Allowed { rule: rule.copied() },
        }
    }

    /// Returns `Ok` when a connection to `addr` port `port` may go ahead.
    ///
    /// # Errors
    /// [`Denied`], naming the address, the port and the rule.
    pub fn check(&self, addr: IpAddr, port: u16) -> Result<(), Denied> {
        match self.decide(addr, port) {
            Decision::Allowed { .. } => Ok(()),
            Decision::Denied(denied) => Err(denied),
        }
    }

    /// Returns the node-port rule that denies `addr` port `port`, if any.
    fn node_rule(&self, addr: IpAddr, port: u16) -> Option<String> {
        if self.protected.contains(&SocketAddr::new(addr, port)) {
            return Some(format!(
                "the node's own redis {} (egress.allow_node_ports = false)",
                SocketAddr::new(addr, port)
            ));
        }
        let local = addr.is_loopback() || addr.is_unspecified() || self.node_addrs.contains(&addr);
        (local && self.node_ports.contains(&port))
            .then(|| format!("the node's own port {port} (egress.allow_node_ports = false)"))
    }
}

/// Returns the address a decision judges: the IPv4 address an IPv4-mapped, NAT64
/// (`64:ff9b::/96`), 6to4 (`2002::/16`) or Teredo (`2001::/32`) IPv6 address carries (see the
/// module doc), otherwise `addr`.
pub fn canonical(addr: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = addr else { return addr };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let bits = u128::from(v6);
    // Each cast keeps exactly the 32 bits that hold the IPv4 address.
    #[allow(clippy::cast_possible_truncation)]
    let embedded = if bits >> 32 == 0x0064_ff9b_u128 << 64 {
        bits as u32
    } else if bits >> 112 == 0x2002 {
        (bits >> 80) as u32
    } else if bits >> 96 == 0x2001_0000 {
        !(bits as u32)
    } else {
        return addr;
    };
    IpAddr::V4(Ipv4Addr::from(embedded))
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
