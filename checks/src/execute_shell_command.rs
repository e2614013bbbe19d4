//! `execute-shell-command`: runs a program on this node; healthy when it exits with an expected
//! code (default 0) within `timeout_ms` and, with `expect_output`, prints that text.
//!
//! The original product ran the command over SSH on a remote host; this one runs it on the node
//! itself (remote execution is a reaction's job). Whoever can create a monitor chooses what
//! runs, so the node decides what may: `[checks.exec]` in `cluster.toml` ([`ExecPolicy`]). Off
//! unless `checks.exec.enabled`; only the programs on `checks.exec.allow`; no `timeout_ms` above
//! `checks.exec.max_timeout_ms`. `build` refuses anything else, naming `command`.
//!
//! The program runs:
//! - without a shell: `command` gets `args` as they are (no `sh -c`, no globbing, no `$VAR`);
//! - in `/`, stdin from `/dev/null`, with an environment of only
//!   `PATH=/usr/sbin:/usr/bin:/sbin:/bin` and `LANG=C`;
//! - as `checks.exec.user` when set (its primary group, no supplementary groups);
//! - in a process group of its own.
//!
//! stdout and stderr are read while it runs: the first 64 KiB of stdout and the last 64 KiB of
//! stderr are kept, the rest is read and dropped, so a chatty program never blocks on a full pipe.
//! A failure reason quotes the last line of stderr.
//!
//! When `timeout_ms` passes, the program and everything in its process group are killed with
//! SIGKILL. Unsafe code is forbidden and no dependency wraps kill(2), so the group is signalled by
//! running `/bin/kill -KILL -- -PGID`. The program is not reaped before that, so its pid (the
//! group's id) cannot be reused by another process in between. Processes it leaves behind that
//! still hold its stdout or stderr 200 ms after it exits are killed the same way. A process
//! that leaves the group (`setsid`) escapes both.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::config::{ExecSection, ExecUser};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tracing::warn;

use crate::support::{MAX_TIMEOUT_MS, default_timeout_ms, validate_timeout_ms};
use crate::{Check, CheckContext, CheckType, ConfigError};

/// The whole environment a program gets, besides `LANG=C`.
pub const FIXED_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// How much of stdout (the start) and of stderr (the end) is kept.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// Most arguments a check may pass.
const MAX_ARGS: usize = 64;
/// Longest `command`, argument or `expect_output`, in bytes.
const MAX_TEXT_BYTES: usize = 4096;
/// Longest stderr line a reason quotes, in characters.
const QUOTED_STDERR_CHARS: usize = 200;
/// Longest `expect_output` a reason quotes, in characters.
const QUOTED_OUTPUT_CHARS: usize = 80;
/// How long stdout and stderr may stay open after the program exited before whatever holds
/// them is killed.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);
/// How long killing a process group, reaping the program, or reading the rest of its output
/// after a kill may take (each). Three of them fit in the second monitors wait past a timeout.
const CLEANUP_WAIT: Duration = Duration::from_millis(300);
/// Signals process groups (see the module docs for why a program and not kill(2)).
const KILL_PROGRAM: &str = "/bin/kill";

fn default_expect_exit() -> Vec<i32> {
    vec![0]
}

/// What this node lets `execute-shell-command` run, from `[checks.exec]` in `cluster.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPolicy {
    /// Whether monitors may run programs on this node at all.
    pub enabled: bool,
    /// Absolute paths of the programs they may run.
    pub allow: Vec<PathBuf>,
    /// Longest `timeout_ms` a check may have here.
    pub max_timeout_ms: u64,
    /// User the programs run as; `None` runs them as the node's own user.
    pub user: Option<ExecUser>,
}

impl ExecPolicy {
    /// Returns the policy of a node that runs no programs (the default).
    pub fn disabled() -> Self {
        Self { enabled: false, allow: Vec::new(), max_timeout_ms: MAX_TIMEOUT_MS, user: None }
    }

    /// Builds the policy from a node's `[checks.exec]`, resolving `user` to its ids now.
    ///
    /// # Errors
    /// Fails when `user` is set but cannot be found in `/etc/passwd`.
    pub fn from_config(section: &ExecSection) -> Result<Self, cloudroutes_engine::ConfigError> {
        Ok(Self {
            enabled: section.enabled,
            allow: section.allow.clone(),
            max_timeout_ms: section.max_timeout_ms,
            user: section.resolve_user()?,
        })
    }
}

impl Default for ExecPolicy {
    fn default() -> Self {
        Self::disabled()
    }
}

/// Config of an `execute-shell-command` check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Absolute path of the program to run, e.g. `/usr/lib/nagios/plugins/check_disk`; it must
    /// be on this node's `checks.exec.allow` list. No shell is involved.
    #[schemars(length(min = 1, max = 4096))]
    pub command: String,
    /// Arguments, passed to the program as they are: at most 64, each at most 4096 bytes.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(max = 4096)))]
    pub args: Vec<String>,
    /// Exit codes that count as healthy, each 0 to 255. Default: `[0]`.
    #[serde(default = "default_expect_exit")]
    #[schemars(length(min = 1, max = 256), inner(range(min = 0, max = 255)))]
    pub expect_exit: Vec<i32>,
    /// Text stdout must also contain (case-sensitive, searched in its first 64 KiB).
    #[serde(default)]
    #[schemars(length(min = 1, max = 4096))]
    pub expect_output: Option<String>,
    /// Milliseconds the program may run before it and its process group are killed, 1 to
    /// 120000, and at most this node's `checks.exec.max_timeout_ms`.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl CheckType for Config {
    const NAME: &'static str = "execute-shell-command";
    const DESCRIPTION: &'static str = "run an allowed program on the node (no shell); healthy \
                                       when it exits with an expected code and prints the text";

    /// Checks the shape of every field; whether this node runs the program is `build`'s call.
    ///
    /// # Errors
    /// Returns an error naming the first invalid field (`command`, `args`, `args[i]`,
    /// `expect_exit`, `expect_exit[i]`, `expect_output`, `timeout_ms`).
    fn validate(&self) -> Result<(), ConfigError> {
        validate_text("command", &self.command)?;
        if !is_plain_absolute(Path::new(&self.command)) {
            return Err(ConfigError::invalid("command", "must be an absolute path without `..`"));
        }
        if self.args.len() > MAX_ARGS {
            return Err(ConfigError::invalid("args", format!("must be at most {MAX_ARGS}")));
        }
        for (index, arg) in self.args.iter().enumerate() {
            validate_text(&format!("args[{index}]"), arg)?;
        }
        if self.expect_exit.is_empty() || self.expect_exit.len() > 256 {
            let message = "must list 1 to 256 exit codes";
            return Err(ConfigError::invalid("expect_exit", message));
        }
        if let Some(index) = self.expect_exit.iter().position(|code| !(0..=255).contains(code)) {
            let message = format!("{} is not an exit code (0 to 255)", self.expect_exit[index]);
            return Err(ConfigError::invalid(format!("expect_exit[{index}]"), message));
        }
        if let Some(text) = &self.expect_output {
            if text.is_empty() {
                return Err(ConfigError::invalid("expect_output", "must not be empty"));
            }
            validate_text("expect_output", text)?;
        }
        validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    /// Builds the check when this node's policy lets it run `command` for `timeout_ms`.
    fn build(&self, context: &CheckContext) -> Result<Option<Box<dyn Check>>, ConfigError> {
        Ok(Some(Box::new(ExecuteShellCommandCheck::new(self, &context.exec)?)))
    }
}

/// Accepts text of at most [`MAX_TEXT_BYTES`] without NUL bytes (the OS cannot pass those).
fn validate_text(field: &str, text: &str) -> Result<(), ConfigError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ConfigError::invalid(field, format!("must be at most {MAX_TEXT_BYTES} bytes")));
    }
    if text.contains('\0') {
        return Err(ConfigError::invalid(field, "must not contain a nul byte"));
    }
    Ok(())
}

/// Returns whether `path` is absolute and has no `..` component, as allow-list entries are.
fn is_plain_absolute(path: &Path) -> bool {
    path.is_absolute() && !path.components().any(|part| part == Component::ParentDir)
}

/// A runnable `execute-shell-command` check.
#[derive(Debug)]
pub struct ExecuteShellCommandCheck {
    command: PathBuf,
    args: Vec<String>,
    expect_exit: Vec<i32>,
    expect_output: Option<String>,
    user: Option<ExecUser>,
    timeout: Duration,
    timeout_ms: u64,
}

/// Output kept from one stream, and how much was written in all.
#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    total: u64,
}

/// How one run ended.
#[derive(Debug)]
enum Execution {
    /// The program could not be started (missing, not executable, user switch refused).
    NotStarted(io::Error),
    /// Waiting for it failed.
    WaitFailed(io::Error),
    /// It did not exit within `timeout_ms`; its process group was killed.
    NoExit,
    /// It exited (or a signal ended it).
    Exited { status: ExitStatus, stdout: Captured, stderr: Captured, elapsed: Duration },
}

impl ExecuteShellCommandCheck {
    /// Validates `config` and builds the check when `policy` lets this node run it.
    ///
    /// # Errors
    /// Returns the first invalid field, as [`Config::validate`] does; `command` when running
    /// programs is disabled here or `command` is not on the allow list; `timeout_ms` above the
    /// node's ceiling.
    pub fn new(config: &Config, policy: &ExecPolicy) -> Result<Self, ConfigError> {
        config.validate()?;
        if !policy.enabled {
            let message = "running programs is disabled on this node: set checks.exec.enabled = \
                           true and list the program in checks.exec.allow";
            return Err(ConfigError::invalid("command", message));
        }
        let command = PathBuf::from(&config.command);
        if !policy.allow.contains(&command) {
            let message =
                format!("`{}` is not on this node's checks.exec.allow list", command.display());
            return Err(ConfigError::invalid("command", message));
        }
        if config.timeout_ms > policy.max_timeout_ms {
            let message = format!(
                "must be at most {} on this node (checks.exec.max_timeout_ms)",
                policy.max_timeout_ms
            );
            return Err(ConfigError::invalid("timeout_ms", message));
        }
        Ok(Self {
            command,
            args: config.args.clone(),
            expect_exit: config.expect_exit.clone(),
            expect_output: config.expect_output.clone(),
            user: policy.user.clone(),
            timeout: validate_timeout_ms(config.timeout_ms)?,
            timeout_ms: config.timeout_ms,
        })
    }

    /// Returns the command to spawn: no shell, a fixed environment, its own process group.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.command);
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", FIXED_PATH)
            .env("LANG", "C")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(user) = &self.user {
            // std drops the supplementary groups too when it switches the user.
            command.uid(user.uid).gid(user.gid);
        }
        command
    }

    /// Runs the program once, reading its output while it runs, and kills its process group
    /// when it overstays.
    async fn execute(&self) -> Execution {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut child = match self.command().spawn() {
            Ok(child) => child,
            Err(error) => return Execution::NotStarted(error),
        };
        // The program leads its own group: the group id is its pid.
        let group = child.id();
        let (mut stdout, mut stderr) = (Captured::default(), Captured::default());
        let (stdout_pipe, stderr_pipe) = (child.stdout.take(), child.stderr.take());
        let status = {
            let mut reading = pin!(async {
                tokio::join!(
                    read_head(stdout_pipe, &mut stdout),
                    read_tail(stderr_pipe, &mut stderr)
                )
            });
            let mut output_closed = false;
            let mut expired = pin!(tokio::time::sleep_until(deadline));
            let waited = loop {
                tokio::select! {
                    waited = child.wait() => break Some(waited),
                    _ = &mut reading, if !output_closed => output_closed = true,
                    () = &mut expired => break None,
                }
            };
            let Some(waited) = waited else {
                kill_overstayed(&mut child, group).await;
                return Execution::NoExit;
            };
            if !output_closed {
                let grace = deadline.min(tokio::time::Instant::now() + OUTPUT_GRACE);
                if tokio::time::timeout_at(grace, &mut reading).await.is_err() {
                    // Something the program started still holds its output open.
                    if let Some(group) = group {
                        kill_process_group(group).await;
                    }
                    let _ = tokio::time::timeout(CLEANUP_WAIT, &mut reading).await;
                }
            }
            waited
        };
        match status {
            Ok(status) => Execution::Exited { status, stdout, stderr, elapsed: started.elapsed() },
            Err(error) => Execution::WaitFailed(error),
        }
    }

    /// Returns the outcome of one run.
    fn judge(&self, execution: &Execution) -> CheckOutcome {
        let program = self.command.display();
        let (status, stdout, stderr, elapsed) = match execution {
            Execution::NotStarted(error) => {
                return CheckOutcome::Unknown {
                    reason: format!("could not start {program}: {error}"),
                };
            }
            Execution::WaitFailed(error) => {
                return CheckOutcome::Unknown {
                    reason: format!("could not wait for {program}: {error}"),
                };
            }
            Execution::NoExit => {
                return CheckOutcome::Failed {
                    reason: format!("no exit within {} ms", self.timeout_ms),
                };
            }
            Execution::Exited { status, stdout, stderr, elapsed } => {
                (status, stdout, stderr, elapsed)
            }
        };
        let Some(code) = status.code() else {
            use std::os::unix::process::ExitStatusExt;
            let signal =
                status.signal().map_or("an unknown signal".into(), |s| format!("signal {s}"));
            let note = stderr_note(stderr);
            return CheckOutcome::Failed {
                reason: format!("{program} was killed by {signal}{note}"),
            };
        };
        if !self.expect_exit.contains(&code) {
            let expected = match self.expect_exit.as_slice() {
                [only] => only.to_string(),
                codes => {
                    let codes: Vec<String> = codes.iter().map(i32::to_string).collect();
                    format!("one of {}", codes.join(", "))
                }
            };
            let note = stderr_note(stderr);
            let reason = format!("{program} exited with {code}, expected {expected}{note}");
            return CheckOutcome::Failed { reason };
        }
        if let Some(text) = &self.expect_output
            && !contains(&stdout.bytes, text.as_bytes())
        {
            let mut quoted: String = text.chars().take(QUOTED_OUTPUT_CHARS).collect();
            if quoted.len() < text.len() {
                quoted.push('…');
            }
            let searched = if stdout.total > stdout.bytes.len() as u64 {
                format!("the first {} bytes of its output", stdout.bytes.len())
            } else {
                format!("its output ({} bytes)", stdout.bytes.len())
            };
            let reason =
                format!("{program} exited with {code} but {quoted:?} is not in {searched}");
            return CheckOutcome::Failed { reason };
        }
        let elapsed_ms = elapsed.as_millis();
        CheckOutcome::Healthy { reason: format!("{program} exited with {code} in {elapsed_ms} ms") }
    }
}

#[async_trait::async_trait]
impl Check for ExecuteShellCommandCheck {
    fn kind(&self) -> &'static str {
        "execute-shell-command"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn run(&self) -> CheckOutcome {
        self.judge(&self.execute().await)
    }
}

/// Kills a program that did not exit in time: its process group first, while the unreaped
/// program still pins the group id, then the program itself, and reaps it.
async fn kill_overstayed(child: &mut Child, group: Option<u32>) {
    if let Some(group) = group {
        kill_process_group(group).await;
    }
    let _ = child.start_kill();
    let _ = tokio::time::timeout(CLEANUP_WAIT, child.wait()).await;
}

/// Sends SIGKILL to every process in group `group` by running `/bin/kill -KILL -- -<group>`.
async fn kill_process_group(group: u32) {
    let mut kill = Command::new(KILL_PROGRAM);
    kill.args(["-KILL", "--", &format!("-{group}")])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(CLEANUP_WAIT, kill.status()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => warn!(group, %status, "kill found no process group to signal"),
        Ok(Err(error)) => warn!(group, %error, "could not run {KILL_PROGRAM}"),
        Err(_) => warn!(group, "{KILL_PROGRAM} did not finish in time"),
    }
}

/// Reads `pipe` to its end, keeping the first [`MAX_OUTPUT_BYTES`] in `captured`.
async fn read_head(pipe: Option<impl AsyncRead + Unpin>, captured: &mut Captured) {
    read_all(pipe, captured, |kept, chunk| {
        let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    })
    .await;
}

/// Reads `pipe` to its end, keeping the last [`MAX_OUTPUT_BYTES`] in `captured`.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>, captured: &mut Captured) {
    read_all(pipe, captured, |kept, chunk| {
        kept.extend_from_slice(chunk);
        let excess = kept.len().saturating_sub(MAX_OUTPUT_BYTES);
        kept.drain(..excess);
    })
    .await;
}

/// Reads `pipe` until it closes (or fails), handing each chunk to `keep`.
async fn read_all(
    pipe: Option<impl AsyncRead + Unpin>,
    captured: &mut Captured,
    mut keep: impl FnMut(&mut Vec<u8>, &[u8]),
) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let mut buffer = vec![0u8; 8 * 1024];
    while let Ok(read @ 1..) = pipe.read(&mut buffer).await {
        captured.total += read as u64;
        keep(&mut captured.bytes, &buffer[..read]);
    }
}

/// Returns ` (stderr: <last line>)` quoting the last non-blank stderr line (control characters
/// dropped, cut to 200 characters), or nothing.
fn stderr_note(stderr: &Captured) -> String {
    let text = String::from_utf8_lossy(&stderr.bytes);
    let printable = |line: &str| line.chars().filter(|c| !c.is_control()).collect::<String>();
    let Some(line) = text.lines().map(printable).rfind(|line| !line.trim().is_empty()) else {
        return String::new();
    };
    let line = line.trim();
    let mut quoted: String = line.chars().take(QUOTED_STDERR_CHARS).collect();
    if quoted.len() < line.len() {
        quoted.push('…');
    }
    format!(" (stderr: {quoted})")
}

/// Returns whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
#[path = "execute_shell_command_tests.rs"]
mod tests;
