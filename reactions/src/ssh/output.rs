//! Reading a command's channel: how it ended, and the last line of each output stream.

use std::fmt;
use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg, Sig};
use tokio::time::{Instant, timeout_at};

/// How many characters of the command's last output line a detail or error quotes.
pub const LAST_LINE_CHARS: usize = 200;
/// How much of each output stream is kept to find its last line.
const TAIL_BYTES: usize = 4096;
/// How long output is still read after the exit status arrived (a daemon the command started
/// may hold the output open for good).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Status(u32),
    /// A signal killed it (`TERM`, `KILL`, …).
    Signal(String),
    /// The channel closed without saying.
    Unknown,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "exit status {status}"),
            Self::Signal(signal) => write!(f, "killed by signal {signal}"),
            Self::Unknown => f.write_str("no exit status"),
        }
    }
}

/// What a remote command did: how it ended and the last line of each output stream.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    /// How it ended.
    pub exit: Exit,
    /// The last non-empty line of its standard output, at most [`LAST_LINE_CHARS`] characters.
    pub stdout_line: Option<String>,
    /// The last non-empty line of its standard error, at most [`LAST_LINE_CHARS`] characters.
    pub stderr_line: Option<String>,
}

impl CommandOutcome {
    /// Returns `exit status 0` followed by the last output line (standard error first when
    /// `prefer_stderr`, as a failure explains itself there).
    pub fn summary(&self, prefer_stderr: bool) -> String {
        let (first, second) = if prefer_stderr {
            (&self.stderr_line, &self.stdout_line)
        } else {
            (&self.stdout_line, &self.stderr_line)
        };
        match first.as_ref().or(second.as_ref()) {
            Some(line) => format!("{}: {line}", self.exit),
            None => format!("{}, no output", self.exit),
        }
    }
}

/// The end of one output stream.
#[derive(Debug, Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
        if self.0.len() > 2 * TAIL_BYTES {
            let cut = self.0.len() - TAIL_BYTES;
            self.0.drain(..cut);
        }
    }

    fn last_line(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.0);
        let line = text.lines().map(str::trim).rfind(|line| !line.is_empty())?;
        let printable = line.chars().map(|c| if c.is_control() { ' ' } else { c });
        Some(printable.take(LAST_LINE_CHARS).collect())
    }
}

/// What reading a command's channel came to.
pub(super) enum Reading {
    /// The channel closed, or the exit status came and the output was drained.
    Ended,
    /// The deadline passed before the exit status came.
    DeadlinePassed,
}

/// What has come from a command's channel so far.
#[derive(Debug)]
pub(super) struct Output {
    exit: Exit,
    stdout: Tail,
    stderr: Tail,
}

impl Output {
    pub(super) fn new() -> Self {
        Self { exit: Exit::Unknown, stdout: Tail::default(), stderr: Tail::default() }
    }

    /// Reads the channel until it closes (or shortly after the exit status, or the
    /// deadline), keeping the end of each stream; `Err` when the server refused the command.
    pub(super) async fn read_to_end(
        &mut self,
        channel: &mut Channel<Msg>,
        deadline: Instant,
    ) -> Result<Reading, String> {
        let mut until = deadline;
        loop {
            let Ok(message) = timeout_at(until, channel.wait()).await else {
                return Ok(match self.exit {
                    Exit::Unknown => Reading::DeadlinePassed,
                    _ => Reading::Ended,
                });
            };
            match message {
                None | Some(ChannelMsg::Close) => return Ok(Reading::Ended),
                Some(ChannelMsg::Failure) => {
                    return Err("the server refused to run the command".into());
                }
                Some(ChannelMsg::Data { data }) => self.stdout.push(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => self.stderr.push(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.exit = Exit::Status(exit_status);
                    until = until.min(Instant::now() + DRAIN_AFTER_EXIT);
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    self.exit = Exit::Signal(signal_text(signal_name));
                    until = until.min(Instant::now() + DRAIN_AFTER_EXIT);
                }
                Some(_) => {}
            }
        }
    }

    pub(super) fn outcome(self) -> CommandOutcome {
        CommandOutcome {
            exit: self.exit,
            stdout_line: self.stdout.last_line(),
            stderr_line: self.stderr.last_line(),
        }
    }
}

/// Returns a signal's name as sshd reports it (`TERM`, `KILL`, …).
fn signal_text(signal: Sig) -> String {
    match signal {
        Sig::Custom(name) => name,
        other => format!("{other:?}"),
    }
}
