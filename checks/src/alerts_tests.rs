use serde_json::{Value, json};

use super::*;
use crate::{CheckConfig, CheckType, grafana_webhook};

/// An Alertmanager webhook payload as its documentation (`<webhook_config>`) describes it.
fn alertmanager_payload(alerts: Value) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"InstanceDown\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "cloudroutes",
        "groupLabels": {"alertname": "InstanceDown"},
        "commonLabels": {"alertname": "InstanceDown", "job": "node"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts
    })
}

fn alert(status: &str, instance: &str, fingerprint: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "InstanceDown", "job": "node", "instance": instance},
        "annotations": {"summary": format!("{instance} is down")},
        "startsAt": "2026-11-24T01:00:00Z",
        "endsAt": if status == "resolved" { "2026-11-24T01:05:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint
    })
}

fn rules(value: Value) -> AlertRules {
    let config = CheckConfig::parse(&serde_json::from_value(value).unwrap()).unwrap();
    match config {
        CheckConfig::AlertmanagerWebhook(config) => config.0,
        CheckConfig::GrafanaWebhook(config) => config.0,
        other => panic!("not an alert monitor: {other:?}"),
    }
}

fn default_rules() -> AlertRules {
    rules(json!({"type": "alertmanager-webhook"}))
}

fn updates(rules: &AlertRules, payload: &Value) -> Vec<AlertUpdate> {
    let body = payload.to_string();
    let request =
        IntakeRequest { action: None, content_type: None, body: body.as_bytes(), headers: None };
    match rules.parse(&request).unwrap() {
        Intake::Deliver(Delivery::Alerts(updates)) => updates,
        other => panic!("expected alert updates, got {other:?}"),
    }
}

fn reason(outcome: Option<CheckOutcome>) -> (String, String) {
    match outcome {
        Some(CheckOutcome::Healthy { reason }) => ("healthy".into(), reason),
        Some(CheckOutcome::Failed { reason }) => ("failed".into(), reason),
        Some(CheckOutcome::Unknown { reason }) => ("unknown".into(), reason),
        None => ("none".into(), String::new()),
    }
}

#[test]
fn each_alert_drives_its_own_status_not_the_groups() {
    let rules = default_rules();
    let book = AlertBook::new("alertmanager-webhook", &rules);
    let now = Instant::now();
    let both = alertmanager_payload(json!([
        alert("firing", "web-1", "a1"),
        alert("firing", "web-2", "b2")
    ]));
    let (status, text) = reason(book.apply(&updates(&rules, &both), now));
    assert_eq!(status, "failed");
    assert!(text.starts_with("2 alerts firing"), "{text}");
    // The group still says "firing"; web-1's own status says resolved.
    let one = alertmanager_payload(json!([
        alert("resolved", "web-1", "a1"),
        alert("firing", "web-2", "b2")
    ]));
    let (status, text) = reason(book.apply(&updates(&rules, &one), now));
    assert_eq!(status, "failed");
    assert_eq!(text, "1 alert firing: InstanceDown: web-2 is down");
    let none = alertmanager_payload(json!([alert("resolved", "web-2", "b2")]));
    let (status, text) = reason(book.apply(&updates(&rules, &none), now));
    assert_eq!((status.as_str(), text.as_str()), ("healthy", "no alert firing (2 resolved)"));
}

#[test]
fn resends_and_duplicates_record_nothing() {
    let rules = default_rules();
    let book = AlertBook::new("alertmanager-webhook", &rules);
    let payload = alertmanager_payload(json!([alert("firing", "web-1", "a1")]));
    let now = Instant::now();
    assert_eq!(reason(book.apply(&updates(&rules, &payload), now)).0, "failed");
    assert_eq!(book.apply(&updates(&rules, &payload), now), None, "a resend");
    assert_eq!(book.apply(&updates(&rules, &payload), now), None, "an HA peer's duplicate");
}

#[test]
fn key_labels_join_alerts_whose_fingerprints_differ() {
    let rules = rules(json!({"type": "alertmanager-webhook", "key_labels": ["instance"]}));
    let book = AlertBook::new("alertmanager-webhook", &rules);
    let now = Instant::now();
    let fired = alertmanager_payload(json!([alert("firing", "web-1", "old")]));
    assert_eq!(reason(book.apply(&updates(&rules, &fired), now)).0, "failed");
    let resolved = alertmanager_payload(json!([alert("resolved", "web-1", "new")]));
    let keyed = updates(&rules, &resolved);
    assert_eq!(keyed[0].key, "instance=web-1");
    assert_eq!(reason(book.apply(&keyed, now)).0, "healthy");
}

#[test]
fn match_labels_keep_only_the_monitors_alerts() {
    let rules =
        rules(json!({"type": "alertmanager-webhook", "match_labels": {"instance": "web-2"}}));
    let payload = alertmanager_payload(json!([
        alert("firing", "web-1", "a1"),
        alert("firing", "web-2", "b2")
    ]));
    let kept = updates(&rules, &payload);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].key, "b2");
    let other = alertmanager_payload(json!([alert("firing", "web-1", "a1")]));
    let body = other.to_string();
    let request =
        IntakeRequest { action: None, content_type: None, body: body.as_bytes(), headers: None };
    assert!(matches!(rules.parse(&request).unwrap(), Intake::Ignore(_)));
}

#[tokio::test(start_paused = true)]
async fn a_silent_firing_alert_goes_stale_once_and_is_recorded_unknown() {
    let rules = rules(json!({"type": "alertmanager-webhook", "stale_after_secs": 600}));
    let book = AlertBook::new("alertmanager-webhook", &rules);
    assert_eq!(book.interval(), Some(Duration::from_secs(60)));
    let payload = alertmanager_payload(json!([alert("firing", "web-1", "a1")]));
    book.deliver(&Delivery::Alerts(updates(&rules, &payload)));
    tokio::time::advance(Duration::from_secs(599)).await;
    assert_eq!(book.tick().await, None, "not yet stale");
    book.deliver(&Delivery::Alerts(updates(&rules, &payload))); // a resend refreshes it
    tokio::time::advance(Duration::from_secs(599)).await;
    assert_eq!(book.tick().await, None, "the resend restarted its clock");
    tokio::time::advance(Duration::from_secs(1)).await;
    let (status, text) = reason(book.tick().await);
    assert_eq!(status, "unknown");
    assert!(text.contains("InstanceDown: web-1 is down (a1)") && text.contains("600 s"), "{text}");
    assert_eq!(book.tick().await, None, "marked once");
    assert_eq!(reason(Some(book.run().await)).0, "unknown");
    // The sender speaks again: a resend of "firing" is a change (stale → firing).
    assert_eq!(reason(book.deliver(&Delivery::Alerts(updates(&rules, &payload)))).0, "failed");
}

#[test]
fn a_bad_alert_status_names_the_alert() {
    let payload = alertmanager_payload(json!([
        alert("firing", "web-1", "a1"),
        alert("silenced", "web-2", "b2")
    ]));
    let body = payload.to_string();
    let request =
        IntakeRequest { action: None, content_type: None, body: body.as_bytes(), headers: None };
    let error = default_rules().parse(&request).unwrap_err();
    assert_eq!(error.field, "alerts[1].status");
    let request = IntakeRequest {
        action: None,
        content_type: None,
        body: b"{\"status\":\"firing\"}",
        headers: None,
    };
    assert_eq!(default_rules().parse(&request).unwrap_err().field, "alerts");
}

#[test]
fn rules_are_validated_by_field() {
    let cases = [
        (json!({"type": "alertmanager-webhook", "key_labels": ["in stance"]}), "key_labels[0]"),
        (json!({"type": "alertmanager-webhook", "match_labels": {"1x": "y"}}), "match_labels.1x"),
        (
            json!({"type": "alertmanager-webhook", "stale_after_secs": 2_592_001}),
            "stale_after_secs",
        ),
        (json!({"type": "grafana-webhook", "bogus": 1}), "bogus"),
    ];
    for (value, field) in cases {
        let error =
            CheckConfig::parse(&serde_json::from_value(value.clone()).unwrap()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}");
    }
}

#[test]
fn grafana_unified_and_legacy_payloads() {
    let rules = rules(json!({"type": "grafana-webhook"}));
    let config = grafana_webhook::Config(rules.clone());
    // Grafana's unified alerting webhook payload (documented example, trimmed).
    let unified = json!({
        "receiver": "cloudroutes", "status": "firing", "orgId": 1,
        "alerts": [{
            "status": "firing", "labels": {"alertname": "HighLatency", "team": "shop"},
            "annotations": {"summary": "p99 above 2 s"}, "startsAt": "2026-11-24T01:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://grafana/alerting/1/edit",
            "fingerprint": "57c6d9296de2ad39", "silenceURL": "http://grafana/alerting/silence/new",
            "dashboardURL": "", "panelURL": "", "values": {"B": 2.2}, "valueString": "[ var='B' value=2.2 ]"
        }],
        "groupLabels": {"alertname": "HighLatency"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://grafana/", "version": "1", "groupKey": "{}:{}", "truncatedAlerts": 0,
        "title": "[FIRING:1] HighLatency", "state": "alerting", "message": "…"
    })
    .to_string();
    let request =
        IntakeRequest { action: None, content_type: None, body: unified.as_bytes(), headers: None };
    let Some(Ok(Intake::Deliver(Delivery::Alerts(updates)))) = config.intake(&request) else {
        panic!("unified payload not parsed as alerts");
    };
    assert_eq!(updates[0].key, "57c6d9296de2ad39");
    assert_eq!(updates[0].summary, "HighLatency: p99 above 2 s");
    let legacy =
        json!({"ruleName": "Disk full", "state": "alerting", "title": "[Alerting] Disk full"})
            .to_string();
    let request =
        IntakeRequest { action: None, content_type: None, body: legacy.as_bytes(), headers: None };
    let outcome = config.intake(&request).unwrap().unwrap();
    let reason = "Disk full: alerting".to_owned();
    assert_eq!(outcome, Intake::Result(CheckOutcome::Failed { reason }));
    let paused = json!({"ruleName": "Disk full", "state": "paused"}).to_string();
    let request =
        IntakeRequest { action: None, content_type: None, body: paused.as_bytes(), headers: None };
    assert!(matches!(config.intake(&request).unwrap().unwrap(), Intake::Ignore(_)));
}
