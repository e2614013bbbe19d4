//! `aws-ec2start`: start stopped EC2 instances with `StartInstances` (see [`crate::aws_ec2`]).
//!
//! Idempotent: starting a running instance leaves it running, so a failed run may be retried.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::aws_ec2::{Action, Fields, Instances, SECRET_FIELDS};
use crate::{ConfigError, Effect, Reaction, ReactionContext, ReactionType};

/// Config of an `aws-ec2start` reaction: region, credentials and instances.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Config(pub Instances);

impl Config {
    /// Returns the fields the EC2 types share.
    pub fn fields(&self) -> Fields<'_> {
        self.0.fields()
    }
}

impl ReactionType for Config {
    const NAME: &'static str = "aws-ec2start";
    const DESCRIPTION: &'static str = "start stopped EC2 instances (EC2 StartInstances)";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.fields().validate().map(drop)
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        self.fields().build(Action::Start, context)
    }
}
