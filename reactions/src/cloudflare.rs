//! What the `cloudflare-*` reaction types share: Cloudflare API v4 credentials, the answer
//! envelope, and the DNS record calls.
//!
//! Every answer is `{"success", "errors": [{"code", "message"}], "messages", "result"}`: an
//! answer with `success: false` is a failure quoting the errors, whatever its HTTP status.
//! Record calls follow the API reference,
//! <https://developers.cloudflare.com/api/resources/dns/subresources/records/>:
//! list `GET zones/{zone_id}/dns_records` (`type`, `name`, `content`, `page`, `per_page`),
//! create `POST zones/{zone_id}/dns_records`, read, edit and delete
//! `GET`/`PATCH`/`DELETE zones/{zone_id}/dns_records/{dns_record_id}`.

use std::net::IpAddr;

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::api;
use crate::{ConfigError, REDACTED, ReactionContext};

mod client;

pub use client::{Client, DnsRecord};

/// Default `api_base_url` of the Cloudflare types.
pub const DEFAULT_API_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// Records asked for per page: the documented maximum for years, still accepted now that
/// the maximum is higher; pages are walked either way.
pub const PER_PAGE: usize = 100;
/// Pages read at most in one listing (500 × 100 records): a guard against an answer that
/// never says it is done.
const MAX_PAGES: usize = 500;
/// The API's error code for "An identical record already exists".
const IDENTICAL_RECORD_EXISTS: i64 = 81058;

/// Serde default of `api_base_url`.
pub fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_owned()
}

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: Bearer TOKEN`: an API token (preferred).
    Token(Secret),
    /// `X-Auth-Email` and `X-Auth-Key`: the account's email and Global API key (legacy).
    GlobalKey {
        /// The account's email.
        email: String,
        /// The Global API key.
        key: Secret,
    },
}

impl Auth {
    /// Returns the credentials from the `api_token`, `email` and `api_key` fields: an API
    /// token, or an email with a Global API key.
    ///
    /// # Errors
    /// Both or neither given, one half of the pair missing, an empty value, the `***`
    /// placeholder, or a value that cannot be sent in a header (never quoted).
    pub fn from_fields(
        api_token: Option<&Secret>,
        email: Option<&str>,
        api_key: Option<&Secret>,
    ) -> Result<Self, ConfigError> {
        match (api_token, email, api_key) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ConfigError::invalid(
                "api_token",
                "give api_token, or email and api_key, not both",
            )),
            (Some(token), None, None) => {
                check_header_secret("api_token", token.expose())?;
                Ok(Self::Token(token.clone()))
            }
            (None, None, None) => Err(ConfigError::invalid(
                "api_token",
                "missing: give api_token (an API token), or email and api_key (the global api key)",
            )),
            (None, Some(_), None) => Err(ConfigError::invalid("api_key", "is required with email")),
            (None, None, Some(_)) => Err(ConfigError::invalid("email", "is required with api_key")),
            (None, Some(email), Some(key)) => {
                let (local, domain) = email.split_once('@').unwrap_or_default();
                let well_formed =
                    !local.is_empty() && domain.contains('.') && !domain.ends_with('.');
                if !well_formed || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(ConfigError::invalid("email", "must be an email address"));
                }
                check_header_secret("api_key", key.expose())?;
                Ok(Self::GlobalKey { email: email.to_owned(), key: key.clone() })
            }
        }
    }
}

/// The fields every Cloudflare config has, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// `zone_id`.
    pub zone_id: &'a str,
    /// `api_token`.
    pub api_token: Option<&'a Secret>,
    /// `email`.
    pub email: Option<&'a str>,
    /// `api_key`.
    pub api_key: Option<&'a Secret>,
    /// `api_base_url`.
    pub api_base_url: &'a str,
    /// `timeout_ms`.
    pub timeout_ms: u64,
}

impl Access<'_> {
    /// Checks the shared fields and returns the credentials.
    ///
    /// # Errors
    /// The first invalid field: `zone_id`, `api_token`/`email`/`api_key`, `api_base_url`,
    /// `timeout_ms`.
    pub fn validate(&self) -> Result<Auth, ConfigError> {
        validate_id("zone_id", self.zone_id)?;
        let auth = Auth::from_fields(self.api_token, self.email, self.api_key)?;
        api::parse_base_url(self.api_base_url)?;
        api::validate_timeout_ms(self.timeout_ms)?;
        Ok(auth)
    }

    /// Returns the API client of reaction type `kind`.
    ///
    /// # Errors
    /// As [`Access::validate`].
    pub fn client(
        &self,
        kind: &'static str,
        context: &ReactionContext,
    ) -> Result<Client, ConfigError> {
        let auth = self.validate()?;
        Client::new(kind, context, self.api_base_url, auth, self.timeout_ms)
    }
}

/// A record type the `cloudflare-rec-*` types manage: those whose record is a name and a
/// content (plus a priority for MX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Mail exchanger (with a priority).
    Mx,
    /// Name server.
    Ns,
    /// Pointer.
    Ptr,
    /// Text.
    Txt,
}

impl RecordType {
    /// Returns the type as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Ns => "NS",
            Self::Ptr => "PTR",
            Self::Txt => "TXT",
        }
    }

    /// Returns whether Cloudflare can proxy records of this type.
    pub fn proxiable(self) -> bool {
        matches!(self, Self::A | Self::Aaaa | Self::Cname)
    }

    /// Checks `content` for this type and returns it as sent (addresses in canonical form).
    ///
    /// # Errors
    /// Not an address of the right family, or an empty or spaced host name, naming `field`.
    pub fn content(self, field: &str, content: &str) -> Result<String, ConfigError> {
        match self {
            Self::A => {
                content.parse::<std::net::Ipv4Addr>().map(|ip| ip.to_string()).map_err(|_| {
                    ConfigError::invalid(field, "must be an ipv4 address for an A record")
                })
            }
            Self::Aaaa => {
                content.parse::<std::net::Ipv6Addr>().map(|ip| ip.to_string()).map_err(|_| {
                    ConfigError::invalid(field, "must be an ipv6 address for an AAAA record")
                })
            }
            Self::Cname | Self::Mx | Self::Ns | Self::Ptr => {
                validate_name(field, content)?;
                Ok(content.to_owned())
            }
            Self::Txt if content.is_empty() => {
                Err(ConfigError::invalid(field, "must not be empty"))
            }
            Self::Txt => Ok(content.to_owned()),
        }
    }
}

/// Checks a TTL: 1 (automatic) or 30 to 86400 seconds.
///
/// # Errors
/// Anything else, naming `ttl`.
pub fn validate_ttl(ttl: u32) -> Result<(), ConfigError> {
    if ttl != 1 && !(30..=86_400).contains(&ttl) {
        return Err(ConfigError::invalid("ttl", "must be 1 (automatic) or 30 to 86400 seconds"));
    }
    Ok(())
}

/// Checks the record fields of a `cloudflare-rec-*` config and returns the content as sent.
///
/// # Errors
/// The first invalid field: `name`, `content`, `ttl`, `proxied` (only A, AAAA, CNAME),
/// `priority` (only MX).
pub fn validate_record(
    name: &str,
    record_type: RecordType,
    content: &str,
    ttl: Option<u32>,
    proxied: Option<bool>,
    priority: Option<u16>,
) -> Result<String, ConfigError> {
    validate_name("name", name)?;
    let content = record_type.content("content", content)?;
    if let Some(ttl) = ttl {
        validate_ttl(ttl)?;
    }
    if proxied == Some(true) && !record_type.proxiable() {
        return Err(ConfigError::invalid(
            "proxied",
            "only A, AAAA and CNAME records can be proxied",
        ));
    }
    if priority.is_some() && record_type != RecordType::Mx {
        return Err(ConfigError::invalid("priority", "is only for MX records"));
    }
    Ok(content)
}

/// Checks a secret bound for a header, naming `field` but never quoting the value.
fn check_header_secret(field: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::invalid(field, "must not be empty"));
    }
    if value == REDACTED {
        return Err(ConfigError::invalid(field, "is the placeholder \"***\": give the value"));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ConfigError::invalid(field, "must be printable ascii without spaces"));
    }
    Ok(())
}

/// Checks a Cloudflare identifier (a zone id): 32 hexadecimal digits.
///
/// # Errors
/// Anything else, naming `field`.
pub fn validate_id(field: &str, id: &str) -> Result<(), ConfigError> {
    if id.len() != 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        let message =
            "must be the 32-character hex id shown on the zone's overview page, not its name";
        return Err(ConfigError::invalid(field, message));
    }
    Ok(())
}

/// Checks a DNS record name: 1 to 255 characters, no whitespace.
///
/// # Errors
/// Anything else, naming `field`.
pub fn validate_name(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 255 {
        return Err(ConfigError::invalid(field, "must be 1 to 255 characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(field, "must not contain whitespace"));
    }
    Ok(())
}

/// Returns whether two record names are the same: case and a final dot do not matter.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Returns whether two record contents are the same: IP addresses compare as addresses
/// (`2001:db8::1` = `2001:DB8:0::1`), host names ignore case and a final dot, the rest
/// compares exactly.
pub fn same_content(record_type: &str, a: &str, b: &str) -> bool {
    match record_type {
        "A" | "AAAA" => match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        },
        "CNAME" | "NS" | "PTR" | "MX" => same_name(a, b),
        _ => a == b,
    }
}

/// Returns up to ten labels joined, with how many more there are.
pub fn list_labels(labels: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut joined = labels.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if labels.len() > SHOWN {
        joined.push_str(&format!(" and {} more", labels.len() - SHOWN));
    }
    joined
}

#[cfg(test)]
#[path = "cloudflare_tests.rs"]
pub(crate) mod tests;
