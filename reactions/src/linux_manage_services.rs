//! `linux-manage-services`: start, stop or restart a service on a server over SSH, with
//! `systemctl <action> -- <service>` (or `service <service> <action>` on SysV systems).
//!
//! Starting a running service does nothing, so `start` is [`Effect::Idempotent`] and may be
//! retried; `stop` and `restart` interrupt the service each time and are
//! [`Effect::Destructive`]. The service name is checked against a strict alphabet and quoted,
//! so it can never reach the remote shell as syntax. See [`crate::ssh`] for the transport.

use cloudroutes_engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::ssh::{self, Exit, JumpConfig, Login, SshTransport, Terminal, shell_quote};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
};

const KIND: &str = "linux-manage-services";
/// Longest accepted unit name (systemd's limit).
const MAX_SERVICE_CHARS: usize = 256;

fn default_manager() -> String {
    "systemctl".into()
}

/// What to do with the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Start it; harmless when it already runs.
    Start,
    /// Stop it.
    Stop,
    /// Restart it (stop, then start).
    Restart,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

/// Config of a `linux-manage-services` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address of the server.
    pub host: String,
    /// SSH port, default 22.
    #[serde(default = "ssh::default_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// User to log in as (root, or one allowed to manage the service without a password).
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
    /// The service (unit) name, e.g. `nginx` or `getty@tty1.service`: letters, digits and
    /// `@._-`, not starting with `-` or `.`.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9@_][A-Za-z0-9@._-]*$"))]
    pub service: String,
    /// What to do: `start`, `stop` or `restart`.
    pub action: Action,
    /// The program that manages services: `systemctl` (default, runs `systemctl ACTION --
    /// SERVICE`), `service` (runs `service SERVICE ACTION`), or the absolute path of a
    /// systemctl-compatible program.
    #[serde(default = "default_manager")]
    pub manager: String,
    /// Milliseconds for connecting, logging in and running the command, 1 to 120000 (default
    /// 30000); past it the reaction fails (a job systemd already queued goes on).
    #[serde(default = "ssh::default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "start, stop or restart a service over ssh with systemctl or service";
    /// Listed as destructive: only `start` is harmless to repeat (see [`Config::effect`]).
    const EFFECT: Effect = Effect::Destructive;
    const SECRET_FIELDS: &'static [&'static str] = ssh::SECRET_FIELDS;

    /// Checks every field, parsing both keys and host keys.
    ///
    /// # Errors
    /// Names the first invalid field; messages never quote a key.
    fn validate(&self) -> Result<(), ConfigError> {
        self.transport()?;
        self.command_line()?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        let mut reaction = LinuxManageServicesReaction::new(self)?;
        reaction.transport = reaction.transport.with_egress(context.http.egress());
        Ok(Box::new(reaction))
    }

    /// `start` is idempotent; `stop` and `restart` are destructive.
    fn effect(&self) -> Effect {
        effect_of(self.action)
    }
}

fn effect_of(action: Action) -> Effect {
    match action {
        Action::Start => Effect::Idempotent,
        Action::Stop | Action::Restart => Effect::Destructive,
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

    /// Returns the command sent to the server, every word but the action quoted.
    fn command_line(&self) -> Result<String, ConfigError> {
        let service = checked_service(&self.service)?;
        let action = self.action.as_str();
        match self.manager.as_str() {
            "systemctl" => Ok(format!("systemctl {action} -- {}", shell_quote(service))),
            "service" => Ok(format!("service {} {action}", shell_quote(service))),
            path if is_plain_absolute_path(path) => {
                Ok(format!("{} {action} -- {}", shell_quote(path), shell_quote(service)))
            }
            _ => Err(ConfigError::invalid(
                "manager",
                "must be `systemctl`, `service` or an absolute path (letters, digits, `/._@+-`, \
                 no `..`)",
            )),
        }
    }
}

fn checked_service(service: &str) -> Result<&str, ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-');
    let valid = !service.is_empty()
        && service.len() <= MAX_SERVICE_CHARS
        && service.chars().all(allowed)
        && !service.starts_with(['-', '.']);
    if !valid {
        let message = "must be a service name of letters, digits and `@._-` (at most 256, not \
                       starting with `-` or `.`)";
        return Err(ConfigError::invalid("service", message));
    }
    Ok(service)
}

fn is_plain_absolute_path(path: &str) -> bool {
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '@' | '+' | '-');
    path.len() > 1
        && path.len() <= 4096
        && path.starts_with('/')
        && !path.ends_with('/')
        && path.chars().all(allowed)
        && !path.split('/').any(|part| part == "..")
}

/// A runnable `linux-manage-services` reaction.
#[derive(Debug)]
pub struct LinuxManageServicesReaction {
    transport: SshTransport,
    command: String,
    action: Action,
}

impl LinuxManageServicesReaction {
    /// Validates `config` and builds the reaction.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            transport: config.transport()?,
            command: config.command_line()?,
            action: config.action,
        })
    }
}

#[async_trait::async_trait]
impl Reaction for LinuxManageServicesReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        effect_of(self.action)
    }

    async fn fire(&self, _incident: &Incident) -> Result<Fired, ReactionError> {
        // Pipes, not a terminal: systemctl then fails at once where it would ask for a password,
        // and a job it queued goes on in systemd even if the client is stopped at the deadline.
        let outcome = self.transport.run(KIND, &self.command, Terminal::Pipes).await?;
        if outcome.exit == Exit::Status(0) {
            return Ok(Fired::Executed(format!("`{}`: {}", self.command, outcome.summary(false))));
        }
        let message = format!("`{}` failed: {}", self.command, outcome.summary(true));
        Err(ReactionError::Failed { kind: KIND, message })
    }
}

#[cfg(test)]
#[path = "linux_manage_services_tests.rs"]
mod tests;
