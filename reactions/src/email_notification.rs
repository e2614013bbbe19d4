//! `email-notification`: mail the incident (monitor, status, reason, episode, time and a
//! dashboard link) to up to 20 addresses through an SMTP relay.
//!
//! The relay is the node's ([`ReactionContext::smtp`]) unless the reaction brings its own
//! `smtp` object, which replaces it whole. Each message carries a `Message-ID` made from the
//! firing's idempotency key, so a retried firing sends the very same message (mail stores drop
//! such duplicates): the reaction is [`Effect::Idempotent`].

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::notify::{dashboard_link, headline, method_label, rfc3339, status_word};
use crate::smtp::{SmtpSettings, smtp_error};
use crate::{
    ConfigError, Effect, Fired, Incident, Reaction, ReactionContext, ReactionError, ReactionType,
    api,
};
use cloudroutes_engine::Status;
use cloudroutes_engine::egress::{Egress, resolve_allowed};

/// Fields whose values are write-only through the API: every value of the `smtp` object.
pub const SECRET_FIELDS: &[&str] = &["smtp"];

const KIND: &str = "email-notification";
/// Most recipients one reaction mails.
pub const MAX_RECIPIENTS: usize = 20;
const MAX_SUBJECT_PREFIX_CHARS: usize = 100;
/// Default `timeout_ms`: a relay may take its time over TLS, login and the message.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

fn default_subject_prefix() -> String {
    "[CloudRoutes]".into()
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Config of an `email-notification` reaction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Recipients, 1 to 20: `ops@example.com` or `Ops <ops@example.com>`.
    #[schemars(length(min = 1, max = 20))]
    pub to: Vec<String>,
    /// Put before the subject, `[CloudRoutes]` unless set (empty for none); at most 100
    /// characters.
    #[serde(default = "default_subject_prefix")]
    #[schemars(length(max = 100))]
    pub subject_prefix: String,
    /// This reaction's own SMTP relay, replacing the node's; its values are write-only.
    #[serde(default)]
    #[schemars(extend("writeOnly" = true))]
    pub smtp: Option<SmtpSettings>,
    /// Milliseconds the whole delivery may take (connect, TLS, login, message), 1 to 120000.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 120_000))]
    pub timeout_ms: u64,
}

impl ReactionType for Config {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str =
        "mail the monitor, status, reason, episode and a dashboard link through an smtp relay";
    const EFFECT: Effect = Effect::Idempotent;
    const SECRET_FIELDS: &'static [&'static str] = SECRET_FIELDS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.recipients()?;
        self.subject_prefix()?;
        if let Some(smtp) = &self.smtp {
            smtp.validate("smtp")?;
        }
        api::validate_timeout_ms(self.timeout_ms)?;
        Ok(())
    }

    fn build(&self, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
        Ok(Box::new(EmailNotificationReaction::new(self, context)?))
    }
}

impl Config {
    fn recipients(&self) -> Result<Vec<Mailbox>, ConfigError> {
        let invalid = |message: String| ConfigError::invalid("to", message);
        if self.to.is_empty() || self.to.len() > MAX_RECIPIENTS {
            return Err(invalid(format!("must list 1 to {MAX_RECIPIENTS} addresses")));
        }
        let mut seen = HashSet::new();
        let mut mailboxes = Vec::with_capacity(self.to.len());
        for entry in &self.to {
            let mailbox: Mailbox = entry.parse().map_err(|_| {
                invalid(format!("`{entry}` is not an email address like ops@example.com"))
            })?;
            if !seen.insert(mailbox.email.to_string().to_lowercase()) {
                return Err(invalid(format!("`{}` is listed twice", mailbox.email)));
            }
            mailboxes.push(mailbox);
        }
        Ok(mailboxes)
    }

    fn subject_prefix(&self) -> Result<&str, ConfigError> {
        let prefix = self.subject_prefix.as_str();
        if prefix.chars().count() > MAX_SUBJECT_PREFIX_CHARS || prefix.chars().any(char::is_control)
        {
            let message = format!(
                "must be at most {MAX_SUBJECT_PREFIX_CHARS} characters without line breaks"
            );
            return Err(ConfigError::invalid("subject_prefix", message));
        }
        Ok(prefix.trim())
    }
}

/// A runnable `email-notification` reaction.
pub struct EmailNotificationReaction {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The policy, host and port to judge before sending, for a relay the reaction names.
    judged: Option<(Arc<Egress>, String, u16)>,
    relay: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject_prefix: String,
    public_url: Option<Url>,
    timeout: Duration,
    timeout_ms: u64,
}

impl fmt::Debug for EmailNotificationReaction {
    // By hand: the transport holds the relay's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotificationReaction")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .field("to", &self.to.iter().map(ToString::to_string).collect::<Vec<_>>())
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

impl EmailNotificationReaction {
    /// Validates `config` and builds the reaction on its own relay, else the node's.
    ///
    /// # Errors
    /// The first invalid field; `smtp` when neither the reaction nor the node names a relay.
    pub fn new(config: &Config, context: &ReactionContext) -> Result<Self, ConfigError> {
        let smtp = match (&config.smtp, &context.smtp) {
            (Some(own), _) => own,
            (None, Some(node)) => node,
            (None, None) => {
                let message =
                    "no smtp relay: give an smtp object here or smtp settings on the node";
                return Err(ConfigError::invalid("smtp", message));
            }
        };
        smtp.validate("smtp")?;
        // A relay the reaction names is judged by the egress policy; the node's own relay is
        // the operator's choice (often on loopback) and is not.
        let judged = config
            .smtp
            .as_ref()
            .map(|own| (Arc::clone(context.http.egress()), own.host.clone(), own.port()));
        if let Some((egress, host, port)) = &judged {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
                egress
                    .check(ip, *port)
                    .map_err(|denied| ConfigError::invalid("smtp.host", denied.to_string()))?;
            }
        }
        let timeout = api::validate_timeout_ms(config.timeout_ms)?;
        let from = smtp.sender().map_err(|message| ConfigError::invalid("smtp.from", message))?;
        // The dashboard address belongs to the node: a reaction's own relay may leave it out.
        let public_url =
            smtp.public_url().or_else(|| context.smtp.as_ref().and_then(SmtpSettings::public_url));
        Ok(Self {
            transport: smtp.transport("smtp", timeout)?,
            judged,
            relay: format!("{}:{}", smtp.host, smtp.port()),
            from,
            to: config.recipients()?,
            subject_prefix: config.subject_prefix()?.to_owned(),
            public_url,
            timeout,
            timeout_ms: config.timeout_ms,
        })
    }

    fn message(&self, incident: &Incident) -> Result<Message, ReactionError> {
        let subject = match self.subject_prefix.as_str() {
            "" => headline(incident),
            prefix => format!("{prefix} {}", headline(incident)),
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id(&incident.idempotency_key)))
            // RFC 3834: no vacation auto-replies to a machine's message.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let link = self.public_url.as_ref().map(|url| dashboard_link(url, incident));
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(plain_text(incident, link.as_deref())),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html(incident, link.as_deref())),
            );
        builder.multipart(body).map_err(|error| ReactionError::Failed {
            kind: KIND,
            message: format!("cannot build the message: {error}"),
        })
    }
}

#[async_trait::async_trait]
impl Reaction for EmailNotificationReaction {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn effect(&self) -> Effect {
        Effect::Idempotent
    }

    async fn fire(&self, incident: &Incident) -> Result<Fired, ReactionError> {
        if let Some((egress, host, port)) = &self.judged {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let check = resolve_allowed(egress, bare, *port);
            match tokio::time::timeout(self.timeout, check).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(crate::egress::refusal(KIND, &error)),
                Err(_) => {
                    return Err(ReactionError::Timeout { kind: KIND, timeout_ms: self.timeout_ms });
                }
            }
        }
        let message = self.message(incident)?;
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message)).await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(smtp_error(KIND, &error, self.timeout_ms)),
            Err(_) => {
                return Err(ReactionError::Timeout { kind: KIND, timeout_ms: self.timeout_ms });
            }
        };
        let answer = response.message().collect::<Vec<_>>().join(" ");
        let recipients = self.to.len();
        let noun = if recipients == 1 { "recipient" } else { "recipients" };
        Ok(Fired::Executed(format!(
            "sent to {recipients} {noun} via {}: {} {}",
            self.relay,
            response.code(),
            api::tidy(answer.as_bytes())
        )))
    }
}

/// Returns `<key@cloudroutes>`, the key reduced to characters a Message-ID allows.
fn message_id(idempotency_key: &str) -> String {
    let id: String = idempotency_key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    format!("<{id}@cloudroutes>")
}

/// Returns the first sentence of the message.
fn opening(incident: &Incident) -> String {
    let name = &incident.monitor_name;
    match incident.status {
        Status::Failed => format!("Monitor \"{name}\" has FAILED."),
        Status::Healthy => {
            format!("Monitor \"{name}\" is HEALTHY again: episode {} is over.", incident.episode)
        }
        Status::Unknown => format!("Monitor \"{name}\" is UNKNOWN."),
    }
}

/// Returns the labelled facts, in order, as both bodies show them.
fn facts(incident: &Incident, link: Option<&str>) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Status", status_word(incident.status).to_owned()),
        ("Reason", incident.reason.clone()),
        ("Episode", incident.episode.to_string()),
        ("Time", format!("{} ({} result)", rfc3339(incident.at), method_label(incident.method))),
        ("Node", incident.node.clone()),
    ];
    match link {
        Some(link) => facts.push(("Dashboard", link.to_owned())),
        None => facts.push(("Monitor id", incident.monitor_id.as_str().to_owned())),
    }
    facts
}

fn plain_text(incident: &Incident, link: Option<&str>) -> String {
    let mut text = format!("{}\n\n", opening(incident));
    for (label, value) in facts(incident, link) {
        text.push_str(&format!("{:<12}{value}\n", format!("{label}:")));
    }
    text.push_str(&format!("\nSent by the CloudRoutes reaction \"{}\".\n", incident.reaction_name));
    text
}

fn html(incident: &Incident, link: Option<&str>) -> String {
    let color = match incident.status {
        Status::Failed => "#c0392b",
        Status::Healthy => "#27ae60",
        Status::Unknown => "#7f8c8d",
    };
    let mut rows = String::new();
    for (label, value) in facts(incident, link) {
        let value = match (label, link) {
            ("Dashboard", Some(link)) => {
                format!("<a href=\"{}\">{}</a>", escape_html(link), escape_html(link))
            }
            _ => escape_html(&value),
        };
        rows.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding-right:1em\">{label}</th><td>{value}</td></tr>\n"
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><body>\n<p style=\"color:{color};font-weight:bold\">{}</p>\n\
         <table>\n{rows}</table>\n\
         <p>Sent by the CloudRoutes reaction \"{}\".</p>\n</body></html>\n",
        escape_html(&opening(incident)),
        escape_html(&incident.reaction_name),
    )
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "email_notification_tests.rs"]
mod tests;
