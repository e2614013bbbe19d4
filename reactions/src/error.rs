//! Errors of the reactions crate.

/// An invalid reaction configuration; `field` names the offending field inside `action`.
pub use cloudroutes_engine::plugin::PluginConfigError as ConfigError;

pub use cloudroutes_engine::plugin::from_json;

/// A reaction run that did not work.
#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// The request never got an answer (connect refused, reset, DNS, TLS).
    #[error("{kind}: request failed: {message}")]
    Transport {
        /// Reaction type.
        kind: &'static str,
        /// What the client said.
        message: String,
    },
    /// No answer within the reaction's timeout.
    #[error("{kind}: no answer within {timeout_ms} ms")]
    Timeout {
        /// Reaction type.
        kind: &'static str,
        /// The timeout that ran out.
        timeout_ms: u64,
    },
    /// The target answered with an unexpected status.
    #[error("{kind}: target answered HTTP {status} {body}")]
    Rejected {
        /// Reaction type.
        kind: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// A mail server answered a command with a negative SMTP reply (RFC 5321 section 4.2.1:
    /// 4xx is transient, 5xx permanent), e.g. `535 5.7.8 Authentication credentials invalid`.
    #[error("{kind}: mail server answered {code} {message}")]
    SmtpRejected {
        /// Reaction type.
        kind: &'static str,
        /// The SMTP reply code.
        code: u16,
        /// The reply's text.
        message: String,
    },
    /// The action ran and did not work (an unexpected answer, a command's exit status, a
    /// refused login): trying again will not help.
    #[error("{kind}: {message}")]
    Failed {
        /// Reaction type.
        kind: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl ReactionError {
    /// Returns whether trying again may help: transport failures, timeouts, HTTP 429 and 5xx,
    /// and transient (4xx) SMTP replies.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Rejected { status, .. } => *status == 429 || *status >= 500,
            Self::SmtpRejected { code, .. } => *code < 500,
            Self::Failed { .. } => false,
        }
    }
}
