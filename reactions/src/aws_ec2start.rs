//! `aws-ec2start`: start stopped EC2 instances with `StartInstances` (see [`crate::aws_ec2`]).
//!
//! Idempotent: starting a running instance leaves it running, so a failed run may be retried.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::aws_ec2::{Action, Fields, SECRET_FIELDS};
use crate::{ConfigError, Effect, Reaction, ReactionContext, ReactionType, api};

/// Config of an `aws-ec2start` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// AWS region of the instances, e.g. `us-east-1`.
    pub region: String,
    /// Access key id of an IAM identity allowed `ec2:StartInstances`, e.g. `AKIAIOSFODNN7EXAMPLE`.
    pub access_key_id: String,
    /// Secret access key of that access key id; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub secret_access_key: Secret,
    /// Session token of temporary credentials (from STS), if any; write-only.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub session_token: Option<Secret>,
    /// Instances to start, 1 to 20 ids like `i-0123456789abcdef0`.
    #[schemars(length(min = 1, max = 20))]
    pub instance_ids: Vec<String>,
    /// EC2 endpoint to call instead of `https://ec2.{region}.amazonaws.com` (a proxy, a VPC
    /// endpoint, a compatible API); requests are signed for its host.
    #[serde(default)]
    #[schemars(url)]
    pub api_base_url: Option<String>,
    /// Milliseconds to wait for the answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl Config {
    /// Returns the fields the EC2 types share.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            region: &self.region,
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            session_token: self.session_token.as_ref(),
            instance_ids: &self.instance_ids,
            api_base_url: self.api_base_url.as_deref(),
            timeout_ms: self.timeout_ms,
        }
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
