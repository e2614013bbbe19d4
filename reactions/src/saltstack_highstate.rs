//! `saltstack-highstate`: apply the highstate (`state.highstate`) on the minions a target
//! matches, through salt-api, bringing them back to their declared state.
//!
//! A minion fails when a state fails (the error names the failed state ids and the first
//! one's comment) or when salt answers errors instead of results (a render error, another
//! state run in progress, no top file). Applying the declared state again is harmless:
//! [`Effect::Idempotent`]. A highstate often takes long, so `timeout_ms` defaults to 60000.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::saltstack::{
    Connection, SaltApi, TargetType, default_eauth, minion_error, minion_names, state_failure,
    state_run,
};
use crate::{ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError};

const KIND: &str = "saltstack-highstate";
/// The salt function run.
const FUN: &str = "state.highstate";

fn default_highstate_timeout_ms() -> u64 {
    60_000
}

/// Config of a `saltstack-highstate` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Your salt-api (rest_cherrypy) URL, e.g. `https://salt.internal:8000`.
    #[schemars(url)]
    pub api_base_url: String,
    /// The salt-api user (an external-auth user allowed to run `state.highstate`).
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    /// Its password; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub password: Secret,
    /// The external-auth backend: `pam` (default), `ldap`, `auto`, …
    #[serde(default = "default_eauth")]
    #[schemars(length(min = 1, max = 64))]
    pub eauth: String,
    /// Which minions apply their highstate, e.g. `web*`; read as `tgt_type` says.
    #[schemars(length(min = 1, max = 1024))]
    pub target: String,
    /// How `target` matches minions: glob (default), list, grain, pcre or compound.
    #[serde(default)]
    pub tgt_type: TargetType,
    /// Milliseconds for the login and the state run together, 1 to 120000 (default 60000).
    #[serde(default = "default_highstate_timeout_ms")]
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
}

impl crate::ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "apply the highstate on salt minions through salt-api; fails naming failed states";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = crate::saltstack::SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.connection().validate().map(drop)
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let salt = SaltApi::new(KIND, self.connection(), context)?;
        Ok(Box::new(SaltHighstateReaction { salt }))
    }
}

/// A runnable `saltstack-highstate` reaction.
#[derive(Debug)]
pub struct SaltHighstateReaction {
    salt: SaltApi,
}

#[async_trait::async_trait]
impl Reaction for SaltHighstateReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let returns = self.salt.run(FUN, Vec::new()).await?;
        let judge =
            |value: &serde_json::Value| minion_error(value).or_else(|| state_failure(value));
        if let Some(error) = self.salt.failures(FUN, &returns, judge) {
            return Err(error);
        }
        let (states, changed) = returns
            .values()
            .filter_map(|value| state_run(value).ok())
            .fold((0, 0), |(states, changed), run| (states + run.states, changed + run.changed));
        Ok(Fired::Executed(format!(
            "{FUN} on {}: {states} states, {changed} changed",
            minion_names(&returns)
        )))
    }
}

#[cfg(test)]
#[path = "saltstack_highstate_tests.rs"]
mod tests;
