use std::time::{Duration, SystemTime};

use cloudroutes_engine::{Method, MonitorId, ReactionId, Status};
use serde_json::json;

use super::sigv4_tests::{SECRET, verify_signature};
use super::*;
use crate::test_api::{FakeApi, Reply, closed_port};
use crate::{ReactionConfig, reaction_types};

const TOKEN: &str = "FwoGZXIvYXdzEXAMPLE//////////wEaDSESSIONTOKEN=";
const ID_A: &str = "i-0123456789abcdef0";
const ID_B: &str = "i-0badc0de";

// Answers as the EC2 API Reference shows them (RebootInstances, StartInstances, StopInstances
// "Sample Response"; "Error codes", "Example error response").
const REBOOTED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<RebootInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <return>true</return>
</RebootInstancesResponse>"#;
const STARTED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<StartInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <instancesSet>
    <item>
      <instanceId>i-0123456789abcdef0</instanceId>
      <currentState><code>0</code><name>pending</name></currentState>
      <previousState><code>80</code><name>stopped</name></previousState>
    </item>
    <item>
      <instanceId>i-0badc0de</instanceId>
      <currentState><code>16</code><name>running</name></currentState>
      <previousState><code>16</code><name>running</name></previousState>
    </item>
  </instancesSet>
</StartInstancesResponse>"#;
const STOPPED: &str = r#"<StopInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <instancesSet><item><instanceId>i-0123456789abcdef0</instanceId>
    <currentState><code>64</code><name>stopping</name></currentState>
    <previousState><code>16</code><name>running</name></previousState>
  </item></instancesSet>
</StopInstancesResponse>"#;
const NOT_FOUND: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID &apos;i-0123456789abcdef0&apos; does not exist</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"#;
const UNAVAILABLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>Unavailable</Code><Message>The server is overloaded and can&apos;t handle the request.</Message></Error></Errors><RequestID>ea966190</RequestID></Response>"#;

fn xml(status: u16, body: &str) -> Reply {
    Reply { status, body: body.to_owned(), delay: Duration::ZERO }
}

fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop front page".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "reboot the shop".into(),
        status: Status::Failed,
        episode: 4,
        reason: "HTTP 503, expected one of 200".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2026-11-24 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:4:failed:0".into(),
        node: "node-a".into(),
    }
}

/// An action object of type `kind` aimed at `base_url`, with `extra` fields merged in.
fn action(kind: &str, base_url: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut value = json!({
        "type": kind, "region": "us-east-1", "access_key_id": "AKID",
        "secret_access_key": SECRET, "instance_ids": [ID_A, ID_B],
        "api_base_url": base_url, "timeout_ms": 2000,
    });
    for (field, field_value) in extra.as_object().unwrap() {
        value[field] = field_value.clone();
    }
    value
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

fn build(value: serde_json::Value) -> Box<dyn Reaction> {
    parse(value)
        .unwrap()
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap()
}

async fn fire(
    kind: &str,
    fake: &FakeApi,
    extra: serde_json::Value,
) -> Result<Fired, ReactionError> {
    build(action(kind, &fake.base_url(), extra)).fire(&incident()).await
}

#[tokio::test]
async fn reboot_posts_the_signed_query_api_form() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/", vec![xml(200, REBOOTED)]);
    let Ok(ReactionConfig::AwsEc2restart(config)) =
        parse(action("aws-ec2restart", &fake.base_url(), json!({})))
    else {
        panic!("expected an aws-ec2restart config");
    };
    let mut reaction = Ec2Reaction::new(
        Action::Reboot,
        &config.fields(),
        &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap();
    reaction.clock = || time::macros::datetime!(2026-11-24 12:34:56 UTC).into();
    let fired = reaction.fire(&incident()).await.unwrap();
    let detail = format!(
        "HTTP 200, reboot requested for {ID_A}, {ID_B} \
         (request 59dbff89-35bd-4eac-99ed-be587EXAMPLE)"
    );
    assert_eq!(fired, Fired::Executed(detail));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/"));
    assert_eq!(request.query, None);
    let body = format!(
        "Action=RebootInstances&Version=2016-11-15&InstanceId.1={ID_A}&InstanceId.2={ID_B}"
    );
    assert_eq!(String::from_utf8_lossy(&request.body), body);
    assert_eq!(request.header("content-type"), Some(CONTENT_TYPE));
    assert_eq!(request.header("host"), Some(fake.addr.to_string().as_str()));
    assert_eq!(request.header("x-amz-date"), Some("20261124T123456Z"));
    assert_eq!(request.header("x-amz-security-token"), None);
    let authorization = request.header("authorization").unwrap();
    let prefix = "AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/ec2/aws4_request, \
                  SignedHeaders=content-type;host;x-amz-date, Signature=";
    assert!(authorization.starts_with(prefix), "{authorization}");
    let signed = verify_signature(request, SECRET, "20261124/us-east-1/ec2/aws4_request");
    assert_eq!(signed, "content-type;host;x-amz-date");
    assert!(!format!("{reaction:?}").contains(SECRET));
}

#[tokio::test]
async fn start_signs_the_session_token_and_reports_each_state_change() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/", vec![xml(200, STARTED)]);
    let before = SystemTime::now();
    let fired = fire("aws-ec2start", &fake, json!({"session_token": TOKEN})).await.unwrap();
    let detail = format!(
        "HTTP 200, {ID_A}: stopped → pending, {ID_B}: running → running \
         (request 59dbff89-35bd-4eac-99ed-be587EXAMPLE)"
    );
    assert_eq!(fired, Fired::Executed(detail));

    let request = fake.requests().pop().unwrap();
    let body =
        format!("Action=StartInstances&Version=2016-11-15&InstanceId.1={ID_A}&InstanceId.2={ID_B}");
    assert_eq!(String::from_utf8_lossy(&request.body), body);
    assert_eq!(request.header("x-amz-security-token"), Some(TOKEN));
    // `X-Amz-Date` is the signing time in UTC, ISO 8601 basic format.
    let amz_date = request.header("x-amz-date").unwrap();
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let signed_at = time::PrimitiveDateTime::parse(amz_date, format).unwrap().assume_utc();
    let before = time::OffsetDateTime::from(before).replace_nanosecond(0).unwrap();
    assert!(signed_at >= before && signed_at - before < time::Duration::seconds(30), "{amz_date}");
    let scope = format!("{}/us-east-1/ec2/aws4_request", &amz_date[..8]);
    let signed = verify_signature(&request, SECRET, &scope);
    assert_eq!(signed, "content-type;host;x-amz-date;x-amz-security-token");
}

#[tokio::test]
async fn stop_sends_force_only_when_asked() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/", vec![xml(200, STOPPED)]);
    let fired = fire("aws-ec2stop", &fake, json!({"instance_ids": [ID_A]})).await.unwrap();
    let detail = format!(
        "HTTP 200, {ID_A}: running → stopping (request 59dbff89-35bd-4eac-99ed-be587EXAMPLE)"
    );
    assert_eq!(fired, Fired::Executed(detail));
    fire("aws-ec2stop", &fake, json!({"instance_ids": [ID_A], "force": true})).await.unwrap();

    let requests = fake.requests();
    let bodies: Vec<_> = requests.iter().map(|r| String::from_utf8_lossy(&r.body)).collect();
    let plain = format!("Action=StopInstances&Version=2016-11-15&InstanceId.1={ID_A}");
    assert_eq!(bodies, [plain.clone(), format!("{plain}&Force=true")]);
    for request in &requests {
        let scope =
            format!("{}/us-east-1/ec2/aws4_request", &request.header("x-amz-date").unwrap()[..8]);
        verify_signature(request, SECRET, &scope);
    }
}

#[tokio::test]
async fn a_base_url_with_a_path_is_called_and_signed_with_that_path() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/ec2-proxy/", vec![xml(200, REBOOTED)]);
    let base_url = format!("{}/ec2-proxy", fake.base_url());
    let value = action("aws-ec2restart", &base_url, json!({"region": "eu-central-1"}));
    build(value).fire(&incident()).await.unwrap();
    let request = fake.requests().pop().unwrap();
    assert_eq!(request.path, "/ec2-proxy/");
    let scope =
        format!("{}/eu-central-1/ec2/aws4_request", &request.header("x-amz-date").unwrap()[..8]);
    verify_signature(&request, SECRET, &scope);
}

#[tokio::test]
async fn an_ec2_error_is_rejected_quoting_its_code_and_message() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/", vec![xml(400, NOT_FOUND)]);
    let error = fire("aws-ec2stop", &fake, json!({})).await.unwrap_err();
    assert!(matches!(error, ReactionError::Rejected { kind: "aws-ec2stop", status: 400, .. }));
    assert!(!error.is_retryable(), "a 400 is final");
    assert_eq!(
        error.to_string(),
        "aws-ec2stop: target answered HTTP 400 InvalidInstanceID.NotFound: \
         The instance ID 'i-0123456789abcdef0' does not exist"
    );

    // Should an answer ever echo a credential, the error does not repeat it.
    let echo = format!(
        "<Response><Errors><Error><Code>AuthFailure</Code>\
         <Message>bad key {SECRET} or token {TOKEN}</Message>"
    );
    fake.reply("POST", "/", vec![xml(401, &echo)]);
    let error = fire("aws-ec2restart", &fake, json!({"session_token": TOKEN})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "aws-ec2restart: target answered HTTP 401 AuthFailure: bad key *** or token ***"
    );
}

#[tokio::test]
async fn a_503_is_retryable_and_quotes_the_ec2_message() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/", vec![xml(503, UNAVAILABLE)]);
    let error = fire("aws-ec2start", &fake, json!({})).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert_eq!(
        error.to_string(),
        "aws-ec2start: target answered HTTP 503 Unavailable: \
         The server is overloaded and can't handle the request."
    );
    // A 5xx without an EC2 error body is quoted as it came.
    fake.reply("POST", "/", vec![xml(502, "bad gateway")]);
    let error = fire("aws-ec2start", &fake, json!({})).await.unwrap_err();
    assert_eq!(error.to_string(), "aws-ec2start: target answered HTTP 502 bad gateway");
}

#[tokio::test]
async fn a_success_status_without_the_expected_answer_fails() {
    let fake = FakeApi::start().await;
    let refused = REBOOTED.replace("true", "false");
    fake.reply("POST", "/", vec![xml(200, &refused)]);
    let error = fire("aws-ec2restart", &fake, json!({})).await.unwrap_err();
    let ReactionError::Failed { kind: "aws-ec2restart", ref message } = error else {
        panic!("{error:?}")
    };
    assert!(
        message.starts_with("answered HTTP 200 without <return>true</return>: <?xml"),
        "{message}"
    );
    assert!(!error.is_retryable());

    fake.reply("POST", "/", vec![xml(200, "{}")]);
    let error = fire("aws-ec2start", &fake, json!({})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "aws-ec2start: answered HTTP 200 without an instance state change: {}"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_refused_connection_is_a_transport_error() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/", vec![Reply::slow(Duration::from_secs(5))]);
    let error = fire("aws-ec2stop", &fake, json!({"timeout_ms": 200})).await.unwrap_err();
    assert!(matches!(error, ReactionError::Timeout { kind: "aws-ec2stop", timeout_ms: 200 }));
    assert!(error.is_retryable());

    let (_closed, port) = closed_port();
    let value = action("aws-ec2start", &format!("http://127.0.0.1:{port}"), json!({}));
    let error = build(value).fire(&incident()).await.unwrap_err();
    let ReactionError::Transport { kind: "aws-ec2start", ref message } = error else {
        panic!("{error:?}")
    };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(error.is_retryable());
}

#[test]
fn defaults_to_the_regional_endpoint_and_each_type_declares_its_effect() {
    let value = json!({
        "type": "aws-ec2stop", "region": "eu-west-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": SECRET, "instance_ids": [ID_A],
    });
    let Ok(ReactionConfig::AwsEc2stop(config)) = parse(value) else { panic!("aws-ec2stop") };
    assert_eq!(
        (config.api_base_url.as_deref(), config.force, config.timeout_ms),
        (None, false, 10_000)
    );
    assert!(config.session_token.is_none());
    let endpoint = config.fields().validate().unwrap();
    assert_eq!(endpoint.as_str(), "https://ec2.eu-west-1.amazonaws.com/");
    assert_eq!(regional_endpoint("cn-north-1"), "https://ec2.cn-north-1.amazonaws.com.cn");

    let base = "https://ec2.example.com";
    for (kind, effect) in [
        ("aws-ec2restart", Effect::Destructive),
        ("aws-ec2start", Effect::Idempotent),
        ("aws-ec2stop", Effect::Destructive),
    ] {
        let config = parse(action(kind, base, json!({}))).unwrap();
        assert_eq!((config.name(), config.effect()), (kind, effect));
        let reaction = build(action(kind, base, json!({})));
        assert_eq!((reaction.kind(), reaction.effect()), (kind, effect));
        let info = reaction_types().into_iter().find(|t| t.name == kind).unwrap();
        assert_eq!(info.effect, effect);
    }
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let base = "https://ec2.example.com";
    let many: Vec<String> = (0..21).map(|n| format!("i-{n:08x}")).collect();
    let cases = [
        (json!({"region": "US-EAST-1"}), "region"),
        (json!({"region": "useast1"}), "region"),
        (json!({"region": "us-east"}), "region"),
        (json!({"region": "us-east-1/x"}), "region"),
        (json!({"access_key_id": ""}), "access_key_id"),
        (json!({"access_key_id": "AKID KEY"}), "access_key_id"),
        (json!({"secret_access_key": ""}), "secret_access_key"),
        (json!({"secret_access_key": "abc def"}), "secret_access_key"),
        (json!({"session_token": "line\nbreak"}), "session_token"),
        (json!({"session_token": ""}), "session_token"),
        (json!({"instance_ids": []}), "instance_ids"),
        (json!({"instance_ids": many}), "instance_ids"),
        (json!({"instance_ids": ["i-0123"]}), "instance_ids"),
        (json!({"instance_ids": ["i-0123456789ABCDEF0"]}), "instance_ids"),
        (json!({"instance_ids": ["0123456789abcdef0"]}), "instance_ids"),
        (json!({"instance_ids": [ID_A, ID_A]}), "instance_ids"),
        (json!({"api_base_url": "ftp://ec2.example.com"}), "api_base_url"),
        (json!({"api_base_url": "https://ec2.example.com/?a=1"}), "api_base_url"),
        (json!({"timeout_ms": 0}), "timeout_ms"),
        (json!({"timeout_ms": 120_001}), "timeout_ms"),
        (json!({"bogus": 1}), "bogus"),
    ];
    for kind in ["aws-ec2restart", "aws-ec2start", "aws-ec2stop"] {
        assert!(parse(action(kind, base, json!({}))).is_ok(), "{kind}");
        for (extra, field) in &cases {
            let error = parse(action(kind, base, extra.clone())).unwrap_err();
            assert_eq!(error.field, *field, "{kind} {extra}: {error}");
            assert!(!error.message.starts_with(char::is_uppercase), "{error}");
        }
    }
    // Only stopping can be forced.
    for kind in ["aws-ec2restart", "aws-ec2start"] {
        let error = parse(action(kind, base, json!({"force": true}))).unwrap_err();
        assert_eq!(error.field, "force", "{kind}");
    }
    let missing = json!({"type": "aws-ec2start", "region": "us-east-1", "instance_ids": [ID_A]});
    assert_eq!(parse(missing).unwrap_err().field, "access_key_id");
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let base = "https://ec2.example.com";
    let value = action("aws-ec2stop", base, json!({"session_token": TOKEN}));
    let config = parse(value).unwrap();
    let shown = format!(
        "{config:?} {:?}",
        config
            .build(
                &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                    .unwrap()
            )
            .unwrap()
    );
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");

    let value = action("aws-ec2stop", base, json!({"secret_access_key": "s3cret word"}));
    let error = parse(value).unwrap_err();
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[test]
fn schema_lists_every_field_and_marks_secrets_write_only() {
    let common = [
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "instance_ids",
        "api_base_url",
        "timeout_ms",
    ];
    for kind in ["aws-ec2restart", "aws-ec2start", "aws-ec2stop"] {
        let info = reaction_types().into_iter().find(|t| t.name == kind).unwrap();
        assert_eq!(info.secret_fields, ["secret_access_key", "session_token"]);
        let properties = info.schema["properties"].as_object().unwrap();
        let mut expected = common.to_vec();
        if kind == "aws-ec2stop" {
            expected.push("force");
        }
        let mut listed: Vec<&str> = properties.keys().map(String::as_str).collect();
        listed.sort_unstable();
        expected.sort_unstable();
        assert_eq!(listed, expected, "{kind}");
        for field in &expected {
            assert!(properties[*field]["description"].is_string(), "{kind}.{field}");
        }
        for field in info.secret_fields {
            assert_eq!(properties[*field]["writeOnly"], json!(true), "{kind}.{field}");
        }
        assert_eq!(properties["instance_ids"]["minItems"], 1);
        assert_eq!(properties["instance_ids"]["maxItems"], 20);
        let required = json!(["region", "access_key_id", "secret_access_key", "instance_ids"]);
        assert_eq!(info.schema["required"], required, "{kind}");
    }
}
