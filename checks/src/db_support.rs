//! What the database checks (`redis`, `postgres`, `mysql`) share: host and name validation,
//! write-only passwords, and keeping those passwords out of every reason.

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::secret::Secret;

use crate::ConfigError;

/// Longest accepted host name (RFC 1035's limit for a DNS name).
const MAX_HOST_LEN: usize = 253;
/// Longest accepted user or database name.
const MAX_NAME_LEN: usize = 255;
/// What the API shows instead of a write-only value; never a real password.
const REDACTED: &str = "***";

/// Accepts a host name or IP address (`db.internal`, `10.0.0.5`, `::1`): no path, no spaces.
pub(crate) fn validate_host(field: &str, host: &str) -> Result<(), ConfigError> {
    if host.is_empty() {
        return Err(ConfigError::invalid(field, "must not be empty"));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(ConfigError::invalid(field, format!("must be at most {MAX_HOST_LEN} bytes")));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(ConfigError::invalid(field, "must be a host name or ip address"));
    }
    Ok(())
}

/// Accepts a user or database name: 1 to 255 bytes, no control characters.
pub(crate) fn validate_name(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::invalid(field, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ConfigError::invalid(field, format!("must be at most {MAX_NAME_LEN} bytes")));
    }
    if name.chars().any(char::is_control) {
        return Err(ConfigError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Refuses the `"***"` placeholder the API shows for a write-only password: writing it back
/// would set a password that is surely wrong.
pub(crate) fn validate_password(field: &str, password: &Secret) -> Result<(), ConfigError> {
    if password.expose() == REDACTED {
        return Err(ConfigError::invalid(
            field,
            "is the placeholder \"***\" shown for write-only fields, not a password",
        ));
    }
    Ok(())
}

/// Returns `host:port`, the IPv6 address in brackets, as reasons name the target.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Returns `outcome` with every occurrence of `password` in its reason replaced by `***`: a
/// server or driver message that quotes what it was sent must not leak the password.
/// Runs a login-and-probe within `timeout` (the failed outcome names `timeout_ms` when it runs
/// out) and cuts `password` out of the outcome's reason.
pub(crate) async fn probe_within(
    timeout: std::time::Duration,
    timeout_ms: u64,
    password: Option<&str>,
    probe: impl Future<Output = CheckOutcome>,
) -> CheckOutcome {
    let outcome = match tokio::time::timeout(timeout, probe).await {
        Ok(outcome) => outcome,
        Err(_) => crate::support::no_answer_within(timeout_ms),
    };
    without_password(outcome, password)
}

pub(crate) fn without_password(outcome: CheckOutcome, password: Option<&str>) -> CheckOutcome {
    let Some(password) = password.filter(|p| !p.is_empty()) else { return outcome };
    let hide = |reason: String| reason.replace(password, REDACTED);
    match outcome {
        CheckOutcome::Healthy { reason } => CheckOutcome::Healthy { reason: hide(reason) },
        CheckOutcome::Failed { reason } => CheckOutcome::Failed { reason: hide(reason) },
        CheckOutcome::Unknown { reason } => CheckOutcome::Unknown { reason: hide(reason) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_and_placeholders_are_checked() {
        assert!(validate_host("host", "db.internal").is_ok());
        assert!(validate_host("host", "::1").is_ok());
        for bad in ["", "a b", "/var/run/postgresql", &"x".repeat(254)] {
            let error = validate_host("host", bad).unwrap_err();
            assert_eq!(error.field, "host", "{bad}");
            assert_eq!(error.message, error.message.to_lowercase());
        }
        assert_eq!(validate_name("user", "").unwrap_err().field, "user");
        assert_eq!(validate_name("user", "a\nb").unwrap_err().field, "user");
        assert!(validate_name("user", "monitor").is_ok());
        assert_eq!(
            validate_password("password", &Secret::new("***")).unwrap_err().field,
            "password"
        );
        assert!(validate_password("password", &Secret::new("s3cret")).is_ok());
    }

    #[test]
    fn ipv6_targets_are_bracketed() {
        assert_eq!(host_port("::1", 5432), "[::1]:5432");
        assert_eq!(host_port("[::1]", 5432), "[::1]:5432");
        assert_eq!(host_port("db", 5432), "db:5432");
    }

    #[test]
    fn passwords_are_cut_out_of_reasons() {
        let outcome = CheckOutcome::Failed { reason: "server said: bad password hunter2".into() };
        let reason = "server said: bad password ***".to_owned();
        assert_eq!(
            without_password(outcome.clone(), Some("hunter2")),
            CheckOutcome::Failed { reason }
        );
        assert_eq!(without_password(outcome.clone(), Some("")), outcome);
        assert_eq!(without_password(outcome.clone(), None), outcome);
    }
}
