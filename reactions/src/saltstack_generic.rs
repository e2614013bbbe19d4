//! `saltstack-generic`: run any salt execution function (`module.function` with positional
//! arguments) on the minions a target matches, through salt-api.
//!
//! A minion fails when it answers one of salt's error strings (a missing function, an
//! exception, bad arguments), a state run (`state.apply`, `state.sls`, …) with a failed state,
//! or a `cmd.run_all`-shaped return with a non-zero `retcode`. Any function may do harm when
//! run twice: [`Effect::Destructive`].

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::api::default_timeout_ms;
use crate::saltstack::{
    Connection, SaltApi, TargetType, default_eauth, minion_error, minion_names, retcode_failure,
    runs_states, state_failure,
};
use crate::{ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError};

const KIND: &str = "saltstack-generic";
/// Most positional arguments accepted.
const MAX_ARGS: usize = 32;

/// Config of a `saltstack-generic` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Your salt-api (rest_cherrypy) URL, e.g. `https://salt.internal:8000`.
    #[schemars(url)]
    pub api_base_url: String,
    /// The salt-api user (an external-auth user allowed to run `fun`).
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    /// Its password; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub password: Secret,
    /// The external-auth backend: `pam` (default), `ldap`, `auto`, …
    #[serde(default = "default_eauth")]
    #[schemars(length(min = 1, max = 64))]
    pub eauth: String,
    /// Which minions run the function, e.g. `web*`; read as `tgt_type` says.
    #[schemars(length(min = 1, max = 1024))]
    pub target: String,
    /// How `target` matches minions: glob (default), list, grain, pcre or compound.
    #[serde(default)]
    pub tgt_type: TargetType,
    /// The execution function, `module.function`, e.g. `service.reload` or `state.sls`.
    #[schemars(length(min = 3, max = 128))]
    pub fun: String,
    /// Its positional arguments (salt's `arg`), e.g. `["nginx"]`; at most 32.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub args: Vec<Value>,
    /// Milliseconds for the login and the function together, 1 to 120000.
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

    fn check_call(&self) -> Result<(), ConfigError> {
        let name = |part: &str| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let well_formed = self.fun.len() <= 128
            && self
                .fun
                .split_once('.')
                .is_some_and(|(module, function)| name(module) && name(function));
        if !well_formed {
            let message =
                "must be `module.function` (letters, digits and `_`), e.g. `service.reload`";
            return Err(ConfigError::invalid("fun", message));
        }
        if self.args.len() > MAX_ARGS {
            return Err(ConfigError::invalid(
                "args",
                format!("must hold at most {MAX_ARGS} values"),
            ));
        }
        Ok(())
    }
}

impl crate::ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "run any salt execution function with arguments on salt minions through salt-api";
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = crate::saltstack::SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.connection().validate()?;
        self.check_call()
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        self.check_call()?;
        let salt = SaltApi::new(KIND, self.connection(), context)?;
        Ok(Box::new(SaltGenericReaction { salt, fun: self.fun.clone(), args: self.args.clone() }))
    }
}

/// A runnable `saltstack-generic` reaction.
#[derive(Debug)]
pub struct SaltGenericReaction {
    salt: SaltApi,
    fun: String,
    args: Vec<Value>,
}

#[async_trait::async_trait]
impl Reaction for SaltGenericReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Destructive
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let returns = self.salt.run(&self.fun, self.args.clone()).await?;
        let states = runs_states(&self.fun);
        let judge = |value: &Value| {
            minion_error(value)
                .or_else(|| if states { state_failure(value) } else { retcode_failure(value) })
        };
        if let Some(error) = self.salt.failures(&self.fun, &returns, judge) {
            return Err(error);
        }
        Ok(Fired::Executed(format!("{} ran on {}", self.fun, minion_names(&returns))))
    }
}

#[cfg(test)]
#[path = "saltstack_generic_tests.rs"]
mod tests;
