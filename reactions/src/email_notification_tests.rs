//! Against a real SMTP server (Debian's `python3-aiosmtpd`, see `smtp_test_server.rs`).

use cloudroutes_engine::Status;
use cloudroutes_engine::secret::Secret;
use serde_json::json;
use tokio::net::TcpListener;

use super::*;
use crate::notify::sample_incident;
use crate::smtp::SmtpSecurity;
use crate::smtp_test_server::{Mode, SmtpTestServer};
use crate::{ReactionConfig, reaction_types};

fn relay(port: u16, security: SmtpSecurity) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port: Some(port),
        security,
        username: None,
        password: None,
        from: "CloudRoutes <alerts@example.com>".into(),
        accept_invalid_certs: true,
        public_url: None,
    }
}

fn config(smtp: Option<SmtpSettings>) -> Config {
    Config {
        to: vec!["ops@example.com".into(), "Dev Team <dev@example.com>".into()],
        subject_prefix: default_subject_prefix(),
        smtp,
        timeout_ms: 10_000,
    }
}

fn build(config: &Config, context: &ReactionContext) -> Result<Box<dyn Reaction>, ConfigError> {
    config.validate()?;
    config.build(context)
}

fn context() -> ReactionContext {
    ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap()
}

#[tokio::test]
async fn mails_a_failure_over_starttls_after_logging_in() {
    let server = SmtpTestServer::start(Mode::Starttls, Some(("alerts", "s3cret-pw"))).await;
    let mut smtp = relay(server.port, SmtpSecurity::Starttls);
    smtp.username = Some("alerts".into());
    smtp.password = Some(Secret::new("s3cret-pw"));
    smtp.public_url = Some("https://cr.example.com/".into());
    let reaction = build(&config(Some(smtp)), &context()).unwrap();

    let fired = reaction.fire(&sample_incident(Status::Failed)).await.unwrap();
    let Fired::Executed(detail) = fired else { panic!("{fired:?}") };
    let expected = format!("sent to 2 recipients via 127.0.0.1:{}: 250 ", server.port);
    assert!(detail.starts_with(&expected), "{detail}");

    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    let mail = &delivered[0];
    assert!(mail.tls && mail.authenticated, "{mail:?}");
    assert_eq!(mail.mail_from, "alerts@example.com");
    assert_eq!(mail.rcpt_tos, ["ops@example.com", "dev@example.com"]);
    assert_eq!(mail.headers["from"], "CloudRoutes <alerts@example.com>");
    assert_eq!(mail.headers["to"], "ops@example.com, Dev Team <dev@example.com>");
    assert_eq!(mail.headers["subject"], "[CloudRoutes] FAILED: shop front page (episode 4)");
    assert_eq!(mail.headers["message-id"], "<01hmonitor-01hreaction-4-failed-1@cloudroutes>");
    assert_eq!(mail.headers["auto-submitted"], "auto-generated");
    assert_eq!(mail.content_type, "multipart/alternative");
    let text = mail.text.as_deref().unwrap();
    assert_eq!(
        text,
        "Monitor \"shop front page\" has FAILED.\n\n\
         Status:     FAILED\n\
         Reason:     HTTP 503, expected one of 200\n\
         Episode:    4\n\
         Time:       2024-05-01T12:30:00Z (automatic result)\n\
         Node:       node-a\n\
         Dashboard:  https://cr.example.com/#/monitors/01hmonitor\n\
         \nSent by the CloudRoutes reaction \"tell the on-call\".\n"
    );
    let html = mail.html.as_deref().unwrap();
    assert!(html.contains("Monitor &quot;shop front page&quot; has FAILED."), "{html}");
    let link = "<a href=\"https://cr.example.com/#/monitors/01hmonitor\">";
    assert!(html.contains(link), "{html}");
    assert!(html.contains("<td>HTTP 503, expected one of 200</td>"), "{html}");
}

#[tokio::test]
async fn mails_a_recovery_through_the_nodes_relay_and_a_retry_sends_the_same_message() {
    let server = SmtpTestServer::start(Mode::Plain, None).await;
    let mut node = relay(server.port, SmtpSecurity::None);
    node.public_url = Some("http://cr.internal:8080".into());
    let mut config = config(None);
    config.to = vec!["ops@example.com".into()];
    config.subject_prefix = "[shop]".into();
    let reaction = build(&config, &context().with_smtp(Some(node))).unwrap();

    let mut incident = sample_incident(Status::Healthy);
    incident.reason = "HTTP 200 <ok> & fast".into();
    let detail = reaction.fire(&incident).await.unwrap();
    assert!(matches!(&detail, Fired::Executed(d) if d.starts_with("sent to 1 recipient via")));
    reaction.fire(&incident).await.unwrap();

    let delivered = server.delivered();
    assert_eq!(delivered.len(), 2);
    let mail = &delivered[0];
    assert!(!mail.tls && !mail.authenticated);
    assert_eq!(mail.rcpt_tos, ["ops@example.com"]);
    assert_eq!(mail.headers["subject"], "[shop] HEALTHY: shop front page (episode 4)");
    let text = mail.text.as_deref().unwrap();
    assert!(text.starts_with("Monitor \"shop front page\" is HEALTHY again: episode 4 is over."));
    assert!(text.contains("Reason:     HTTP 200 <ok> & fast\n"), "{text}");
    assert!(text.contains("Dashboard:  http://cr.internal:8080/#/monitors/01hmonitor\n"), "{text}");
    let html = mail.html.as_deref().unwrap();
    assert!(html.contains("<td>HTTP 200 &lt;ok&gt; &amp; fast</td>"), "{html}");
    // The retry is the same message: mail stores drop the duplicate by its Message-ID.
    assert_eq!(delivered[1].headers["message-id"], mail.headers["message-id"]);
    assert_eq!(delivered[1].text, mail.text);
}

#[tokio::test]
async fn a_reactions_own_relay_replaces_the_nodes_and_implicit_tls_works() {
    let server = SmtpTestServer::start(Mode::Tls, None).await;
    let mut node = relay(1, SmtpSecurity::None);
    node.public_url = Some("https://cr.example.com".into());
    let mut config = config(Some(relay(server.port, SmtpSecurity::Tls)));
    config.subject_prefix = String::new();
    let reaction = build(&config, &context().with_smtp(Some(node))).unwrap();
    reaction.fire(&sample_incident(Status::Failed)).await.unwrap();

    let mail = server.delivered().pop().unwrap();
    assert!(mail.tls);
    assert_eq!(mail.headers["subject"], "FAILED: shop front page (episode 4)");
    // The dashboard address still comes from the node.
    let text = mail.text.unwrap();
    assert!(text.contains("Dashboard:  https://cr.example.com/#/monitors/01hmonitor"), "{text}");
}

#[tokio::test]
async fn without_a_dashboard_address_the_message_names_the_monitor_id() {
    let server = SmtpTestServer::start(Mode::Plain, None).await;
    let reaction =
        build(&config(Some(relay(server.port, SmtpSecurity::None))), &context()).unwrap();
    reaction.fire(&sample_incident(Status::Failed)).await.unwrap();
    let text = server.delivered().pop().unwrap().text.unwrap();
    assert!(text.contains("Monitor id: 01hmonitor\n") && !text.contains("Dashboard"), "{text}");
}

#[tokio::test]
async fn a_wrong_password_is_a_final_535_that_never_shows_the_password() {
    let server = SmtpTestServer::start(Mode::Starttls, Some(("alerts", "right-pw"))).await;
    let mut smtp = relay(server.port, SmtpSecurity::Starttls);
    smtp.username = Some("alerts".into());
    smtp.password = Some(Secret::new("wrong-pw"));
    let reaction = build(&config(Some(smtp)), &context()).unwrap();
    let error = reaction.fire(&sample_incident(Status::Failed)).await.unwrap_err();
    let ReactionError::SmtpRejected { kind, code, ref message } = error else {
        panic!("{error:?}")
    };
    assert_eq!((kind, code), ("email-notification", 535));
    assert_eq!(message, "5.7.8 Authentication credentials invalid");
    assert!(!error.is_retryable());
    assert!(!format!("{error} {error:?}").contains("wrong-pw"));
    assert!(server.delivered().is_empty());
}

#[tokio::test]
async fn a_stopped_server_is_a_retryable_transport_error() {
    let mut server = SmtpTestServer::start(Mode::Plain, None).await;
    let reaction =
        build(&config(Some(relay(server.port, SmtpSecurity::None))), &context()).unwrap();
    reaction.fire(&sample_incident(Status::Failed)).await.unwrap();
    server.stop();
    let error = reaction.fire(&sample_incident(Status::Failed)).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_unless_accepted() {
    let server = SmtpTestServer::start(Mode::Starttls, None).await;
    let mut smtp = relay(server.port, SmtpSecurity::Starttls);
    smtp.accept_invalid_certs = false;
    let reaction = build(&config(Some(smtp)), &context()).unwrap();
    let error = reaction.fire(&sample_incident(Status::Failed)).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.starts_with("smtp: ") && message.contains("certificate"), "{message}");
    assert!(server.delivered().is_empty());
}

#[tokio::test]
async fn starttls_the_server_does_not_offer_fails_before_sending_anything() {
    let server = SmtpTestServer::start(Mode::Plain, None).await;
    let reaction =
        build(&config(Some(relay(server.port, SmtpSecurity::Starttls))), &context()).unwrap();
    let error = reaction.fire(&sample_incident(Status::Failed)).await.unwrap_err();
    assert!(matches!(error, ReactionError::Failed { .. }), "{error:?}");
    assert!(error.to_string().to_lowercase().contains("starttls"), "{error}");
    assert!(server.delivered().is_empty());
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut config = config(Some(relay(port, SmtpSecurity::None)));
    config.timeout_ms = 300;
    let reaction = build(&config, &context()).unwrap();
    let started = std::time::Instant::now();
    let error = reaction.fire(&sample_incident(Status::Failed)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    assert!(matches!(error, ReactionError::Timeout { timeout_ms: 300, .. }), "{error:?}");
    assert!(error.is_retryable());
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

#[test]
fn without_any_relay_the_build_fails_naming_smtp() {
    let Ok(parsed) = parse(json!({"type": "email-notification", "to": ["ops@example.com"]})) else {
        panic!("a config without smtp is valid: the node may have a relay");
    };
    let error = parsed.build(&context()).unwrap_err();
    assert_eq!(error.field, "smtp", "{error}");
    let node = relay(25, SmtpSecurity::None);
    assert!(parsed.build(&context().with_smtp(Some(node.clone()))).is_ok());
    // A broken node relay is named too.
    let broken = SmtpSettings { from: "nobody".into(), ..node };
    assert_eq!(parsed.build(&context().with_smtp(Some(broken))).unwrap_err().field, "smtp.from");
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let to = json!(["ops@example.com"]);
    let smtp = |extra: serde_json::Value| {
        let mut smtp = json!({"host": "smtp.example.com", "from": "alerts@example.com"});
        smtp.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"type": "email-notification", "to": to, "smtp": smtp})
    };
    let many: Vec<String> = (0..21).map(|i| format!("u{i}@example.com")).collect();
    let cases = [
        (json!({"type": "email-notification"}), "to"),
        (json!({"type": "email-notification", "to": []}), "to"),
        (json!({"type": "email-notification", "to": many}), "to"),
        (json!({"type": "email-notification", "to": ["not an address"]}), "to"),
        (json!({"type": "email-notification", "to": ["a@example.com", "A@Example.com"]}), "to"),
        (
            json!({"type": "email-notification", "to": to, "subject_prefix": "a\r\nBcc: x"}),
            "subject_prefix",
        ),
        (json!({"type": "email-notification", "to": to, "timeout_ms": 0}), "timeout_ms"),
        (json!({"type": "email-notification", "to": to, "cc": ["x@example.com"]}), "cc"),
        (smtp(json!({"host": "bad host"})), "smtp.host"),
        (smtp(json!({"host": ""})), "smtp.host"),
        (smtp(json!({"port": 0})), "smtp.port"),
        (smtp(json!({"from": "alerts"})), "smtp.from"),
        (smtp(json!({"security": "ssl"})), "smtp.security"),
        (smtp(json!({"username": "u"})), "smtp.password"),
        (smtp(json!({"password": "p"})), "smtp.username"),
        (smtp(json!({"username": "u", "password": "***"})), "smtp.password"),
        (smtp(json!({"username": "u", "password": "p", "security": "none"})), "smtp.password"),
        (smtp(json!({"public_url": "ftp://cr.example.com"})), "smtp.public_url"),
        (smtp(json!({"tls": true})), "smtp.tls"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        let unquoted: String = error.message.split('`').step_by(2).collect();
        assert_eq!(unquoted, unquoted.to_lowercase(), "{error}");
    }
}

#[test]
fn defaults_and_ports_follow_the_security_mode() {
    let Ok(ReactionConfig::EmailNotification(config)) = parse(json!({
        "type": "email-notification", "to": ["ops@example.com"],
        "smtp": {"host": "smtp.example.com", "from": "alerts@example.com"},
    })) else {
        panic!("expected an email-notification config")
    };
    assert_eq!((config.subject_prefix.as_str(), config.timeout_ms), ("[CloudRoutes]", 30_000));
    let smtp = config.smtp.clone().unwrap();
    assert_eq!(
        (smtp.security, smtp.port(), smtp.accept_invalid_certs),
        (SmtpSecurity::Starttls, 587, false)
    );
    let tls = SmtpSettings { security: SmtpSecurity::Tls, ..smtp.clone() };
    let none = SmtpSettings { security: SmtpSecurity::None, ..smtp };
    assert_eq!((tls.port(), none.port()), (465, 25));
    let reaction = build(&config, &context()).unwrap();
    assert_eq!((reaction.kind(), reaction.effect()), ("email-notification", Effect::Idempotent));
}

#[test]
fn the_password_never_appears_in_debug_output_and_smtp_is_write_only() {
    let mut smtp = relay(587, SmtpSecurity::Starttls);
    smtp.username = Some("alerts".into());
    smtp.password = Some(Secret::new("hunter2"));
    let config = config(Some(smtp.clone()));
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!format!("{:?}", build(&config, &context()).unwrap()).contains("hunter2"));
    assert!(!format!("{:?}", context().with_smtp(Some(smtp))).contains("hunter2"));

    let spec = serde_json::from_value(json!({
        "type": "email-notification", "to": ["ops@example.com"],
        "smtp": {
            "host": "smtp.example.com", "from": "a@example.com",
            "username": "u", "password": "hunter2",
        },
    }))
    .unwrap();
    let shown = serde_json::to_string(&crate::redact(&spec)).unwrap();
    assert!(!shown.contains("hunter2") && shown.contains(r#""password":"***""#), "{shown}");
}

#[test]
fn schema_lists_every_field_and_marks_smtp_write_only() {
    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "email-notification").unwrap();
    assert_eq!(info.secret_fields, ["smtp"]);
    assert_eq!(info.effect, Effect::Idempotent);
    let properties = info.schema["properties"].as_object().unwrap();
    let mut fields: Vec<_> = properties.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["smtp", "subject_prefix", "timeout_ms", "to"]);
    assert_eq!(properties["smtp"]["writeOnly"], json!(true));
    assert_eq!(properties["to"]["maxItems"], json!(20));
    assert_eq!(info.schema["required"], json!(["to"]));
    let schema = info.schema.to_string();
    for field in [
        "host",
        "port",
        "security",
        "username",
        "password",
        "from",
        "accept_invalid_certs",
        "public_url",
    ] {
        assert!(schema.contains(&format!("\"{field}\"")), "{field} missing from {schema}");
    }
}
