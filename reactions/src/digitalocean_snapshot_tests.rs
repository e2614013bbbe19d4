//! `digitalocean-snapshot`: the name template. Requests and failures are tested with the other
//! DigitalOcean types in `digitalocean_tests.rs`.

use serde_json::{Value, json};

use super::*;
use crate::digitalocean::tests::{TOKEN, action_answer, build, incident, parse};
use crate::test_api::FakeApi;
use crate::{Fired, ReactionConfig};

fn config(fields: Value) -> Value {
    let mut config = json!({"type": "digitalocean-snapshot", "api_token": TOKEN, "droplet_id": 42});
    for (field, value) in fields.as_object().unwrap() {
        config[field] = value.clone();
    }
    config
}

#[tokio::test]
async fn the_default_name_carries_the_monitor_and_the_time() {
    let fake = FakeApi::start().await;
    fake.reply(
        "POST",
        "/v2/droplets/42/actions",
        vec![action_answer(9, "snapshot", "in-progress")],
    );
    let reaction = build(config(json!({"api_base_url": fake.base_url()})));
    let fired = reaction.fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("HTTP 201, action 9 snapshot in-progress".into()));
    let expected =
        json!({"type": "snapshot", "name": "cloudroutes shop front page 2024-05-01T12:30:00Z"});
    assert_eq!(fake.requests()[0].json(), expected);
}

#[tokio::test]
async fn each_run_asks_for_another_snapshot() {
    // Why the type is destructive: nothing on DigitalOcean's side folds two requests into one.
    let fake = FakeApi::start().await;
    let reaction = build(config(json!({"api_base_url": fake.base_url()})));
    fake.reply(
        "POST",
        "/v2/droplets/42/actions",
        vec![action_answer(9, "snapshot", "in-progress")],
    );
    reaction.fire(&incident()).await.unwrap();
    reaction.fire(&incident()).await.unwrap();
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(reaction.effect(), Effect::Destructive);
}

#[test]
fn placeholders_are_replaced_once_each_and_left_in_names() {
    let mut incident = incident();
    assert_eq!(
        snapshot_name("{date}/{monitor}/{date}", &incident),
        "2024-05-01T12:30:00Z/shop front page/2024-05-01T12:30:00Z"
    );
    assert_eq!(snapshot_name("before-fix", &incident), "before-fix");
    incident.monitor_name = "weird {date} name".into();
    assert_eq!(snapshot_name("{monitor}", &incident), "weird {date} name");
    // A time in another offset is written in UTC.
    incident.at = time::macros::datetime!(2024-05-01 14:30:00 +02:00);
    assert_eq!(snapshot_name("{date}", &incident), "2024-05-01T12:30:00Z");
}

#[test]
fn templates_with_unknown_placeholders_or_bad_lengths_are_rejected() {
    let bad = [
        json!(""),
        json!("   "),
        json!("{host}-{date}"),
        json!("{monitor"),
        json!("a}b"),
        json!("{Monitor}"),
        json!("x".repeat(256)),
        json!("line\nbreak"),
        json!(7),
    ];
    for template in bad {
        let error = parse(config(json!({"snapshot_name": template}))).unwrap_err();
        assert_eq!(error.field, "snapshot_name", "{template}: {error}");
    }
    let unknown = parse(config(json!({"snapshot_name": "{host}"}))).unwrap_err();
    assert!(unknown.message.contains("`{host}`"), "{unknown}");
    let longest = "é".repeat(255);
    assert!(parse(config(json!({"snapshot_name": longest}))).is_ok());
}

#[test]
fn the_default_template_is_stored_and_shown_in_the_schema() {
    let Ok(ReactionConfig::DigitaloceanSnapshot(parsed)) = parse(config(json!({}))) else {
        panic!("expected a digitalocean-snapshot config");
    };
    assert_eq!(parsed.snapshot_name, "cloudroutes {monitor} {date}");
    let types = crate::reaction_types();
    let info = types.iter().find(|t| t.name == "digitalocean-snapshot").unwrap();
    let property = &info.schema["properties"]["snapshot_name"];
    assert_eq!(property["default"], json!("cloudroutes {monitor} {date}"));
    assert!(property["description"].as_str().unwrap().contains("{date}"));
}
