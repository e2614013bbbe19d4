//! Where the node's secrets key comes from: `secrets.key` (env `CLOUDROUTES_SECRETS_KEY`),
//! `secrets.key_file`, or, on the embedded store only, `DATA_DIR/secrets.key` generated at
//! first start. Key files must be private to their owner (mode 0600 or stricter).

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::{SealError, SealKey};
use crate::config::SecretsSection;

/// The file name of the generated key inside `node.data_dir`.
pub const GENERATED_KEY_FILE: &str = "secrets.key";

/// Where a key came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `secrets.key` in the config file or `CLOUDROUTES_SECRETS_KEY`.
    Config,
    /// `secrets.key_file`.
    File(PathBuf),
    /// The key generated in the data directory.
    Generated(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config => f.write_str("secrets.key (CLOUDROUTES_SECRETS_KEY)"),
            Self::File(path) => write!(f, "secrets.key_file {}", path.display()),
            Self::Generated(path) => write!(f, "the generated key file {}", path.display()),
        }
    }
}

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file holding a credential can be read or written by group or others.
    #[error(
        "refusing {path}: its mode is {mode:04o}, so group or others can read or write it; \
         run `chmod 600 {path}`",
        path = .path.display()
    )]
    Insecure {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file could not be read or written.
    #[error("{what} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key text is not a key.
    #[error("{source_name}: {error}")]
    Bad {
        /// Where it came from.
        source_name: KeySource,
        /// What is wrong with it.
        error: SealError,
    },
    /// A shared (Redis) store without a configured key.
    #[error(
        "the Redis store is shared by every node of the cluster, and every node needs the same \
         secrets key to read the secrets the others sealed: set secrets.key \
         (CLOUDROUTES_SECRETS_KEY) or secrets.key_file to the same key on every node \
         (make one with `head -c 32 /dev/urandom | base64`)"
    )]
    MissingForCluster,
}

/// Reads a file that holds a credential, refusing one that group or others can read or write.
/// Returns its content with surrounding blanks trimmed.
///
/// # Errors
/// [`KeyError::Insecure`] naming the path, the mode and the `chmod 600` fix;
/// [`KeyError::Io`] when it cannot be read.
pub fn read_private_file(path: &Path) -> Result<String, KeyError> {
    let io = |what, source| KeyError::Io { what, path: path.to_owned(), source };
    let metadata = std::fs::metadata(path).map_err(|e| io("cannot read", e))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Insecure { path: path.to_owned(), mode });
    }
    let text = std::fs::read_to_string(path).map_err(|e| io("cannot read", e))?;
    Ok(text.trim().to_owned())
}

/// Returns the node's secrets key and where it came from: `secrets.key`, else
/// `secrets.key_file`, else (embedded store only) `data_dir/secrets.key`, generated with mode
/// 0600 when missing.
///
/// # Errors
/// A key that is not base64 of 32 bytes, an unreadable or non-private key file, or no key
/// configured for a shared store ([`KeyError::MissingForCluster`]).
pub fn load(
    section: &SecretsSection,
    data_dir: &Path,
    embedded: bool,
) -> Result<(SealKey, KeySource), KeyError> {
    let parse = |text: &str, source: KeySource| match SealKey::from_base64(text) {
        Ok(key) => Ok((key, source)),
        Err(error) => Err(KeyError::Bad { source_name: source, error }),
    };
    if let Some(key) = &section.key {
        return parse(key.expose(), KeySource::Config);
    }
    if let Some(path) = &section.key_file {
        return parse(&read_private_file(path)?, KeySource::File(path.clone()));
    }
    if !embedded {
        return Err(KeyError::MissingForCluster);
    }
    let path = data_dir.join(GENERATED_KEY_FILE);
    if path.exists() {
        return parse(&read_private_file(&path)?, KeySource::Generated(path));
    }
    let (key, text) = SealKey::generate();
    let io = |what, source| KeyError::Io { what, path: path.clone(), source };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io("cannot create", e))?;
    file.write_all(format!("{text}\n").as_bytes()).map_err(|e| io("cannot write", e))?;
    file.sync_all().map_err(|e| io("cannot sync", e))?;
    Ok((key, KeySource::Generated(path)))
}
