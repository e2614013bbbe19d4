//! Errors of the engine crate.

use std::path::PathBuf;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database failed.
    #[error("embedded store: {context}: {message}")]
    Embedded {
        /// What the store was doing.
        context: &'static str,
        /// The database's error text.
        message: String,
    },
    /// A stored record could not be decoded.
    #[error("stored {what} `{key}` is corrupt: {message}")]
    Corrupt {
        /// Record kind (monitor, reaction, state, event).
        what: &'static str,
        /// The record's key.
        key: String,
        /// The decoder's error text.
        message: String,
    },
    /// The store could not be opened.
    #[error("cannot open store at {path}: {message}")]
    Open {
        /// Where.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A configuration error; the message names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML (or an environment override) did not parse or named an unknown key.
    #[error("invalid config{origin}: {message}")]
    Parse {
        /// ` in FILE` or ` from environment`.
        origin: String,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid config: `{key}` {message}")]
    Invalid {
        /// The dotted key path, e.g. `engine.check_concurrency`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}
