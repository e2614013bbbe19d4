//! What the notification reactions (`email-notification`, `slack-webhook`,
//! `pagerduty-notification`) say about an incident, in the same words everywhere.

use cloudroutes_engine::{Method, Status, Timestamp};
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::{ConfigError, Incident};

/// Returns the status in capitals, as subjects and summaries show it: `FAILED`.
pub(crate) fn status_word(status: Status) -> &'static str {
    match status {
        Status::Failed => "FAILED",
        Status::Healthy => "HEALTHY",
        Status::Unknown => "UNKNOWN",
    }
}

/// Returns `FAILED: shop front page (episode 4)`.
pub(crate) fn headline(incident: &Incident) -> String {
    format!(
        "{}: {} (episode {})",
        status_word(incident.status),
        incident.monitor_name,
        incident.episode
    )
}

/// Returns how the result arrived, as the API spells it.
pub(crate) fn method_label(method: Method) -> &'static str {
    match method {
        Method::Automatic => "automatic",
        Method::Manual => "manual",
        Method::Webhook => "webhook",
    }
}

/// Formats `at` in UTC as RFC 3339; years RFC 3339 cannot write fall back to Unix seconds.
pub(crate) fn rfc3339(at: Timestamp) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    at.format(&Rfc3339).unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Parses a dashboard address (`public_url`): `http`/`https`, no query or fragment.
///
/// # Errors
/// Naming `field`.
pub(crate) fn parse_public_url(field: &str, url: &str) -> Result<Url, ConfigError> {
    let parsed = crate::api::parse_http_url(field, url)?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::invalid(field, "must not have a query or fragment"));
    }
    Ok(parsed)
}

/// Returns the monitor's page on the dashboard: `{public_url}/#/monitors/{id}`.
pub(crate) fn dashboard_link(public_url: &Url, incident: &Incident) -> String {
    let base = public_url.as_str().trim_end_matches('/');
    format!("{base}/#/monitors/{}", incident.monitor_id.as_str())
}

/// Returns `text` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Returns the incident the notification tests answer: monitor `shop front page` in episode 4.
#[cfg(test)]
pub(crate) fn sample_incident(status: cloudroutes_engine::Status) -> Incident {
    use cloudroutes_engine::{MonitorId, ReactionId};
    let phase = status.as_str();
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop front page".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "tell the on-call".into(),
        status,
        episode: 4,
        reason: "HTTP 503, expected one of 200".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: format!("01hmonitor:01hreaction:4:{phase}:1"),
        node: "node-a".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_short_text_and_marks_a_cut() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("ééééé", 4).chars().count(), 4);
    }

    #[test]
    fn public_urls_must_be_plain_http_addresses() {
        assert!(parse_public_url("public_url", "https://status.example.com/cr/").is_ok());
        for bad in ["ftp://x", "https://x/?a=1", "https://x/#/", "nonsense"] {
            assert_eq!(parse_public_url("public_url", bad).unwrap_err().field, "public_url");
        }
    }
}
