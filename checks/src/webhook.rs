//! `webhook`: a passive monitor whose results are posted to its webhook URL (the original API
//! v1: `{"action": "healthy" | "failed" | "status"}`).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::{Check, CheckContext, CheckType, ConfigError};

/// Config of a `webhook` monitor: it has no fields of its own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl CheckType for Config {
    const NAME: &'static str = "webhook";
    const DESCRIPTION: &'static str =
        "results are posted to the monitor's webhook URL (healthy, failed, status)";
    const PASSIVE: bool = true;

    /// Validates the config (nothing to check).
    ///
    /// # Errors
    /// Never fails.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    fn build(&self, _context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(None)
    }
}
