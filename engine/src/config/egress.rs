//! `[egress]`: which addresses checks and reactions may connect to, on top of the built-in
//! denies of [`crate::egress`].

use serde::Deserialize;

use crate::egress::{Cidr, Egress};
use crate::error::ConfigError;

/// `[egress]`: the operator's allow and deny lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSection {
    /// CIDR prefixes checks and reactions may reach although a built-in rule denies them
    /// (e.g. `10.0.0.0/8` to monitor a private network); a bare address is a `/32` or `/128`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// CIDR prefixes checks and reactions may never reach.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Lets checks and reactions reach the node's own API, cluster and Redis ports.
    #[serde(default)]
    pub allow_node_ports: bool,
}

impl EgressSection {
    /// Parses both lists.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the item (`egress.allow[2]`) that is not a prefix.
    pub fn prefixes(&self) -> Result<(Vec<Cidr>, Vec<Cidr>), ConfigError> {
        Ok((parse_list("egress.allow", &self.allow)?, parse_list("egress.deny", &self.deny)?))
    }

    /// Returns the policy these lists make (node ports are added by the node, which knows them).
    ///
    /// # Errors
    /// As [`EgressSection::prefixes`].
    pub fn policy(&self) -> Result<Egress, ConfigError> {
        let (allow, deny) = self.prefixes()?;
        Ok(Egress::new(&allow, &deny))
    }
}

fn parse_list(key: &str, items: &[String]) -> Result<Vec<Cidr>, ConfigError> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            item.trim().parse().map_err(|error: crate::egress::CidrError| ConfigError::Invalid {
                key: format!("{key}[{index}]"),
                message: error.to_string(),
            })
        })
        .collect()
}
