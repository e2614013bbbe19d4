use serde_json::json;

use super::*;
use crate::CheckConfig;

fn heartbeat(period_secs: u64, grace_secs: u64) -> Heartbeat {
    Heartbeat::new(&Config { period_secs, grace_secs }, Instant::now())
}

fn intake(action: Option<&str>, body: &str) -> Result<Intake, ConfigError> {
    parse(&IntakeRequest { action, content_type: None, body: body.as_bytes(), headers: None })
}

fn failed_reason(outcome: Option<CheckOutcome>) -> String {
    match outcome {
        Some(CheckOutcome::Failed { reason }) => reason,
        other => panic!("expected a failed result, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn fails_once_per_period_after_period_plus_grace_without_a_ping() {
    let beat = heartbeat(60, 10);
    assert_eq!(beat.interval(), Some(Duration::from_millis(2500)));
    tokio::time::advance(Duration::from_secs(69)).await;
    assert_eq!(beat.tick().await, None, "still within period + grace");
    assert!(matches!(beat.run().await, CheckOutcome::Healthy { .. }));
    tokio::time::advance(Duration::from_secs(1)).await;
    let reason = failed_reason(beat.tick().await);
    assert_eq!(reason, "no ping for 70 s (period 60 s + grace 10 s)");
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(beat.tick().await, None, "one failed result per period");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(failed_reason(beat.tick().await).starts_with("no ping for 130 s"));
    let healed = beat.deliver(&Delivery::Ping { note: None });
    let reason = "ping received".to_owned();
    assert_eq!(healed, Some(CheckOutcome::Healthy { reason }));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(beat.tick().await, None, "the ping restarted the clock");
}

#[tokio::test(start_paused = true)]
async fn a_started_run_must_ping_within_the_grace() {
    let beat = heartbeat(3600, 30);
    assert_eq!(beat.deliver(&Delivery::Start), None, "start records nothing");
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(beat.tick().await, None);
    tokio::time::advance(Duration::from_secs(1)).await;
    let reason = failed_reason(beat.tick().await);
    assert_eq!(reason, "started 30 s ago and no ping within the grace of 30 s");
    let Some(CheckOutcome::Healthy { reason }) = beat.deliver(&Delivery::Ping { note: None })
    else {
        panic!("a ping heals");
    };
    assert_eq!(reason, "ping received, run took 30.0 s");
}

#[tokio::test(start_paused = true)]
async fn a_reported_failure_holds_until_the_next_ping() {
    let beat = heartbeat(60, 10);
    let reason =
        failed_reason(beat.deliver(&Delivery::Fail { note: Some("backup: disk full".into()) }));
    assert_eq!(reason, "job reported failure: backup: disk full");
    assert_eq!(beat.tick().await, None, "already reported for this period");
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(failed_reason(beat.tick().await), reason, "reported again a period later");
    assert!(matches!(beat.run().await, CheckOutcome::Failed { .. }));
    beat.deliver(&Delivery::Ping { note: None });
    assert!(matches!(beat.run().await, CheckOutcome::Healthy { .. }));
}

#[test]
fn pings_parse_from_the_path_and_body() {
    let note = Some("42 files".to_owned());
    assert_eq!(intake(None, "42 files\n").unwrap(), Intake::Deliver(Delivery::Ping { note }));
    assert_eq!(intake(Some("start"), "").unwrap(), Intake::Deliver(Delivery::Start));
    assert_eq!(intake(Some("fail"), "").unwrap(), Intake::Deliver(Delivery::Fail { note: None }));
    assert_eq!(intake(Some("0"), "").unwrap(), Intake::Deliver(Delivery::Ping { note: None }));
    let note = Some("exit status 3: oops".to_owned());
    assert_eq!(intake(Some("3"), "oops").unwrap(), Intake::Deliver(Delivery::Fail { note }));
    assert_eq!(intake(Some("256"), "").unwrap_err().field, "action");
    assert_eq!(intake(Some("reboot"), "").unwrap_err().field, "action");
}

#[test]
fn config_is_validated_by_field() {
    let cases = [
        (json!({"type": "heartbeat"}), "period_secs"),
        (json!({"type": "heartbeat", "period_secs": 0}), "period_secs"),
        (json!({"type": "heartbeat", "period_secs": 2_678_401}), "period_secs"),
        (json!({"type": "heartbeat", "period_secs": 60, "grace_secs": 2_678_401}), "grace_secs"),
        (json!({"type": "heartbeat", "period_secs": 60, "every": 1}), "every"),
    ];
    for (value, field) in cases {
        let error =
            CheckConfig::parse(&serde_json::from_value(value.clone()).unwrap()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
    }
    let config = CheckConfig::parse(
        &serde_json::from_value(json!({"type": "heartbeat", "period_secs": 300})).unwrap(),
    )
    .unwrap();
    assert!(config.is_passive() && config.is_pingable());
}
