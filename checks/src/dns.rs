//! `dns`: asks a resolver for the `record_type` records of `name`; healthy when there are some
//! and, with `expected`, when they are exactly those values (or, with `match: "contains"`, at
//! least those).
//!
//! Every run asks the server anew: nothing is cached between runs. `name` is always asked as a
//! fully qualified name: no search domains apply. Without `resolver`, the check asks the
//! nameservers listed in `/etc/resolv.conf` (the first three, port 53, as the C library does),
//! reading the file on every run; when it lists none, the outcome is unknown and says to set
//! `resolver`. The C library's fallback to a server on 127.0.0.1 is not copied: a monitor that
//! asks nobody on purpose is clearer than one that silently asks localhost.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, lookup::Lookup};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

use crate::support::{default_timeout_ms, io_error_outcome, validate_timeout_ms};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// The DNS port, used when `resolver` names none.
const DNS_PORT: u16 = 53;
/// Where the system's nameservers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// How many `nameserver` lines of `/etc/resolv.conf` count (the C library's `MAXNS`).
const MAX_SYSTEM_NAMESERVERS: usize = 3;
/// Longest name accepted (RFC 1035), without a final dot.
const MAX_NAME_LEN: usize = 253;
/// How many values a reason lists before it only counts the rest.
const LISTED_VALUES: usize = 10;

/// Config of a `dns` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name to look up, e.g. `www.example.com`; asked as a fully qualified name (no search
    /// domains), so a final dot changes nothing.
    #[schemars(length(min = 1, max = 254))]
    pub name: String,
    /// Record type to ask for: `A` (the default), `AAAA`, `CNAME`, `MX`, `NS` or `TXT`; any
    /// case.
    #[serde(default)]
    pub record_type: RecordKind,
    /// Resolver to ask: an IP address with an optional port (`10.0.0.53`, `10.0.0.53:5353`,
    /// `[fd00::53]:5353`; port 53 by default). When omitted, the nameservers that
    /// `/etc/resolv.conf` lists.
    #[serde(default)]
    pub resolver: Option<String>,
    /// Values the answer must hold: IP addresses for `A` and `AAAA`, host names for `CNAME`,
    /// `MX` (the mail exchanger; preferences are ignored) and `NS`, the text of each record for
    /// `TXT` (its strings joined). Any answer with at least one record is healthy when omitted.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub expected: Option<Vec<String>>,
    /// How the answer is compared with `expected`: `exact` (the default: the same set of
    /// values) or `contains` (every expected value, others allowed). Needs `expected`.
    #[serde(default, rename = "match")]
    pub match_mode: Option<MatchMode>,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

/// A record type the `dns` check asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum RecordKind {
    /// IPv4 addresses.
    #[default]
    A,
    /// IPv6 addresses.
    Aaaa,
    /// The canonical name of an alias.
    Cname,
    /// Mail exchangers.
    Mx,
    /// Name servers of a zone.
    Ns,
    /// Text records.
    Txt,
}

impl RecordKind {
    const ALL: [Self; 6] = [Self::A, Self::Aaaa, Self::Cname, Self::Mx, Self::Ns, Self::Txt];

    /// Returns the type's name as DNS spells it, e.g. `AAAA`.
    fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Ns => "NS",
            Self::Txt => "TXT",
        }
    }

    fn record_type(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Cname => RecordType::CNAME,
            Self::Mx => RecordType::MX,
            Self::Ns => RecordType::NS,
            Self::Txt => RecordType::TXT,
        }
    }

    /// Returns the value of `data` as it is compared with `expected`, if it has this type.
    fn value_of(self, data: &RData) -> Option<String> {
        match (self, data) {
            (Self::A, RData::A(address)) => Some(address.0.to_string()),
            (Self::Aaaa, RData::AAAA(address)) => Some(address.0.to_string()),
            (Self::Cname, RData::CNAME(name)) => Some(host_name(&name.0)),
            (Self::Mx, RData::MX(mx)) => Some(host_name(&mx.exchange)),
            (Self::Ns, RData::NS(name)) => Some(host_name(&name.0)),
            (Self::Txt, RData::TXT(txt)) => {
                Some(String::from_utf8_lossy(&txt.txt_data.concat()).into())
            }
            _ => None,
        }
    }

    /// Returns `value` in the form answers are compared in, or why it cannot be one.
    fn normalize_expected(self, value: &str) -> Result<String, String> {
        match self {
            Self::A => value
                .parse::<Ipv4Addr>()
                .map(|address| address.to_string())
                .map_err(|_| format!("`{value}` is not an ipv4 address")),
            Self::Aaaa => value
                .parse::<Ipv6Addr>()
                .map(|address| address.to_string())
                .map_err(|_| format!("`{value}` is not an ipv6 address")),
            Self::Cname | Self::Mx | Self::Ns => parse_name(value)
                .map(|name| host_name(&name))
                .map_err(|reason| format!("`{value}` is not a host name: {reason}")),
            Self::Txt => Ok(value.to_owned()),
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for RecordKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::ALL.into_iter().find(|kind| kind.as_str().eq_ignore_ascii_case(&value)).ok_or_else(
            || {
                let known: Vec<_> = Self::ALL.iter().map(|k| k.as_str().to_lowercase()).collect();
                format!(
                    "unknown record type `{}`, expected one of {}",
                    value.to_lowercase(),
                    known.join(", ")
                )
            },
        )
    }
}

impl JsonSchema for RecordKind {
    fn schema_name() -> Cow<'static, str> {
        "RecordKind".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Self::ALL.iter().map(|kind| kind.as_str()).collect();
        json_schema!({ "type": "string", "enum": names })
    }
}

/// How a `dns` answer is compared with `expected`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// The answer holds exactly the expected values.
    #[default]
    Exact,
    /// The answer holds every expected value, and maybe others.
    Contains,
}

/// Parses a host name, fully qualified: ASCII names as they are (underscores allowed, as in
/// `_dmarc.example.com`), others through IDNA (`bücher.example` is `xn--bcher-kva.example`).
fn parse_name(name: &str) -> Result<Name, String> {
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters".into());
    }
    if name.strip_suffix('.').unwrap_or(name).split('.').any(str::is_empty) {
        return Err("has an empty label".into());
    }
    let parsed = if name.is_ascii() { Name::from_ascii(name) } else { Name::from_utf8(name) };
    let mut parsed = parsed.map_err(|error| error.to_string().to_lowercase())?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// Returns a name as answers are compared and shown: lowercase ASCII, without the final dot.
fn host_name(name: &Name) -> String {
    name.to_lowercase().to_ascii().trim_end_matches('.').to_owned()
}

/// Parses `resolver`: an IP address with an optional port.
fn parse_resolver(resolver: &str) -> Result<SocketAddr, ConfigError> {
    let addr = resolver
        .parse::<SocketAddr>()
        .or_else(|_| resolver.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, DNS_PORT)))
        .map_err(|_| {
            ConfigError::invalid(
                "resolver",
                "must be an ip address with an optional port, e.g. 10.0.0.53 or 10.0.0.53:5353",
            )
        })?;
    if addr.port() == 0 {
        return Err(ConfigError::invalid("resolver", "port must be between 1 and 65535"));
    }
    Ok(addr)
}

impl CheckType for Config {
    const NAME: &'static str = "dns";
    const DESCRIPTION: &'static str =
        "asks a resolver for a name's records; healthy when it answers (with the expected values)";

    /// Checks every field: a valid name and resolver, `expected` values of the record type's
    /// form, `match` only with `expected`, the timeout's range.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`name`, `resolver`, `expected`,
    /// `expected[i]`, `match`, `timeout_ms`).
    fn validate(&self) -> Result<(), ConfigError> {
        self.parsed()?;
        Ok(())
    }

    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        let check = DnsCheck::new(self)?.with_egress(&context.egress);
        if let Some(resolver) = check.resolver {
            let host = resolver.ip().to_string();
            crate::egress::refuse_denied_literal(
                &context.egress,
                "resolver",
                &host,
                resolver.port(),
            )?;
        }
        Ok(Some(Box::new(check)))
    }
}

/// The validated parts of a config.
struct Parsed {
    name: Name,
    resolver: Option<SocketAddr>,
    expected: Option<BTreeSet<String>>,
    timeout: Duration,
}

impl Config {
    /// Validates every field and returns the values a check needs.
    fn parsed(&self) -> Result<Parsed, ConfigError> {
        let bare_name = self.name.strip_suffix('.').unwrap_or(&self.name);
        if bare_name.is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        if bare_name.len() > MAX_NAME_LEN {
            return Err(ConfigError::invalid(
                "name",
                format!("must be at most {MAX_NAME_LEN} bytes"),
            ));
        }
        let name = parse_name(bare_name).map_err(|reason| {
            ConfigError::invalid("name", format!("not a valid name: {reason}"))
        })?;
        let resolver = self.resolver.as_deref().map(parse_resolver).transpose()?;
        let expected = match &self.expected {
            None => None,
            Some(values) if values.is_empty() => {
                return Err(ConfigError::invalid(
                    "expected",
                    "must list at least one value; leave it out to accept any answer",
                ));
            }
            Some(values) => Some(
                values
                    .iter()
                    .enumerate()
                    .map(|(index, value)| {
                        self.record_type.normalize_expected(value).map_err(|message| {
                            ConfigError::invalid(format!("expected[{index}]"), message)
                        })
                    })
                    .collect::<Result<BTreeSet<_>, _>>()?,
            ),
        };
        if self.match_mode.is_some() && expected.is_none() {
            return Err(ConfigError::invalid("match", "needs `expected`"));
        }
        let timeout = validate_timeout_ms(self.timeout_ms)?;
        Ok(Parsed { name, resolver, expected, timeout })
    }
}

/// A runnable `dns` check.
#[derive(Debug)]
pub struct DnsCheck {
    egress: Arc<Egress>,
    /// The name as configured, for reasons.
    shown_name: String,
    name: Name,
    record_type: RecordKind,
    /// The resolver to ask; `None`: those in `resolv_conf`.
    resolver: Option<SocketAddr>,
    resolv_conf: PathBuf,
    expected: Option<BTreeSet<String>>,
    match_mode: MatchMode,
    timeout: Duration,
    timeout_ms: u64,
}

impl DnsCheck {
    /// Returns the check connecting only where `egress` allows (a check built with `new`
    /// has the built-in policy: no private, loopback or metadata addresses).
    #[must_use]
    pub fn with_egress(mut self, egress: &Arc<Egress>) -> Self {
        self.egress = Arc::clone(egress);
        self
    }

    /// Validates `config` and builds the check; contacts nobody yet.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let Parsed { name, resolver, expected, timeout } = config.parsed()?;
        Ok(Self {
            egress: Arc::new(Egress::default()),
            shown_name: config.name.trim_end_matches('.').to_owned(),
            name,
            record_type: config.record_type,
            resolver,
            resolv_conf: PathBuf::from(RESOLV_CONF),
            expected,
            match_mode: config.match_mode.unwrap_or_default(),
            timeout,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Returns the servers to ask: `resolver`, or those `/etc/resolv.conf` lists.
    async fn servers(&self) -> Result<Vec<SocketAddr>, CheckOutcome> {
        // Only a resolver the monitor names is judged: the node's own (resolv.conf) is the
        // operator's choice, like the resolver every other check uses.
        if let Some(resolver) = self.resolver {
            if let Err(denied) = self.egress.check(resolver.ip(), resolver.port()) {
                return Err(CheckOutcome::Failed { reason: format!("resolver: {denied}") });
            }
            return Ok(vec![resolver]);
        }
        let path = self.resolv_conf.display();
        let text = tokio::fs::read_to_string(&self.resolv_conf).await.map_err(|error| {
            CheckOutcome::Unknown {
                reason: format!("could not read {path}: {error}; set `resolver`"),
            }
        })?;
        let servers = nameservers_in(&text);
        if servers.is_empty() {
            let reason = format!("{path} lists no nameserver; set `resolver`");
            return Err(CheckOutcome::Unknown { reason });
        }
        Ok(servers)
    }

    /// Returns the outcome of an answer.
    fn judge(&self, lookup: &Lookup, asked: &str) -> CheckOutcome {
        let values: BTreeSet<String> = lookup
            .answers()
            .iter()
            .filter_map(|record| self.record_type.value_of(&record.data))
            .collect();
        let (name, record_type) = (&self.shown_name, self.record_type);
        if values.is_empty() {
            let reason = format!("{name} has no {record_type} records (asked {asked})");
            return CheckOutcome::Failed { reason };
        }
        let got = self.listed(&values);
        let Some(expected) = &self.expected else {
            return CheckOutcome::Healthy { reason: format!("{name} {record_type} is {got}") };
        };
        let (matches, wanted) = match self.match_mode {
            MatchMode::Exact => (values == *expected, ""),
            MatchMode::Contains => (values.is_superset(expected), "at least "),
        };
        if matches {
            return CheckOutcome::Healthy { reason: format!("{name} {record_type} is {got}") };
        }
        let expected = self.listed(expected);
        CheckOutcome::Failed {
            reason: format!("{name} {record_type} is {got}, expected {wanted}{expected}"),
        }
    }

    /// Returns `values` as a reason lists them: comma-separated, TXT values quoted, at most
    /// [`LISTED_VALUES`] of them.
    fn listed(&self, values: &BTreeSet<String>) -> String {
        let shown = values.iter().take(LISTED_VALUES).map(|value| match self.record_type {
            RecordKind::Txt => format!("{value:?}"),
            _ => value.clone(),
        });
        let mut listed = shown.collect::<Vec<_>>().join(", ");
        if values.len() > LISTED_VALUES {
            listed.push_str(&format!(" and {} more", values.len() - LISTED_VALUES));
        }
        listed
    }

    /// Returns the outcome of a failed lookup at `asked`.
    fn error_outcome(&self, error: &NetError, asked: &str) -> CheckOutcome {
        let (name, record_type) = (&self.shown_name, self.record_type);
        let reason = match error {
            error if error.is_nx_domain() => {
                format!("{name} does not exist (NXDOMAIN from {asked})")
            }
            error if error.is_no_records_found() => {
                format!("{name} has no {record_type} records (asked {asked})")
            }
            NetError::Timeout => return self.no_answer(asked),
            NetError::Dns(DnsError::ResponseCode(code)) => {
                let code = format!("{code:?}").to_uppercase();
                format!("{asked} answered {code} for {name} {record_type}")
            }
            NetError::Io(io_error) => return io_error_outcome(io_error, asked),
            other => format!("lookup of {name} {record_type} at {asked} failed: {other}"),
        };
        CheckOutcome::Failed { reason }
    }

    fn no_answer(&self, asked: &str) -> CheckOutcome {
        CheckOutcome::Failed {
            reason: format!("no answer from {asked} within {} ms", self.timeout_ms),
        }
    }
}

#[async_trait::async_trait]
impl Check for DnsCheck {
    fn kind(&self) -> &'static str {
        "dns"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        let servers = match self.servers().await {
            Ok(servers) => servers,
            Err(outcome) => return outcome,
        };
        let asked = servers.iter().map(SocketAddr::to_string).collect::<Vec<_>>().join(", ");
        // A resolver of its own for every run: no answer is ever served from a cache.
        let resolver = match build_resolver(&servers, self.timeout) {
            Ok(resolver) => resolver,
            Err(error) => {
                return CheckOutcome::Unknown {
                    reason: format!("could not set up a resolver: {error}"),
                };
            }
        };
        let lookup = resolver.lookup(self.name.clone(), self.record_type.record_type());
        match tokio::time::timeout(self.timeout, lookup).await {
            Ok(Ok(lookup)) => self.judge(&lookup, &asked),
            Ok(Err(error)) => self.error_outcome(&error, &asked),
            Err(_) => self.no_answer(&asked),
        }
    }
}

/// Returns the nameservers a `resolv.conf` lists (at most three; scoped IPv6 addresses, which
/// need an interface, are skipped).
fn nameservers_in(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .filter_map(|address| address.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .take(MAX_SYSTEM_NAMESERVERS)
        .collect()
}

/// Builds a resolver that asks `servers` (UDP, then TCP for truncated answers) and nothing
/// else: no hosts file, no search domains.
fn build_resolver(
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<Resolver<TokioRuntimeProvider>, NetError> {
    let name_servers = servers
        .iter()
        .map(|server| {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut connection| {
                    connection.port = server.port();
                    connection
                })
                .collect();
            NameServerConfig::new(server.ip(), true, connections)
        })
        .collect();
    let mut options = ResolverOpts::default();
    options.use_hosts_file = ResolveHosts::Never;
    // Two tries per server fit in the check's timeout: one lost UDP packet is not a failure.
    options.timeout = (timeout / 2).max(Duration::from_millis(1));
    options.attempts = 1;
    let config = ResolverConfig::from_name_servers(name_servers);
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
