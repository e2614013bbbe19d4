//! The SSH transport of the reaction types that act on a server over SSH
//! (`execute-shell-command`, `linux-manage-services`): one login with a private key, a host
//! key that must match exactly (no trust on first use), an optional bastion reached first
//! (the target session then runs over a `direct-tcpip` channel through it), and one command
//! run under one deadline.
//!
//! The command is sent as the SSH `exec` request: the server hands it to the user's login
//! shell (`$SHELL -c COMMAND`), so shell syntax applies. When the deadline passes before the
//! command ends, the server is asked to send `SIGTERM` to the command's process group and
//! the channel is closed. sshd refuses that signal for root logins (it runs their sessions
//! without a privilege-separated child), and closing a channel alone stops nothing, so a
//! caller that must not leave a command running asks for a [`Terminal::Pseudo`]: closing
//! the channel then hangs up the command's terminal, and the kernel sends it `SIGHUP`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use cloudroutes_engine::egress::Egress;
use cloudroutes_engine::secret::Secret;
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Disconnect, Preferred, Pty, Sig};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

use crate::{ConfigError, ReactionError};

mod hop;
mod output;

use hop::{Hop, fingerprint};
pub use output::{CommandOutcome, Exit, LAST_LINE_CHARS};
use output::{Output, Reading};

/// The fields of an SSH reaction that are write-only: the key, its passphrase, and the
/// bastion (which holds a key of its own).
pub const SECRET_FIELDS: &[&str] = &["private_key", "passphrase", "jump"];
/// Default SSH port.
pub const DEFAULT_PORT: u16 = 22;
/// Default `timeout_ms`: connecting, logging in and running the command.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// How long stopping a timed-out command and saying goodbye may take past the deadline.
const CLEANUP_GRACE: Duration = Duration::from_secs(1);

/// Serde default of `port`.
pub fn default_port() -> u16 {
    DEFAULT_PORT
}

/// Serde default of `timeout_ms`.
pub fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// A bastion ("jump host") to log in to first; the target is then reached through it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JumpConfig {
    /// Host name or IP address of the bastion.
    pub host: String,
    /// SSH port of the bastion, default 22.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// User to log in as on the bastion.
    pub user: String,
    /// OpenSSH private key text for the bastion; default: the target's `private_key` and
    /// `passphrase`.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub private_key: Option<Secret>,
    /// Passphrase of the bastion's own `private_key`, if it is encrypted.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("writeOnly" = true))]
    pub passphrase: Option<Secret>,
    /// The bastion's public host key, e.g. `ssh-ed25519 AAAA…`: the connection is refused
    /// unless the bastion presents exactly this key.
    pub host_key: String,
}

/// One SSH login as a config gives it, before validation.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// Host name or IP address.
    pub host: &'a str,
    /// SSH port.
    pub port: u16,
    /// User to log in as.
    pub user: &'a str,
    /// OpenSSH private key text.
    pub private_key: &'a Secret,
    /// Its passphrase, if encrypted.
    pub passphrase: Option<&'a Secret>,
    /// The server's public host key in OpenSSH form.
    pub host_key: &'a str,
}

/// Whether a command runs on a pseudo-terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// A pseudo-terminal (`TERM=dumb`, 500 columns, no echo), like `ssh -t`: standard output
    /// and error arrive merged, and a command still running at the deadline is hung up
    /// (`SIGHUP` to its session), root logins included.
    Pseudo,
    /// Pipes: standard error stays apart and a program that would prompt fails at once; a
    /// command still running at the deadline is sent `SIGTERM`, which sshd does not deliver
    /// for root logins.
    Pipes,
}

/// Terminal width: wide enough that programs do not shorten their lines.
const TERMINAL_COLUMNS: u32 = 500;
const TERMINAL_ROWS: u32 = 50;

/// The handshake's failures: russh's, and our host key check refusing the server.
#[derive(Debug)]
enum SshError {
    Ssh(russh::Error),
    HostKeyMismatch { presented: String },
}

impl From<russh::Error> for SshError {
    fn from(error: russh::Error) -> Self {
        Self::Ssh(error)
    }
}

/// Accepts exactly one host key.
struct KnownHostKey(PublicKey);

impl client::Handler for KnownHostKey {
    type Error = SshError;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match presented {
            PublicKeyOrCertificate::PublicKey { key, .. }
                if key.key_data() == self.0.key_data() =>
            {
                Ok(true)
            }
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                Err(SshError::HostKeyMismatch { presented: fingerprint(key) })
            }
            PublicKeyOrCertificate::Certificate(_) => {
                Err(SshError::HostKeyMismatch { presented: "a host certificate".into() })
            }
        }
    }
}

/// An open connection: the target session, and the bastion's it runs through, if any.
struct Connection {
    target: Handle<KnownHostKey>,
    jump: Option<Handle<KnownHostKey>>,
}

impl Connection {
    async fn close(self) {
        let bye = |handle: Handle<KnownHostKey>| async move {
            let _ = timeout(CLEANUP_GRACE, handle.disconnect(Disconnect::ByApplication, "", "en"))
                .await;
        };
        bye(self.target).await;
        if let Some(jump) = self.jump {
            bye(jump).await;
        }
    }
}

/// A validated SSH target (and bastion) with the deadline of one run.
#[derive(Debug)]
pub struct SshTransport {
    egress: Arc<Egress>,
    target: Hop,
    jump: Option<Hop>,
    timeout: Duration,
    timeout_ms: u64,
}

impl SshTransport {
    /// Validates the target login, the bastion and the timeout, parsing every key.
    ///
    /// # Errors
    /// Names the first invalid field (`host`, `jump.host_key`, `timeout_ms`, …); messages
    /// never quote a key.
    pub fn new(
        target: &Login<'_>,
        jump: Option<&JumpConfig>,
        timeout_ms: u64,
    ) -> Result<Self, ConfigError> {
        let target_hop = Hop::parse("", target)?;
        let jump = match jump {
            None => None,
            Some(jump) => {
                let (private_key, passphrase) = match &jump.private_key {
                    Some(key) => (key, jump.passphrase.as_ref()),
                    None => (target.private_key, target.passphrase),
                };
                let login = Login {
                    host: &jump.host,
                    port: jump.port,
                    user: &jump.user,
                    private_key,
                    passphrase,
                    host_key: &jump.host_key,
                };
                Some(Hop::parse("jump.", &login)?)
            }
        };
        let timeout = crate::api::validate_timeout_ms(timeout_ms)?;
        let egress = Arc::new(Egress::default());
        Ok(Self { egress, target: target_hop, jump, timeout, timeout_ms })
    }

    /// Returns the transport connecting only where `egress` allows (the built-in policy until
    /// then): the node's own connection is judged, the target or the bastion; a target behind
    /// a bastion is the bastion's to reach.
    #[must_use]
    pub fn with_egress(mut self, egress: &Arc<Egress>) -> Self {
        self.egress = Arc::clone(egress);
        self
    }

    /// Connects (through the bastion, if any), logs in, runs `command` and reads it to its
    /// end, all within `timeout_ms`.
    ///
    /// # Errors
    /// [`ReactionError::Timeout`] past the deadline (the command is told to stop, see
    /// [`Terminal`]);
    /// [`ReactionError::Transport`] when a server cannot be reached or the handshake breaks;
    /// [`ReactionError::Failed`] when a host key does not match, a login is refused, or the
    /// server refuses the command. The command's own exit status is the caller's to judge.
    pub async fn run(
        &self,
        kind: &'static str,
        command: &str,
        terminal: Terminal,
    ) -> Result<CommandOutcome, ReactionError> {
        let deadline = Instant::now() + self.timeout;
        let timed_out = || ReactionError::Timeout { kind, timeout_ms: self.timeout_ms };
        let connection =
            timeout_at(deadline, self.connect(kind)).await.map_err(|_| timed_out())??;
        let result = self.execute(kind, &connection.target, command, terminal, deadline).await;
        connection.close().await;
        result?.ok_or_else(timed_out)
    }

    async fn connect(&self, kind: &'static str) -> Result<Connection, ReactionError> {
        let Some(jump) = &self.jump else {
            let tcp = tcp_connect(&self.egress, kind, &self.target).await?;
            let target = open_session(kind, &self.target, tcp).await?;
            return Ok(Connection { target, jump: None });
        };
        let tcp = tcp_connect(&self.egress, kind, jump).await?;
        let bastion = open_session(kind, jump, tcp).await?;
        let port = u32::from(self.target.port);
        let tunnel = match bastion
            .channel_open_direct_tcpip(&self.target.host, port, "127.0.0.1", 0)
            .await
        {
            Ok(tunnel) => tunnel,
            Err(error) => {
                let message = format!("could not forward to {}: {error}", self.target);
                let _ =
                    timeout(CLEANUP_GRACE, bastion.disconnect(Disconnect::ByApplication, "", "en"))
                        .await;
                return Err(jump.transport(kind, message));
            }
        };
        match open_session(kind, &self.target, tunnel.into_stream()).await {
            Ok(target) => Ok(Connection { target, jump: Some(bastion) }),
            Err(error) => {
                let _ =
                    timeout(CLEANUP_GRACE, bastion.disconnect(Disconnect::ByApplication, "", "en"))
                        .await;
                Err(error)
            }
        }
    }

    /// Runs `command` on an open session; `None` when the deadline passed first (the command
    /// was then told to stop).
    async fn execute(
        &self,
        kind: &'static str,
        session: &Handle<KnownHostKey>,
        command: &str,
        terminal: Terminal,
        deadline: Instant,
    ) -> Result<Option<CommandOutcome>, ReactionError> {
        let target = &self.target;
        let mut channel = match timeout_at(deadline, session.channel_open_session()).await {
            Err(_) => return Ok(None),
            Ok(Err(error)) => {
                return Err(target.transport(kind, format!("could not open a session: {error}")));
            }
            Ok(Ok(channel)) => channel,
        };
        let start = async {
            if terminal == Terminal::Pseudo {
                // No reply asked: a server that refuses terminals runs the command on pipes.
                let modes = [(Pty::ECHO, 0), (Pty::ONLCR, 0)];
                let (columns, rows) = (TERMINAL_COLUMNS, TERMINAL_ROWS);
                channel.request_pty(false, "dumb", columns, rows, 0, 0, &modes).await?;
            }
            channel.exec(true, command).await?;
            // Nothing to read on standard input: a command that reads it ends instead of waiting.
            channel.eof().await
        };
        match timeout_at(deadline, start).await {
            Err(_) => return Ok(None),
            Ok(Err(error)) => {
                return Err(target.transport(kind, format!("could not send the command: {error}")));
            }
            Ok(Ok(())) => {}
        }
        let mut output = Output::new();
        match output.read_to_end(&mut channel, deadline).await {
            Ok(Reading::Ended) => Ok(Some(output.outcome())),
            Ok(Reading::DeadlinePassed) => {
                // sshd signals the command's process group (not for root logins); closing
                // hangs up its terminal, if it has one. Closing alone stops nothing else.
                let _ = timeout(CLEANUP_GRACE, channel.signal(Sig::TERM)).await;
                let _ = timeout(CLEANUP_GRACE, channel.close()).await;
                Ok(None)
            }
            Err(refused) => Err(target.failed(kind, refused)),
        }
    }
}

async fn tcp_connect(
    egress: &Egress,
    kind: &'static str,
    hop: &Hop,
) -> Result<TcpStream, ReactionError> {
    let refused = |error| hop.transport(kind, format!("connect failed: {error}"));
    let stream = crate::egress::connect_tcp(egress, kind, &hop.host, hop.port, refused).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Runs the SSH handshake on `stream` (checking the host key) and logs in with the key.
async fn open_session<S>(
    kind: &'static str,
    hop: &Hop,
    stream: S,
) -> Result<Handle<KnownHostKey>, ReactionError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let preferred =
        Preferred { key: Cow::Owned(hop.host_key_algorithms()), ..Preferred::default() };
    let config = Arc::new(client::Config { preferred, ..client::Config::default() });
    let handler = KnownHostKey(hop.host_key.clone());
    let mut session = client::connect_stream(config, stream, handler)
        .await
        .map_err(|error| hop.handshake_error(kind, error))?;
    let ssh_failed =
        |error: russh::Error| hop.transport(kind, format!("ssh login failed: {error}"));
    // RSA keys sign with the hash the server asks for (rsa-sha2-512/256, else ssh-rsa).
    let hash = if hop.key.algorithm().is_rsa() {
        session.best_supported_rsa_hash().await.map_err(ssh_failed)?.flatten()
    } else {
        None
    };
    let key = PrivateKeyWithHashAlg::new(hop.key.clone(), hash);
    let answer = session.authenticate_publickey(hop.user.clone(), key).await.map_err(ssh_failed)?;
    if !answer.success() {
        let message = format!(
            "login refused: user `{}` with key {} (is its public key in the server's \
             authorized_keys?)",
            hop.user,
            fingerprint(hop.key.public_key())
        );
        let _ =
            timeout(CLEANUP_GRACE, session.disconnect(Disconnect::ByApplication, "", "en")).await;
        return Err(hop.failed(kind, message));
    }
    Ok(session)
}

/// Returns `text` in single quotes for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
