//! `execute-shell-command`: log in to a server over SSH and run one command.
//!
//! The command is sent as the SSH `exec` request, so the remote user's login shell interprets
//! it (`$SHELL -c COMMAND`): pipes, `&&`, variables and quoting work as in that shell, and
//! whatever the config's author writes runs as that user. It runs on a pseudo-terminal
//! (`TERM=dumb`, like `ssh -t`), so that a command still running at the deadline is hung up
//! rather than left behind; its standard output and error therefore arrive merged, and a
//! program that prompts (`sudo` without `-n`) waits until the timeout. Success is an exit
//! status listed in `expect_exit`. Running a command twice is not known to be harmless, so
//! the reaction is [`Effect::Destructive`] and never retried. See [`crate::ssh`] for the
//! transport.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::ssh::{self, Exit, JumpConfig, Login, SshTransport, Terminal};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
};

const KIND: &str = "execute-shell-command";
/// Longest accepted command, in bytes.
const MAX_COMMAND_BYTES: usize = 16 * 1024;

fn default_expect_exit() -> Vec<u8> {
    vec![0]
}

/// Config of an `execute-shell-command` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address of the server.
    pub host: String,
    /// SSH port, default 22.
    #[serde(default = "ssh::default_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// User to log in as.
    pub user: String,
    /// OpenSSH private key text (`-----BEGIN OPENSSH PRIVATE KEY-----` …; ed25519, ecdsa or
    /// rsa) whose public key is in the user's authorized_keys.
    #[schemars(with = "String", extend("writeOnly" = true))]
    pub private_key: Secret,
    /// Passphrase of `private_key`, if it is encrypted.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub passphrase: Option<Secret>,
    /// The server's public host key, e.g. `ssh-ed25519 AAAA…` (a line of its
    /// /etc/ssh/ssh_host_*_key.pub): the connection is refused unless the server presents
    /// exactly this key.
    pub host_key: String,
    /// A bastion to log in to first; the server is then reached through it (`direct-tcpip`).
    /// Write-only as a whole, as it holds a key.
    #[serde(default)]
    #[schemars(extend("writeOnly" = true))]
    pub jump: Option<JumpConfig>,
    /// The command, interpreted by the remote user's login shell on a pseudo-terminal (e.g.
    /// `systemctl reload nginx && echo reloaded`); the detail quotes its last output line.
    #[schemars(length(min = 1, max = 16384))]
    pub command: String,
    /// Exit statuses that count as success, default `[0]`.
    #[serde(default = "default_expect_exit")]
    #[schemars(length(min = 1))]
    pub expect_exit: Vec<u8>,
    /// Milliseconds for connecting, logging in and running the command, 1 to 120000 (default
    /// 30000); past it the command is hung up (SIGHUP) and the reaction fails.
    #[serde(default = "ssh::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "run a shell command on a server over ssh, checking its exit status";
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = ssh::SECRET_FIELDS;

    /// Checks every field, parsing both keys and host keys.
    ///
    /// # Errors
    /// Names the first invalid field; messages never quote a key.
    fn validate(&self) -> Result<(), ConfigError> {
        self.transport()?;
        self.checked_command()?;
        self.checked_expect_exit()?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let mut reaction = ExecuteShellCommandReaction::new(self)?;
        reaction.transport = reaction.transport.with_egress(context.http.egress());
        Ok(Box::new(reaction))
    }
}

impl Config {
    fn transport(&self) -> Result<SshTransport, ConfigError> {
        let login = Login {
            host: &self.host,
            port: self.port,
            user: &self.user,
            private_key: &self.private_key,
            passphrase: self.passphrase.as_ref(),
            host_key: &self.host_key,
        };
        SshTransport::new(&login, self.jump.as_ref(), self.timeout_ms)
    }

    fn checked_command(&self) -> Result<&str, ConfigError> {
        if self.command.trim().is_empty() {
            return Err(ConfigError::invalid("command", "must not be empty"));
        }
        if self.command.len() > MAX_COMMAND_BYTES {
            let message = format!("must be at most {MAX_COMMAND_BYTES} bytes");
            return Err(ConfigError::invalid("command", message));
        }
        if self.command.contains('\0') {
            return Err(ConfigError::invalid("command", "must not contain a nul character"));
        }
        Ok(&self.command)
    }

    fn checked_expect_exit(&self) -> Result<&[u8], ConfigError> {
        if self.expect_exit.is_empty() {
            let message = "must list at least one exit status (0 to 255)";
            return Err(ConfigError::invalid("expect_exit", message));
        }
        Ok(&self.expect_exit)
    }
}

/// A runnable `execute-shell-command` reaction.
#[derive(Debug)]
pub struct ExecuteShellCommandReaction {
    transport: SshTransport,
    command: String,
    expect_exit: Vec<u8>,
}

impl ExecuteShellCommandReaction {
    /// Validates `config` and builds the reaction.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            transport: config.transport()?,
            command: config.checked_command()?.to_owned(),
            expect_exit: config.checked_expect_exit()?.to_vec(),
        })
    }
}

#[async_trait::async_trait]
impl Reaction for ExecuteShellCommandReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Destructive
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        let outcome = self.transport.run(KIND, &self.command, Terminal::Pseudo).await?;
        let expected = matches!(outcome.exit, Exit::Status(status)
            if self.expect_exit.iter().any(|allowed| u32::from(*allowed) == status));
        if expected {
            return Ok(Fired::Executed(outcome.summary(false)));
        }
        let allowed: Vec<String> = self.expect_exit.iter().map(u8::to_string).collect();
        let message =
            format!("{} (expected exit status {})", outcome.summary(true), allowed.join(" or "));
        Err(ReactionError::Failed { kind: KIND, message })
    }
}

#[cfg(test)]
#[path = "execute_shell_command_tests.rs"]
mod tests;
