//! Request and answer shapes from Twilio's Message resource docs
//! (<https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource>) and
//! its error format (<https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions>).

use std::time::Duration;

use cloudroutes_engine::{Method, MonitorId, PluginSpec, ReactionId, Status};
use serde_json::json;

use super::*;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ReactionConfig, reaction_types};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f00dcafe0123456789abcdef01234567";
/// `Basic base64(SID:TOKEN)`.
const BASIC: &str = "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpmMDBkY2FmZTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nw==";
const PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
const TEXT: &str = "CloudRoutes: monitor shop front page is failed: HTTP 503, expected one of 200";

fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop front page".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "text the on-call".into(),
        status: Status::Failed,
        episode: 4,
        reason: "HTTP 503, expected one of 200".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:4:failed:0".into(),
        node: "node-a".into(),
    }
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    let spec: PluginSpec = serde_json::from_value(value).unwrap();
    ReactionConfig::parse(&spec)
}

fn base_spec() -> serde_json::Value {
    json!({
        "type": KIND, "account_sid": SID, "auth_token": TOKEN, "from": "+15017122661",
        "to": ["+15558675310"],
    })
}

fn reaction(base_url: &str, extra: serde_json::Value) -> Box<dyn Reaction> {
    let mut value = base_spec();
    value["api_base_url"] = json!(base_url);
    value["timeout_ms"] = json!(2000);
    for (key, field) in extra.as_object().into_iter().flatten() {
        value[key] = field.clone();
    }
    parse(value)
        .unwrap()
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap()
}

fn created(sid: &str, to: &str) -> Reply {
    Reply::json(
        201,
        json!({
            "sid": sid, "account_sid": SID, "to": to, "from": "+15017122661", "body": TEXT,
            "status": "queued", "num_segments": "1", "api_version": "2010-04-01",
            "error_code": null, "error_message": null,
            "uri": format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json"),
        }),
    )
}

fn invalid_number(to: &str) -> Reply {
    Reply::json(
        400,
        json!({
            "code": 21211, "message": format!("Invalid 'To' Phone Number: {to}"),
            "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400,
        }),
    )
}

#[tokio::test]
async fn texts_each_recipient_with_basic_auth_and_a_form() {
    let fake = FakeApi::start().await;
    fake.reply(
        "POST",
        PATH,
        vec![
            created("SM00000000000000000000000000000001", "+15558675310"),
            created("SM00000000000000000000000000000002", "+447700900123"),
        ],
    );
    let reaction = reaction(&fake.base_url(), json!({"to": ["+15558675310", "+447700900123"]}));
    let fired = reaction.fire(&incident()).await.unwrap();
    assert_eq!(
        fired,
        Fired::Executed(
            "HTTP 201, sent to +15558675310 (SM00000000000000000000000000000001), \
             +447700900123 (SM00000000000000000000000000000002)"
                .into()
        )
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for (request, to) in requests.iter().zip(["+15558675310", "+447700900123"]) {
        assert_eq!(
            (request.method.as_str(), request.path.as_str(), request.query.as_deref()),
            ("POST", PATH, None)
        );
        assert_eq!(request.header("authorization"), Some(BASIC));
        assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(request.header("accept"), Some("application/json"));
        let form = vec![
            ("To".to_owned(), to.to_owned()),
            ("From".to_owned(), "+15017122661".to_owned()),
            ("Body".to_owned(), TEXT.to_owned()),
        ];
        assert_eq!(request.form(), form);
    }
}

#[tokio::test]
async fn the_text_is_cut_to_1600_characters() {
    let fake = FakeApi::start().await;
    fake.reply("POST", PATH, vec![created("SM1", "+15558675310")]);
    let mut long = incident();
    long.reason = "é".repeat(3000);
    reaction(&fake.base_url(), json!({})).fire(&long).await.unwrap();
    let form = fake.requests()[0].form();
    let body = &form.iter().find(|(name, _)| name == "Body").unwrap().1;
    assert_eq!(body.chars().count(), 1600);
    assert!(body.starts_with("CloudRoutes: monitor shop front page is failed: éé"));
}

#[tokio::test]
async fn a_twilio_error_quotes_its_code_and_message_and_is_final() {
    let fake = FakeApi::start().await;
    fake.reply("POST", PATH, vec![invalid_number("+15558675310")]);
    let error = reaction(&fake.base_url(), json!({})).fire(&incident()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "twilio-sms-notification: target answered HTTP 400 +15558675310: HTTP 400 code 21211: \
         Invalid 'To' Phone Number: +15558675310"
    );
    assert!(!error.is_retryable());
    assert!(!format!("{error:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_partial_failure_names_the_failed_and_the_reached_numbers() {
    let fake = FakeApi::start().await;
    fake.reply(
        "POST",
        PATH,
        vec![
            created("SMa", "+15558675310"),
            invalid_number("+15558675311"),
            created("SMc", "+15558675312"),
        ],
    );
    let to = json!(["+15558675310", "+15558675311", "+15558675312"]);
    let error = reaction(&fake.base_url(), json!({"to": to})).fire(&incident()).await.unwrap_err();
    let ReactionError::Rejected { status: 400, ref body, .. } = error else { panic!("{error:?}") };
    assert_eq!(
        body,
        "1 of 3 recipients failed: +15558675311: HTTP 400 code 21211: Invalid 'To' Phone Number: \
         +15558675311; sent to +15558675310 (SMa), +15558675312 (SMc)"
    );
    assert!(!error.is_retryable());
    assert_eq!(fake.requests().len(), 3, "one request per recipient, all tried");
}

#[tokio::test]
async fn a_retry_texts_only_the_recipients_the_firing_missed() {
    let fake = FakeApi::start().await;
    fake.reply(
        "POST",
        PATH,
        vec![
            created("SMa", "+15558675310"),
            Reply::json(
                503,
                json!({"code": 20500, "message": "Internal Server Error", "status": 503}),
            ),
            created("SMb", "+15558675311"),
            created("SMnext", "+15558675310"),
        ],
    );
    let reaction = reaction(&fake.base_url(), json!({"to": ["+15558675310", "+15558675311"]}));
    let error = reaction.fire(&incident()).await.unwrap_err();
    assert!(error.is_retryable(), "a 503 may pass on retry: {error}");
    assert!(error.to_string().contains("+15558675311: HTTP 503 code 20500"), "{error}");

    let fired = reaction.fire(&incident()).await.unwrap();
    assert_eq!(
        fired,
        Fired::Executed("HTTP 201, sent to +15558675310 (SMa), +15558675311 (SMb)".into())
    );
    let to_of = |index: usize| {
        let form = fake.requests()[index].form();
        form.into_iter().find(|(name, _)| name == "To").unwrap().1
    };
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(to_of(2), "+15558675311", "the retry skips the number already texted");

    let again = reaction.fire(&incident()).await.unwrap();
    assert!(matches!(again, Fired::Skipped(_)), "{again:?}");
    let mut next = incident();
    next.idempotency_key = "01hmonitor:01hreaction:5:failed:0".into();
    reaction.fire(&next).await.unwrap();
    assert_eq!(fake.requests().len(), 5, "a new firing texts everyone again");
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_port_is_a_transport_error() {
    let fake = FakeApi::start().await;
    fake.reply("POST", PATH, vec![Reply::slow(Duration::from_secs(5))]);
    let error =
        reaction(&fake.base_url(), json!({"timeout_ms": 200})).fire(&incident()).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert_eq!(message, "+15558675310: no answer within 200 ms");
    assert!(error.is_retryable());
    let (_closed, port) = closed_port();
    let error = reaction(&format!("http://127.0.0.1:{port}"), json!({}))
        .fire(&incident())
        .await
        .unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(error.is_retryable());
}

#[test]
fn rejects_bad_fields_naming_them() {
    let with = |key: &str, value: serde_json::Value| {
        let mut spec = base_spec();
        spec[key] = value;
        spec
    };
    let eleven: Vec<_> = (0..11).map(|i| format!("+1555867530{i}")).collect();
    let cases = [
        (with("account_sid", json!("AC0123")), "account_sid"),
        (with("account_sid", json!("CA0123456789abcdef0123456789abcdef")), "account_sid"),
        (with("account_sid", json!("AC0123456789abcdef0123456789abcdeg")), "account_sid"),
        (with("auth_token", json!("")), "auth_token"),
        (with("auth_token", json!("two words")), "auth_token"),
        (with("auth_token", json!("***")), "auth_token"),
        (with("from", json!("5017122661")), "from"),
        (with("from", json!("+1 501 712 2661")), "from"),
        (with("from", json!("+0501712266")), "from"),
        (with("to", json!([])), "to"),
        (with("to", json!(eleven)), "to"),
        (with("to", json!("+15558675310")), "to"),
        (with("to", json!(["+15558675310", "555-0100"])), "to[1]"),
        (with("to", json!(["+15558675310", "+15558675310"])), "to[1]"),
        (with("to", json!(["+1234567890123456"])), "to[0]"),
        (with("api_base_url", json!("ftp://api.twilio.com")), "api_base_url"),
        (with("timeout_ms", json!(120_001)), "timeout_ms"),
        (with("body", json!("hi")), "body"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert!(!error.message.starts_with(char::is_uppercase), "{error}");
        assert!(!error.message.contains(TOKEN));
    }
    let ten: Vec<_> = (0..10).map(|i| format!("+1555867530{i}")).collect();
    assert!(parse(with("to", json!(ten))).is_ok());
}

#[test]
fn defaults_schema_effect_and_debug() {
    let Ok(ReactionConfig::TwilioSmsNotification(config)) = parse(base_spec()) else { panic!() };
    assert_eq!(
        (config.api_base_url.as_str(), config.timeout_ms),
        ("https://api.twilio.com", 10_000)
    );
    assert!(!format!("{config:?}").contains(TOKEN));
    let reaction = config
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap();
    assert!(!format!("{reaction:?}").contains(TOKEN));
    assert_eq!((reaction.kind(), reaction.effect()), (KIND, Effect::Idempotent));

    let types = reaction_types();
    let info = types.iter().find(|t| t.name == KIND).unwrap();
    assert_eq!(info.secret_fields, ["auth_token"]);
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["account_sid", "auth_token", "from", "to", "api_base_url", "timeout_ms"] {
        assert!(properties[field]["description"].is_string(), "{field}");
    }
    assert_eq!(properties["auth_token"]["writeOnly"], json!(true));
    assert_eq!(properties["to"]["maxItems"], json!(10));
    assert_eq!(info.schema["required"], json!(["account_sid", "auth_token", "from", "to"]));
}
