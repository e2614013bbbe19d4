//! PLACEHOLDER until the checks helper lands the real type.
use crate::{Check, CheckContext, ConfigError};
use schemars::JsonSchema;
use serde::Deserialize;
/// Config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /** target */
    pub url: String,
}
impl Config {
    /** validate */
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
/// Check.
#[derive(Debug)]
pub struct HttpGetStatuscodeCheck;
impl HttpGetStatuscodeCheck {
    /** new */
    pub fn new(_c: &Config, _x: &CheckContext) -> Result<Self, ConfigError> {
        Ok(Self)
    }
}
#[async_trait::async_trait]
impl Check for HttpGetStatuscodeCheck {
    fn kind(&self) -> &'static str {
        "x"
    }
    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    async fn run(&self) -> cloudroutes_engine::CheckOutcome {
        cloudroutes_engine::CheckOutcome::Unknown { reason: String::new() }
    }
}
