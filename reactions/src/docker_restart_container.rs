//! `docker-restart-container`: restart a container through the Docker Engine API
//! (`POST /v1.43/containers/{id}/restart?t=N`: stop it, killing it after `N` seconds, then
//! start it). A restart interrupts the service, so the reaction is [`Effect::Destructive`].

use schemars::JsonSchema;
use serde::Deserialize;

use crate::docker::{self, ContainerAction, ContainerActionReaction, DockerApi, Target};
use crate::{ConfigError, Effect, Reaction, ReactionContext, ReactionType};

const KIND: &str = "docker-restart-container";
/// Docker's own default stop timeout.
const DEFAULT_STOP_TIMEOUT_SECS: u32 = 10;
/// Longest stop timeout: the answer must still come within the largest `timeout_ms`.
const MAX_STOP_TIMEOUT_SECS: u32 = 119;
/// Default `timeout_ms`: the default stop timeout plus time to start again (and the node's
/// default cap on a reaction run, `engine.reaction_timeout_ms`).
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

fn default_stop_timeout_secs() -> u32 {
    DEFAULT_STOP_TIMEOUT_SECS
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Config of a `docker-restart-container` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Docker daemon: `unix:///var/run/docker.sock` (the default) or a TCP address as
    /// `http://HOST:2375` or `https://HOST:2376` (the daemon's certificate is verified; client
    /// certificates are not supported).
    #[serde(default = "docker::default_endpoint")]
    pub endpoint: String,
    /// Docker Engine API version prefix of every request, e.g. `v1.43` (Docker 24 and later).
    #[serde(default = "docker::default_api_version")]
    pub api_version: String,
    /// The container's name or id.
    #[schemars(length(min = 2, max = 255))]
    pub container: String,
    /// Seconds Docker waits for the container to stop (after SIGTERM) before killing it, 0 to
    /// 119.
    #[serde(default = "default_stop_timeout_secs")]
    #[schemars(range(max = 119))]
    pub stop_timeout_secs: u32,
    /// Milliseconds to wait for Docker's answer, 1 to 120000; must exceed
    /// `stop_timeout_secs` × 1000, as Docker answers once the container has restarted.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str = "restart a docker container through the docker engine api";
    const EFFECT: Effect = Effect::Destructive;

    fn validate(&self) -> Result<(), ConfigError> {
        self.target().map(|_| ())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let api = DockerApi::new(KIND, self.target()?, context.http.clone());
        let action = ContainerAction::Restart { stop_timeout_secs: self.stop_timeout_secs };
        Ok(Box::new(ContainerActionReaction::new(api, &self.container, action)))
    }
}

impl Config {
    fn target(&self) -> Result<Target, ConfigError> {
        let target = Target::parse(&self.endpoint, &self.api_version, self.timeout_ms)?;
        docker::validate_container(&self.container)?;
        if self.stop_timeout_secs > MAX_STOP_TIMEOUT_SECS {
            let message = format!("must be at most {MAX_STOP_TIMEOUT_SECS}");
            return Err(ConfigError::invalid("stop_timeout_secs", message));
        }
        if self.timeout_ms <= u64::from(self.stop_timeout_secs) * 1000 {
            return Err(ConfigError::invalid(
                "timeout_ms",
                "must exceed stop_timeout_secs × 1000: docker answers once the container has \
                 restarted",
            ));
        }
        Ok(target)
    }
}
