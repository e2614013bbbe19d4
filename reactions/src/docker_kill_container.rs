//! `docker-kill-container`: send a signal (by default SIGKILL) to a container through the
//! Docker Engine API (`POST /v1.43/containers/{id}/kill?signal=SIG`). Killing ends the service,
//! so the reaction is [`Effect::Destructive`].

use schemars::JsonSchema;
use serde::Deserialize;

use crate::docker::{self, ContainerAction, ContainerActionReaction, DockerApi, Target};
use crate::{ConfigError, Effect, Reaction, ReactionContext, ReactionType, api};

const KIND: &str = "docker-kill-container";
/// Longest signal name (`SIGRTMAX-14` is 11).
const MAX_SIGNAL_LEN: usize = 32;
/// Largest signal number on Linux.
const MAX_SIGNAL_NUMBER: u32 = 64;

fn default_signal() -> String {
    "SIGKILL".into()
}

/// Config of a `docker-kill-container` reaction.
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
    /// The signal to send, by name or number: `SIGKILL` (the default), `SIGTERM`, `HUP`, `9`.
    #[serde(default = "default_signal")]
    #[schemars(length(min = 1, max = 32))]
    pub signal: String,
    /// Milliseconds to wait for Docker's answer, 1 to 120000.
    #[serde(default = "api::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "send a signal (SIGKILL by default) to a docker container through the docker engine api";
    const EFFECT: Effect = Effect::Destructive;

    fn validate(&self) -> Result<(), ConfigError> {
        self.target().map(|_| ())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let api = DockerApi::new(KIND, self.target()?, context.http.clone());
        let action = ContainerAction::Kill { signal: self.signal.clone() };
        Ok(Box::new(ContainerActionReaction::new(api, &self.container, action)))
    }
}

impl Config {
    fn target(&self) -> Result<Target, ConfigError> {
        let target = Target::parse(&self.endpoint, &self.api_version, self.timeout_ms)?;
        docker::validate_container(&self.container)?;
        validate_signal(&self.signal)?;
        Ok(target)
    }
}

/// Accepts what Docker parses as a signal: a number 1 to 64, or a name of letters, digits, `+`
/// and `-` starting with a letter (`SIGKILL`, `kill`, `SIGRTMIN+3`).
fn validate_signal(signal: &str) -> Result<(), ConfigError> {
    let valid = if signal.bytes().all(|b| b.is_ascii_digit()) {
        signal.parse::<u32>().is_ok_and(|number| (1..=MAX_SIGNAL_NUMBER).contains(&number))
    } else {
        signal.len() <= MAX_SIGNAL_LEN
            && signal.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && signal.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-'))
    };
    if !valid {
        return Err(ConfigError::invalid(
            "signal",
            "must be a signal name such as SIGKILL or SIGTERM, or a number from 1 to 64",
        ));
    }
    Ok(())
}
