//! `aws-ec2restart`: reboot EC2 instances with `RebootInstances` (see [`crate::aws_ec2`]).
//!
//! Destructive: a repeat run reboots them again, so it is never retried.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::aws_ec2::{Action, Fields, Instances, SECRET_FIELDS};
use crate::{ConfigError, Effect, Reaction, ReactionContext, ReactionType};

/// Config of an `aws-ec2restart` reaction: region, credentials and instances.
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
    const NAME: &'static str = "aws-ec2restart";
    const DESCRIPTION: &'static str = "reboot EC2 instances (EC2 RebootInstances)";
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.fields().validate().map(drop)
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        self.fields().build(Action::Reboot, context)
    }
}
