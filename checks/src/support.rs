//! What the check types share: field validation and turning network errors into outcomes.

use std::error::Error;
use std::io;
use std::time::Duration;

use cloudroutes_engine::CheckOutcome;
use url::Url;

use crate::ConfigError;

/// Default `timeout_ms` of every check.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Largest accepted `timeout_ms` (two minutes).
pub(crate) const MAX_TIMEOUT_MS: u64 = 120_000;

/// Serde default of `timeout_ms`.
pub(crate) fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Serde default of `codes`.
pub(crate) fn default_codes() -> Vec<u16> {
    vec![200]
}

/// Returns `timeout_ms` as a duration when it lies in 1..=120000.
pub(crate) fn validate_timeout_ms(timeout_ms: u64) -> Result<Duration, ConfigError> {
    if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(ConfigError::invalid(
            "timeout_ms",
            format!("must be between 1 and {MAX_TIMEOUT_MS}"),
        ));
    }
    Ok(Duration::from_millis(timeout_ms))
}

/// Longest accepted host name (RFC 1035's limit for a DNS name).
pub(crate) const MAX_HOST_LEN: usize = 253;

/// Accepts a plausible host name or IP address (the field `host`); an IPv6 address may be
/// bracketed.
pub(crate) fn validate_host(host: &str) -> Result<(), ConfigError> {
    if host.is_empty() {
        return Err(ConfigError::invalid("host", "must not be empty"));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(ConfigError::invalid("host", format!("must be at most {MAX_HOST_LEN} bytes")));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(ConfigError::invalid("host", "must be a host name or ip address"));
    }
    Ok(())
}

/// Returns `host` without the brackets an IPv6 address may carry (`[::1]` → `::1`).
pub(crate) fn unbracketed_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Returns how reasons name a socket target: `db:5432`, or `[::1]:5432` for IPv6.
pub(crate) fn socket_target(host: &str, port: u16) -> String {
    let host = unbracketed_host(host);
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// How many characters of received data a reason quotes.
const QUOTED_RECEIVED_CHARS: usize = 80;

/// Returns received bytes as a reason quotes them: lossy UTF-8, escaped and quoted, cut after
/// 80 characters (`"+PONG\r\n"`, `"aaaa…" (4096 bytes)`, `nothing`).
pub(crate) fn quote_received(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing".to_owned();
    }
    let text = String::from_utf8_lossy(bytes);
    let mut head: String = text.chars().take(QUOTED_RECEIVED_CHARS).collect();
    if head.len() < text.len() {
        head.push('…');
        return format!("{head:?} ({} bytes)", bytes.len());
    }
    format!("{head:?}")
}

/// Returns whether `needle` occurs in `haystack`; an empty needle occurs everywhere.
pub(crate) fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|window| window == needle)
}

/// Parses `url` (the field of that name) and accepts only `http` and `https` URLs with a host.
pub(crate) fn parse_http_url(url: &str) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url).map_err(|error| {
        ConfigError::invalid(
            "url",
            format!("not a valid url: {}", error.to_string().to_lowercase()),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            "url",
            format!("scheme must be http or https, not `{}`", parsed.scheme()),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid("url", "must name a host"));
    }
    Ok(parsed)
}

/// Returns `host:port` of an http(s) URL, as failure reasons name the target.
pub(crate) fn host_and_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Accepts a non-empty list of status codes, each in 100..=599.
pub(crate) fn validate_status_codes(codes: &[u16]) -> Result<(), ConfigError> {
    if codes.is_empty() {
        return Err(ConfigError::invalid("codes", "must list at least one status code"));
    }
    if let Some((index, code)) = codes.iter().enumerate().find(|(_, c)| !(100..=599).contains(*c)) {
        return Err(ConfigError::invalid(
            format!("codes[{index}]"),
            format!("{code} is not an http status code (100 to 599)"),
        ));
    }
    Ok(())
}

/// Returns the outcome for an HTTP status: healthy `HTTP 200` when `codes` lists it, otherwise
/// failed `HTTP 503, expected one of 200, 204`.
pub(crate) fn status_outcome(status: reqwest::StatusCode, codes: &[u16]) -> CheckOutcome {
    let code = status.as_u16();
    if codes.contains(&code) {
        return CheckOutcome::Healthy { reason: format!("HTTP {code}") };
    }
    let expected: Vec<String> = codes.iter().map(u16::to_string).collect();
    CheckOutcome::Failed { reason: format!("HTTP {code}, expected one of {}", expected.join(", ")) }
}

/// Bodies up to this size are read and discarded so the connection returns to the pool.
pub(crate) const MAX_DRAIN_BYTES: usize = 64 * 1024;

/// Reads and discards a small response body (up to [`MAX_DRAIN_BYTES`], within `deadline`) so
/// that its keep-alive connection goes back to the node's pool; a larger or slower body is
/// dropped, which closes that one connection instead of reading it all.
pub(crate) async fn drain_for_reuse(mut response: reqwest::Response, deadline: Duration) {
    if response.content_length().is_some_and(|length| length > MAX_DRAIN_BYTES as u64) {
        return;
    }
    let drain = async {
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > MAX_DRAIN_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(deadline, drain).await;
}

/// The failed outcome of a target that did not answer within `timeout_ms`.
pub(crate) fn no_answer_within(timeout_ms: u64) -> CheckOutcome {
    CheckOutcome::Failed { reason: format!("no answer within {timeout_ms} ms") }
}

/// Returns the outcome of a failed HTTP exchange with `target` (`host:port`).
///
/// Timeouts and the target's network errors are failures; only errors on our side (no file
/// descriptors or ports left, a request the client could not build) are unknown.
pub(crate) fn request_error_outcome(
    error: &reqwest::Error,
    target: &str,
    timeout_ms: u64,
) -> CheckOutcome {
    if error.is_timeout() {
        return no_answer_within(timeout_ms);
    }
    if let Some(io_error) = find_source::<io::Error>(error) {
        return io_error_outcome(io_error, target);
    }
    let detail = innermost_message(error);
    if error.is_builder() {
        return CheckOutcome::Unknown { reason: format!("could not build the request: {detail}") };
    }
    CheckOutcome::Failed { reason: format!("request to {target} failed: {detail}") }
}

/// Returns the outcome of a socket error while talking to `target` (`host:port`).
pub(crate) fn io_error_outcome(error: &io::Error, target: &str) -> CheckOutcome {
    if is_local_resource_exhaustion(error) {
        return CheckOutcome::Unknown { reason: format!("could not open a connection: {error}") };
    }
    let reason = match error.kind() {
        io::ErrorKind::ConnectionRefused => format!("connection refused: {target}"),
        io::ErrorKind::ConnectionReset => format!("connection reset: {target}"),
        io::ErrorKind::ConnectionAborted => format!("connection aborted: {target}"),
        io::ErrorKind::HostUnreachable => format!("host unreachable: {target}"),
        io::ErrorKind::NetworkUnreachable => format!("network unreachable: {target}"),
        io::ErrorKind::TimedOut => format!("connection timed out: {target}"),
        _ => format!("connection to {target} failed: {error}"),
    };
    CheckOutcome::Failed { reason }
}

/// Returns whether an error means this node ran out of something (so the target is not to blame).
fn is_local_resource_exhaustion(error: &io::Error) -> bool {
    // Linux errno values ENFILE, EMFILE and ENOBUFS: std has no stable `ErrorKind` for them.
    const LINUX_EXHAUSTION_ERRNOS: [i32; 3] = [23, 24, 105];
    matches!(error.kind(), io::ErrorKind::OutOfMemory | io::ErrorKind::AddrNotAvailable)
        || (cfg!(target_os = "linux")
            && error.raw_os_error().is_some_and(|errno| LINUX_EXHAUSTION_ERRNOS.contains(&errno)))
}

/// Returns the first error of type `T` in the `source` chain of `error` (itself included).
pub(crate) fn find_source<'a, T: Error + 'static>(
    error: &'a (dyn Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// Returns the message of the deepest error in the `source` chain: the most specific one.
fn innermost_message(error: &(dyn Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_must_be_listed_and_in_range() {
        assert_eq!(validate_status_codes(&[]).unwrap_err().field, "codes");
        assert_eq!(validate_status_codes(&[200, 99]).unwrap_err().field, "codes[1]");
        assert_eq!(validate_status_codes(&[600]).unwrap_err().field, "codes[0]");
        assert!(validate_status_codes(&[100, 599]).is_ok());
    }

    #[test]
    fn timeout_must_be_between_1_and_120000() {
        assert_eq!(validate_timeout_ms(0).unwrap_err().field, "timeout_ms");
        assert_eq!(validate_timeout_ms(120_001).unwrap_err().field, "timeout_ms");
        assert_eq!(validate_timeout_ms(120_000).unwrap(), Duration::from_secs(120));
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        for bad in ["ftp://example.com/", "example.com", "file:///etc/passwd", "http://"] {
            let error = parse_http_url(bad).unwrap_err();
            assert_eq!(error.field, "url", "{bad}");
            assert_eq!(error.message, error.message.to_lowercase(), "{bad}");
        }
        let url = parse_http_url("https://example.com/health").unwrap();
        assert_eq!(host_and_port(&url), "example.com:443");
    }

    #[test]
    fn running_out_of_file_descriptors_is_unknown_not_failed() {
        let emfile = io::Error::from_raw_os_error(24);
        let outcome = io_error_outcome(&emfile, "db:5432");
        if cfg!(target_os = "linux") {
            assert!(matches!(outcome, CheckOutcome::Unknown { .. }), "{outcome:?}");
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let outcome = io_error_outcome(&refused, "db:5432");
        assert_eq!(outcome, CheckOutcome::Failed { reason: "connection refused: db:5432".into() });
    }

    #[test]
    fn hosts_must_be_plausible_and_ipv6_targets_are_bracketed() {
        for bad in ["", "a b", "a/b", &"x".repeat(254)] {
            assert_eq!(validate_host(bad).unwrap_err().field, "host", "{bad}");
        }
        assert!(validate_host("[::1]").is_ok());
        assert_eq!(socket_target("::1", 80), "[::1]:80");
        assert_eq!(socket_target("[::1]", 80), "[::1]:80");
        assert_eq!(socket_target("db", 5432), "db:5432");
    }

    #[test]
    fn received_bytes_are_quoted_escaped_and_cut() {
        assert_eq!(quote_received(b""), "nothing");
        assert_eq!(quote_received(b"+PONG\r\n"), r#""+PONG\r\n""#);
        assert_eq!(quote_received(&[0xff, b'a']), "\"\u{fffd}a\"");
        let long = quote_received(&[b'a'; 4096]);
        assert_eq!(long, format!("\"{}…\" (4096 bytes)", "a".repeat(80)));
    }

    #[test]
    fn status_outcome_names_the_expected_codes() {
        let ok = status_outcome(reqwest::StatusCode::OK, &[200]);
        assert_eq!(ok, CheckOutcome::Healthy { reason: "HTTP 200".into() });
        let bad = status_outcome(reqwest::StatusCode::SERVICE_UNAVAILABLE, &[200, 204]);
        let reason = "HTTP 503, expected one of 200, 204".to_owned();
        assert_eq!(bad, CheckOutcome::Failed { reason });
    }
}
