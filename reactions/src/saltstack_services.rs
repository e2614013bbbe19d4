//! `saltstack-services`: restart, start or stop a service on the minions a target matches,
//! through salt-api (`service.restart`, `service.start`, `service.stop` with the service name).
//!
//! Each minion answers `true` when the service manager did it; `false` or one of salt's error
//! strings fails the reaction, naming the minions. Restarting or stopping again does harm
//! ([`Effect::Destructive`]); starting a started service does not ([`Effect::Idempotent`]), so
//! `action` decides the effect.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::api::default_timeout_ms;
use crate::saltstack::{Connection, SaltApi, TargetType, default_eauth, excerpt, minion_names};
use crate::{ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError};

const KIND: &str = "saltstack-services";

/// What to do with the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceAction {
    /// `service.restart`.
    Restart,
    /// `service.start`.
    Start,
    /// `service.stop`.
    Stop,
}

impl ServiceAction {
    /// Returns the salt function that does it.
    pub fn fun(self) -> &'static str {
        match self {
            Self::Restart => "service.restart",
            Self::Start => "service.start",
            Self::Stop => "service.stop",
        }
    }

    /// Returns whether doing it twice is harmless.
    pub fn effect(self) -> Effect {
        match self {
            Self::Start => Effect::Idempotent,
            Self::Restart | Self::Stop => Effect::Destructive,
        }
    }
}

/// Config of a `saltstack-services` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Your salt-api (rest_cherrypy) URL, e.g. `https://salt.internal:8000`.
    #[schemars(url)]
    pub api_base_url: String,
    /// The salt-api user (an external-auth user allowed to run `service.*`).
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    /// Its password; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub password: Secret,
    /// The external-auth backend: `pam` (default), `ldap`, `auto`, …
    #[serde(default = "default_eauth")]
    #[schemars(length(min = 1, max = 64))]
    pub eauth: String,
    /// Which minions act on the service, e.g. `web*`; read as `tgt_type` says.
    #[schemars(length(min = 1, max = 1024))]
    pub target: String,
    /// How `target` matches minions: glob (default), list, grain, pcre or compound.
    #[serde(default)]
    pub tgt_type: TargetType,
    /// What to do: restart or stop (destructive), or start (idempotent).
    pub action: ServiceAction,
    /// The service (unit) name, e.g. `nginx` or `php8.2-fpm`: letters, digits and `@._:+-`.
    #[schemars(length(min = 1, max = 256))]
    pub service: String,
    /// Milliseconds for the login and the service action together, 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl Config {
    fn connection(&self) -> Connection<'_> {
        Connection {
            api_base_url: &self.api_base_url,
            username: &self.username,
            password: &self.password,
            eauth: &self.eauth,
            target: &self.target,
            tgt_type: self.tgt_type,
            timeout_ms: self.timeout_ms,
        }
    }

    fn check_service(&self) -> Result<(), ConfigError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "@._:+-".contains(c);
        let name = &self.service;
        if name.is_empty()
            || name.len() > 256
            || !name.chars().all(allowed)
            || name.starts_with('-')
        {
            let message = "must be a service name of 1 to 256 letters, digits and `@._:+-`, not starting with `-`";
            return Err(ConfigError::invalid("service", message));
        }
        Ok(())
    }
}

impl crate::ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "restart, start or stop a service on salt minions through salt-api";
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = crate::saltstack::SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.connection().validate()?;
        self.check_service()
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        self.check_service()?;
        let salt = SaltApi::new(KIND, self.connection(), context)?;
        Ok(Box::new(SaltServicesReaction {
            salt,
            action: self.action,
            service: self.service.clone(),
        }))
    }

    fn effect(&self) -> Effect {
        self.action.effect()
    }
}

/// A runnable `saltstack-services` reaction.
#[derive(Debug)]
pub struct SaltServicesReaction {
    salt: SaltApi,
    action: ServiceAction,
    service: String,
}

#[async_trait::async_trait]
impl Reaction for SaltServicesReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        self.action.effect()
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let fun = self.action.fun();
        let returns = self.salt.run(fun, vec![self.service.clone().into()]).await?;
        let judge = |value: &Value| match value {
            Value::Bool(true) => None,
            Value::Bool(false) => Some(format!("answered false for {}", self.service)),
            other => Some(excerpt(other)),
        };
        if let Some(error) = self.salt.failures(fun, &returns, judge) {
            return Err(error);
        }
        Ok(Fired::Executed(format!("{fun} {} on {}", self.service, minion_names(&returns))))
    }
}

#[cfg(test)]
#[path = "saltstack_services_tests.rs"]
mod tests;
