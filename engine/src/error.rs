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
    /// The Redis server failed or could not be reached.
    #[error("redis store: {context}: {message}")]
    Redis {
        /// What the store was doing.
        context: &'static str,
        /// The client's error text.
        message: String,
    },
    /// A write was refused because this node does not hold the partition's lease at the
    /// epoch it wrote with (it was fenced off; another node owns the partition now).
    #[error("write refused: this node no longer holds the lease of partition {partition}")]
    Fenced {
        /// The partition.
        partition: u32,
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
