//! The container actions (`restart`, `start`, `kill`) the three container types share: one
//! `POST /containers/{id}/{action}` and its answer.

use crate::docker::DockerApi;
use crate::{Effect, Fired, Incident, Reaction, ReactionError};

/// What a container reaction asks Docker to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerAction {
    /// `POST /containers/{id}/restart?t=N`: stop (SIGTERM, then SIGKILL after `N` seconds),
    /// then start.
    Restart {
        /// Seconds Docker waits for the container to stop before killing it.
        stop_timeout_secs: u32,
    },
    /// `POST /containers/{id}/start`; `304` means it already runs.
    Start,
    /// `POST /containers/{id}/kill?signal=SIG`.
    Kill {
        /// The signal, as Docker takes it (`SIGKILL`, `HUP`, `9`).
        signal: String,
    },
}

impl ContainerAction {
    fn verb(&self) -> &'static str {
        match self {
            Self::Restart { .. } => "restart",
            Self::Start => "start",
            Self::Kill { .. } => "kill",
        }
    }

    fn effect(&self) -> Effect {
        match self {
            Self::Start => Effect::Idempotent,
            Self::Restart { .. } | Self::Kill { .. } => Effect::Destructive,
        }
    }

    /// Returns the query parameter the action takes, if any.
    fn query(&self) -> Option<(&'static str, String)> {
        match self {
            Self::Restart { stop_timeout_secs } => Some(("t", stop_timeout_secs.to_string())),
            Self::Start => None,
            Self::Kill { signal } => Some(("signal", signal.clone())),
        }
    }

    fn executed(&self, status: u16, container: &str) -> String {
        match self {
            Self::Restart { stop_timeout_secs } => format!(
                "HTTP {status}, container {container} restarted (stop timeout {stop_timeout_secs} s)"
            ),
            Self::Start => format!("HTTP {status}, container {container} started"),
            Self::Kill { signal } => {
                format!("HTTP {status}, {signal} sent to container {container}")
            }
        }
    }
}

/// A runnable `docker-restart-container`, `docker-start-container` or `docker-kill-container`.
#[derive(Debug)]
pub struct ContainerActionReaction {
    api: DockerApi,
    container: String,
    action: ContainerAction,
}

impl ContainerActionReaction {
    /// Returns the reaction doing `action` to `container` (already validated) through `api`.
    pub fn new(api: DockerApi, container: &str, action: ContainerAction) -> Self {
        Self { api, container: container.to_owned(), action }
    }
}

#[async_trait::async_trait]
impl Reaction for ContainerActionReaction {
    fn kind(&self) -> &'static str {
        self.api.kind()
    }

    fn effect(&self) -> Effect {
        self.action.effect()
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let deadline = self.api.deadline();
        let path = format!("containers/{}/{}", self.container, self.action.verb());
        let query = self.action.query();
        let query: Vec<(&str, &str)> =
            query.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let response = self.api.post(&path, &query, Vec::new(), deadline).await?;
        match response.status {
            304 if self.action == ContainerAction::Start => Ok(Fired::Skipped(format!(
                "container {} is already running (HTTP 304)",
                self.container
            ))),
            status @ 200..=299 => {
                Ok(Fired::Executed(self.action.executed(status, &self.container)))
            }
            _ => Err(response.rejection(self.kind(), deadline).await),
        }
    }
}
