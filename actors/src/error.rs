//! Errors of the node facade.

use cloudroutes_engine::StoreError;

/// Why a node operation did not happen. [`NodeError::Invalid`] names the field.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No such monitor or reaction.
    #[error("{what} `{id}` not found")]
    NotFound {
        /// `monitor` or `reaction`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A field of the definition is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted field path, e.g. `check.url` or `reactions[0]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The operation conflicts with the current state (e.g. deleting a reaction in use).
    #[error("{0}")]
    Conflict(String),
    /// The store failed; nothing was changed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An actor did not answer in time (the node is overloaded or shutting down).
    #[error("node busy: {0}")]
    Unavailable(String),
}

impl NodeError {
    /// Returns an `Invalid` error for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }
}
