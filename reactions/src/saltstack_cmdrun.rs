//! `saltstack-cmdrun`: run a shell command on the minions a target matches, through salt-api.
//!
//! It calls `cmd.run_all` rather than `cmd.run`: both run the command the same way, but
//! `cmd.run_all` answers `{"retcode", "stdout", "stderr"}` per minion, so a command that exits
//! non-zero fails the reaction (naming the minions, their exit codes and stderr) instead of
//! passing as some text. Running a command twice may do harm: [`Effect::Destructive`].

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::api::default_timeout_ms;
use crate::saltstack::{
    Connection, SaltApi, TargetType, check_text, default_eauth, minion_error, minion_names,
    retcode_failure,
};
use crate::{ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError};

const KIND: &str = "saltstack-cmdrun";
/// The salt function run.
const FUN: &str = "cmd.run_all";

/// Config of a `saltstack-cmdrun` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Your salt-api (rest_cherrypy) URL, e.g. `https://salt.internal:8000`.
    #[schemars(url)]
    pub api_base_url: String,
    /// The salt-api user (an external-auth user allowed to run `cmd.run_all`).
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    /// Its password; write-only.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub password: Secret,
    /// The external-auth backend: `pam` (default), `ldap`, `auto`, …
    #[serde(default = "default_eauth")]
    #[schemars(length(min = 1, max = 64))]
    pub eauth: String,
    /// Which minions run the command, e.g. `web*`; read as `tgt_type` says.
    #[schemars(length(min = 1, max = 1024))]
    pub target: String,
    /// How `target` matches minions: glob (default), list, grain, pcre or compound.
    #[serde(default)]
    pub tgt_type: TargetType,
    /// The shell command, e.g. `systemctl restart nginx`.
    #[schemars(length(min = 1, max = 4096))]
    pub command: String,
    /// Milliseconds for the login and the command together, 1 to 120000.
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

    fn check_command(&self) -> Result<(), ConfigError> {
        check_text("command", &self.command, 4096)
    }
}

impl crate::ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str = "run a shell command on salt minions through salt-api (cmd.run_all); fails on a non-zero exit";
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = crate::saltstack::SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.connection().validate()?;
        self.check_command()
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        self.check_command()?;
        let salt = SaltApi::new(KIND, self.connection(), context)?;
        Ok(Box::new(SaltCmdrunReaction { salt, command: self.command.clone() }))
    }
}

/// A runnable `saltstack-cmdrun` reaction.
#[derive(Debug)]
pub struct SaltCmdrunReaction {
    salt: SaltApi,
    command: String,
}

#[async_trait::async_trait]
impl Reaction for SaltCmdrunReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Destructive
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let returns = self.salt.run(FUN, vec![self.command.clone().into()]).await?;
        let judge = |value: &serde_json::Value| {
            if let Some(error) = minion_error(value) {
                return Some(error);
            }
            if value.get("retcode").is_none() {
                return Some(format!("unexpected return {}", crate::saltstack::excerpt(value)));
            }
            retcode_failure(value)
        };
        if let Some(error) = self.salt.failures(FUN, &returns, judge) {
            return Err(error);
        }
        Ok(Fired::Executed(format!("{FUN} exited 0 on {}", minion_names(&returns))))
    }
}

#[cfg(test)]
#[path = "saltstack_cmdrun_tests.rs"]
mod tests;
