//! Fuzz targets of every webhook payload parser, through the public intake: `CheckConfig`
//! of each webhook type (generic `webhook`, Datadog, Alertmanager, Grafana, Papertrail,
//! Logentries, Slack, heartbeat), and the shared body helpers of `intake`.
//!
//! Each type gets arbitrary bodies (bytes, text, JSON, cut JSON, deep nesting) with arbitrary
//! actions and content types, and its sender's real payload with fields mutated (wrong types,
//! huge numbers, odd unicode, removed fields, deep nesting). Properties: no panic; an error
//! names a field and says something; no error repeats the monitor's secret (Slack's token);
//! reasons and notes stay short, one line. Budget: `PROPTEST_CASES`, `FUZZ_SECONDS`
//! (`scripts/fuzz.sh`).

use cloudroutes_checks::intake::{MAX_REASON_CHARS, form_body, json_body, payload_json};
use cloudroutes_checks::{CheckConfig, Delivery, Intake, IntakeError, IntakeRequest};
use cloudroutes_engine::fuzzing::{self, body_bytes, mutated, odd_string};
use cloudroutes_engine::{CheckOutcome, PluginSpec};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

/// The Slack monitor's verification token: no answer may repeat it.
const SLACK_TOKEN: &str = "fuzzSlackToken9f2c41d7";

const FORM: &str = "application/x-www-form-urlencoded";

fn config(check: Value) -> CheckConfig {
    let spec: PluginSpec = serde_json::from_value(check).expect("a check object");
    CheckConfig::parse(&spec).expect("a valid webhook check")
}

/// Every webhook type, with a valid config.
fn webhook_types() -> Vec<(&'static str, CheckConfig)> {
    vec![
        ("webhook", config(json!({"type": "webhook"}))),
        ("datadog-webhook", config(json!({"type": "datadog-webhook"}))),
        ("alertmanager-webhook", config(json!({"type": "alertmanager-webhook"}))),
        (
            "alertmanager-webhook-labels",
            config(json!({"type": "alertmanager-webhook", "key_labels": ["alertname", "instance"],
                          "match_labels": {"job": "node"}})),
        ),
        ("grafana-webhook", config(json!({"type": "grafana-webhook"}))),
        ("papertrail-webhook", config(json!({"type": "papertrail-webhook"}))),
        ("logentries-webhook", config(json!({"type": "logentries-webhook"}))),
        ("slack-webhook", config(json!({"type": "slack-webhook", "token": SLACK_TOKEN}))),
        ("heartbeat", config(json!({"type": "heartbeat", "period_secs": 60}))),
    ]
}

fn alertmanager() -> Value {
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"InstanceDown\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "cloudroutes",
        "groupLabels": {"alertname": "InstanceDown"},
        "commonLabels": {"alertname": "InstanceDown", "job": "node"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "InstanceDown", "job": "node", "instance": "web-1"},
            "annotations": {"summary": "web-1 is down"},
            "startsAt": "2026-11-24T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1b2c3"
        }, {
            "status": "resolved",
            "labels": {"alertname": "InstanceDown", "job": "node", "instance": "web-2"},
            "annotations": {}, "startsAt": "2026-11-24T01:00:00Z",
            "endsAt": "2026-11-24T01:05:00Z", "fingerprint": "d4e5f6"
        }]
    })
}

fn papertrail() -> Value {
    json!({
        "events": [{"id": 7_711_561_783_320_576_u64, "source_name": "web-1", "program": "nginx",
                    "severity": "Error", "message": "upstream timed out"}],
        "saved_search": {"id": 42, "name": "Errors", "query": "error"},
        "max_id": "7711582041804800", "min_id": "7711561783320576"
    })
}

fn logentries() -> Value {
    json!({
        "alert": {"name": "500 errors", "type": "pattern", "id": "a1"},
        "host": {"name": "web-1", "hostname": "web-1.internal"}, "log": {"name": "nginx access"},
        "event": {"t": 1_763_946_000_000_u64, "m": "GET /cart 500"},
        "matches": [{"t": 1_763_946_000_000_u64, "m": "GET /cart 500"}]
    })
}

/// Each sender's own payload, as JSON; forms are built from it by [`as_body`].
fn sample(kind: &str) -> Value {
    match kind {
        "webhook" => json!({"action": "failed", "reason": "disk full", "check_key": "k"}),
        "datadog-webhook" => json!({
            "body": "%%%\nCPU load is 97% on host:web-1\n%%%", "last_updated": "1700000000000",
            "event_type": "query_alert_monitor", "title": "[Triggered] CPU high on web-1",
            "alert_transition": "Triggered", "org": {"id": "123456", "name": "Shop"}
        }),
        "grafana-webhook" => json!({
            "receiver": "cloudroutes", "status": "firing", "orgId": 1,
            "alerts": alertmanager()["alerts"].clone(),
            "state": "alerting", "ruleName": "CPU", "title": "[FIRING:1] CPU"
        }),
        "papertrail-webhook" => papertrail(),
        "logentries-webhook" => logentries(),
        "slack-webhook" => json!({"token": SLACK_TOKEN, "team_id": "T0001",
            "user_name": "steve", "command": "/cloudroutes", "text": "false db-1 is down"}),
        "heartbeat" => json!("job finished in 12 s"),
        _ => alertmanager(),
    }
}

/// The body a sender of `kind` posts for `payload`, with its content type.
fn as_body(kind: &str, payload: &Value) -> (Vec<u8>, Option<&'static str>) {
    match (kind, payload) {
        ("slack-webhook", Value::Object(map)) => {
            let pairs: Vec<(String, String)> = map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect();
            (serde_urlencoded::to_string(pairs).unwrap_or_default().into_bytes(), Some(FORM))
        }
        ("papertrail-webhook", _) => {
            let form = serde_urlencoded::to_string([("payload", payload.to_string())]);
            (form.unwrap_or_default().into_bytes(), Some(FORM))
        }
        ("heartbeat", Value::String(text)) => (text.clone().into_bytes(), Some("text/plain")),
        _ => (payload.to_string().into_bytes(), Some("application/json")),
    }
}

fn action() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        2 => prop_oneof![
            Just("failed"), Just("healthy"), Just("status"), Just("true"), Just("false"),
            Just("start"), Just("fail"), Just("ping"), Just("0"), Just("1"), Just("255"),
            Just("256"), Just("999"), Just("-1"), Just("")
        ]
        .prop_map(|a| Some(a.to_owned())),
        1 => odd_string().prop_map(Some),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some(FORM.to_owned())),
        Just(Some(format!("  {FORM}; charset=utf-8"))),
        Just(Some("text/plain".to_owned())),
        odd_string().prop_map(Some),
    ]
}

/// The properties every answer of every parser holds.
fn check_answer(kind: &str, answer: &Result<Intake, IntakeError>) -> Result<(), TestCaseError> {
    let short = |text: &str, extra: usize| {
        text.chars().count() <= MAX_REASON_CHARS + 1 + extra && !text.contains(['\n', '\r'])
    };
    match answer {
        Ok(Intake::Result(outcome)) => {
            let reason = match outcome {
                CheckOutcome::Healthy { reason }
                | CheckOutcome::Failed { reason }
                | CheckOutcome::Unknown { reason } => reason,
            };
            prop_assert!(short(reason, 0), "{kind}: long or multi-line reason {reason:?}");
            prop_assert!(!reason.contains(SLACK_TOKEN), "{kind}: secret in reason");
        }
        Ok(Intake::Ignore(reason)) => {
            prop_assert!(short(reason, 100), "{kind}: long ignore reason {reason:?}");
        }
        Ok(Intake::Deliver(Delivery::Ping { note } | Delivery::Fail { note })) => {
            let note = note.as_deref().unwrap_or_default();
            prop_assert!(short(note, 32), "{kind}: long note {note:?}");
        }
        Ok(Intake::Deliver(Delivery::Alerts(updates))) => {
            for update in updates {
                prop_assert!(short(&update.summary, 0), "{kind}: long summary {update:?}");
            }
        }
        Ok(Intake::Deliver(Delivery::Start) | Intake::Status) => {}
        Err(IntakeError::Invalid(error)) => {
            prop_assert!(!error.field.is_empty(), "{kind}: error names no field: {error:?}");
            prop_assert!(!error.message.is_empty(), "{kind}: empty message: {error:?}");
            prop_assert!(!error.to_string().contains(SLACK_TOKEN), "{kind}: secret: {error}");
            prop_assert!(
                error.message.len() < 4_096,
                "{kind}: huge message: {}",
                error.message.len()
            );
        }
        Err(IntakeError::Denied(message)) => {
            prop_assert_eq!(kind, "slack-webhook", "only Slack denies: {}", message);
            prop_assert!(!message.contains(SLACK_TOKEN), "{kind}: secret in {message}");
        }
    }
    Ok(())
}

fn intake(
    config: &CheckConfig,
    action: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Intake, IntakeError> {
    let request = IntakeRequest { action, content_type, body, headers: None };
    match config.intake(&request) {
        Some(answer) => answer,
        None => panic!("{} takes webhooks", config.name()),
    }
}

#[test]
fn fuzz_intake_arbitrary_bodies() {
    let types = webhook_types();
    let input = (any::<prop::sample::Index>(), action(), content_type(), body_bytes());
    fuzzing::run("intake_arbitrary_bodies", input, |(which, action, content_type, body)| {
        let (kind, config) = which.get(&types);
        let answer = intake(config, action.as_deref(), content_type.as_deref(), &body);
        check_answer(kind, &answer)
    });
}

#[test]
fn fuzz_intake_mutated_payloads() {
    let types = webhook_types();
    let input = any::<prop::sample::Index>().prop_flat_map(|which| {
        let index = which.index(webhook_types().len());
        let kind = webhook_types()[index].0;
        (Just(index), mutated(sample(kind)), action())
    });
    fuzzing::run("intake_mutated_payloads", input, |(index, payload, action)| {
        let (kind, config) = &types[index];
        let (body, content_type) = as_body(kind, &payload);
        let answer = intake(config, action.as_deref(), content_type, &body);
        check_answer(kind, &answer)
    });
}

#[test]
fn the_sample_payloads_are_accepted() {
    for (kind, config) in webhook_types() {
        let (body, content_type) = as_body(kind, &sample(kind));
        let answer = intake(&config, None, content_type, &body);
        assert!(answer.is_ok(), "{kind}: {answer:?}");
    }
}

#[test]
fn fuzz_intake_body_helpers() {
    let input = (body_bytes(), content_type());
    fuzzing::run("intake_body_helpers", input, |(body, content_type)| {
        let request = IntakeRequest {
            action: None,
            content_type: content_type.as_deref(),
            body: &body,
            headers: None,
        };
        for error in [
            json_body::<Value>(&request).err(),
            form_body::<std::collections::BTreeMap<String, String>>(&request).err(),
            payload_json(&request).err(),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(!error.field.is_empty(), "error names no field: {error:?}");
        }
        // A JSON body that parses is the same value again (round trip).
        if let Ok(value) = json_body::<Value>(&request) {
            let again =
                serde_json::to_vec(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let request =
                IntakeRequest { action: None, content_type: None, body: &again, headers: None };
            prop_assert_eq!(json_body::<Value>(&request).ok(), Some(value));
        }
        Ok(())
    });
}
