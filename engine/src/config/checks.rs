//! `[checks]`: what check types that reach into the node itself may do here.
//!
//! `[checks.exec]` governs `execute-shell-command`, which runs a program on this node: off
//! unless `enabled`, only the programs on `allow`, at most `max_timeout_ms`, optionally as a
//! lower-privileged `user`.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::NodeConfig;
use crate::error::ConfigError;

/// Where user names are resolved; NSS sources (LDAP, systemd-userdb) are not consulted.
const PASSWD_FILE: &str = "/etc/passwd";

/// The longest `timeout_ms` any check accepts, so the ceiling can be no higher.
const MAX_EXEC_TIMEOUT_MS: u64 = 120_000;

/// `[checks]`: node-side limits of check types that act on this node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksSection {
    /// `[checks.exec]`: local program runs by `execute-shell-command`.
    #[serde(default)]
    pub exec: ExecSection,
}

/// `[checks.exec]`: whether `execute-shell-command` monitors may run programs on this node,
/// which programs, for how long, and as whom.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSection {
    /// Lets `execute-shell-command` monitors run programs on this node. Off by default.
    #[serde(default)]
    pub enabled: bool,
    /// Absolute paths of the programs monitors may run; any other program is refused.
    #[serde(default)]
    pub allow: Vec<PathBuf>,
    /// Longest `timeout_ms` a monitor may give a program run on this node.
    #[serde(default = "default_max_timeout_ms")]
    pub max_timeout_ms: u64,
    /// User (a name in `/etc/passwd`) the programs run as; unset runs them as the node's user.
    #[serde(default)]
    pub user: Option<String>,
}

/// A user from `/etc/passwd` that programs run as: its primary group, no supplementary ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// The name as configured.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

fn default_max_timeout_ms() -> u64 {
    30_000
}

impl ExecSection {
    /// Resolves `user` to its ids by reading `/etc/passwd`; `None` when no user is set.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for `checks.exec.user` when the file cannot be read or does not
    /// list the user.
    pub fn resolve_user(&self) -> Result<Option<ExecUser>, ConfigError> {
        let Some(name) = &self.user else {
            return Ok(None);
        };
        let passwd = std::fs::read_to_string(PASSWD_FILE).map_err(|error| {
            let message = format!("cannot read {PASSWD_FILE} to look up `{name}`: {error}");
            ConfigError::Invalid { key: "checks.exec.user".into(), message }
        })?;
        match find_user(&passwd, name) {
            Some(user) => Ok(Some(user)),
            None => Err(ConfigError::Invalid {
                key: "checks.exec.user".into(),
                message: format!("no user `{name}` in {PASSWD_FILE}"),
            }),
        }
    }
}

/// Returns the entry for `name` from the text of a passwd file (`name:x:uid:gid:...`).
fn find_user(passwd: &str, name: &str) -> Option<ExecUser> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(ExecUser { name: name.to_owned(), uid, gid })
    })
}

impl NodeConfig {
    /// Checks `[checks.exec]`: absolute program paths, a non-empty allow list when enabled,
    /// the timeout ceiling's range, and that `user` exists.
    pub(super) fn validate_checks(&self) -> Result<(), ConfigError> {
        let exec = &self.checks.exec;
        let invalid =
            |key: &str, message: String| Err(ConfigError::Invalid { key: key.into(), message });
        for (index, program) in exec.allow.iter().enumerate() {
            if !is_plain_absolute(program) {
                let message = format!(
                    "entry {index} (`{}`) must be an absolute path without `..`",
                    program.display()
                );
                return invalid("checks.exec.allow", message);
            }
        }
        if exec.enabled && exec.allow.is_empty() {
            let message = "must list at least one program when checks.exec.enabled is true: \
                           monitors may run only the programs listed here"
                .into();
            return invalid("checks.exec.allow", message);
        }
        if !(1..=MAX_EXEC_TIMEOUT_MS).contains(&exec.max_timeout_ms) {
            let message =
                format!("must be between 1 and {MAX_EXEC_TIMEOUT_MS}, got {}", exec.max_timeout_ms);
            return invalid("checks.exec.max_timeout_ms", message);
        }
        if exec.user.as_deref().is_some_and(str::is_empty) {
            return invalid("checks.exec.user", "must not be empty when set".into());
        }
        exec.resolve_user().map(|_| ())
    }
}

/// Returns whether `path` is absolute and has no `..` component (so one program has one
/// spelling on the allow list).
fn is_plain_absolute(path: &Path) -> bool {
    path.is_absolute() && !path.components().any(|part| part == Component::ParentDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_by_exact_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                      broken:x:zero:0::/:/bin/sh\n";
        let nobody = find_user(passwd, "nobody").unwrap();
        assert_eq!((nobody.uid, nobody.gid), (65_534, 65_534));
        assert_eq!(find_user(passwd, "root").map(|user| user.uid), Some(0));
        assert_eq!(find_user(passwd, "nob"), None, "no prefix match");
        assert_eq!(find_user(passwd, "broken"), None, "a malformed entry resolves to nothing");
    }

    #[test]
    fn allowed_programs_are_absolute_without_parent_components() {
        assert!(is_plain_absolute(Path::new("/usr/bin/printf")));
        assert!(!is_plain_absolute(Path::new("usr/bin/printf")));
        assert!(!is_plain_absolute(Path::new("/usr/bin/../../tmp/x")));
    }
}
