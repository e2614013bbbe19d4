//! PLACEHOLDER until the reactions helper lands the real type.
use crate::{ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError};
use schemars::JsonSchema;
use serde::Deserialize;
/// Secret fields.
pub const SECRET_FIELDS: &[&str] = &["headers"];
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
/// Reaction.
#[derive(Debug)]
pub struct HttpWebhookReaction;
impl HttpWebhookReaction {
    /** new */
    pub fn new(_c: &Config, _x: &ReactionContext) -> Result<Self, ConfigError> {
        Ok(Self)
    }
}
#[async_trait::async_trait]
impl Reaction for HttpWebhookReaction {
    fn kind(&self) -> &'static str {
        "http-webhook"
    }
    fn effect(&self) -> Effect {
        Effect::Idempotent
    }
    async fn fire(&self, _i: &Incident) -> Result<Fired, ReactionError> {
        Ok(Fired::Skipped(String::new()))
    }
}
