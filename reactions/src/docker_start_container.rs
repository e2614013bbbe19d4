//! `docker-start-container`: start a stopped container through the Docker Engine API
//! (`POST /v1.43/containers/{id}/start`). Starting a running container does nothing (Docker
//! answers `304`, the reaction reports it skipped), so the reaction is [`Effect::Idempotent`].

use schemars::JsonSchema;
use serde::Deserialize;

use crate::docker::{self, ContainerAction, ContainerActionReaction, DockerApi, Target};
use crate::{ConfigError, Effect, Reaction, ReactionContext, ReactionType, api};

const KIND: &str = "docker-start-container";

/// Config of a `docker-start-container` reaction.
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
    /// Milliseconds to wait for Docker's answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "start a stopped docker container through the docker engine api";
    const EFFECT: Effect = Effect::Idempotent;

    fn validate(&self) -> Result<(), ConfigError> {
        self.target().map(|_| ())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let api = DockerApi::new(KIND, self.target()?, context.http.clone());
        Ok(Box::new(ContainerActionReaction::new(api, &self.container, ContainerAction::Start)))
    }
}

impl Config {
    fn target(&self) -> Result<Target, ConfigError> {
        let target = Target::parse(&self.endpoint, &self.api_version, self.timeout_ms)?;
        docker::validate_container(&self.container)?;
        Ok(target)
    }
}
