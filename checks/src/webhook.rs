//! `webhook`: a passive monitor whose results are posted to its webhook URL (the original API
//! v1: `{"action": "healthy" | "failed" | "status"}`).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::ConfigError;

/// Config of a `webhook` monitor: it has no fields of its own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl Config {
    /// Validates the config (nothing to check).
    ///
    /// # Errors
    /// Never fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
