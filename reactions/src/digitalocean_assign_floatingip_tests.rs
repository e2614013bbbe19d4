//! `digitalocean-assign-floatingip`: the IP check and the assign answer. Requests and failures
//! are tested with the other DigitalOcean types in `digitalocean_tests.rs`.

use serde_json::{Value, json};

use super::*;
use crate::digitalocean::tests::{TOKEN, build, incident, parse};
use crate::test_api::{FakeApi, Reply};
use crate::{Fired, ReactionError};

fn config(floating_ip: Value) -> Value {
    json!({
        "type": "digitalocean-assign-floatingip", "api_token": TOKEN,
        "floating_ip": floating_ip, "droplet_id": 758_604_968,
    })
}

#[tokio::test]
async fn assigns_the_ip_and_reports_the_assign_ip_action() {
    let fake = FakeApi::start().await;
    // The answer as the API reference's example gives it.
    let answer = json!({"action": {
        "id": 72_531_856, "status": "completed", "type": "assign_ip",
        "started_at": "2015-11-12T17:51:03Z", "completed_at": "2015-11-12T17:51:14Z",
        "resource_id": 758_604_968, "resource_type": "floating_ip", "region_slug": "nyc3",
    }});
    fake.reply("POST", "/v2/floating_ips/45.55.96.47/actions", vec![Reply::json(201, answer)]);
    let mut value = config(json!("45.55.96.47"));
    value["api_base_url"] = json!(fake.base_url());
    let reaction = build(value);
    let fired = reaction.fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("HTTP 201, action 72531856 assign_ip completed".into()));
    assert_eq!(fake.requests()[0].json(), json!({"type": "assign", "droplet_id": 758_604_968}));
    assert_eq!(reaction.effect(), Effect::Idempotent);
}

#[tokio::test]
async fn an_unknown_ip_is_rejected_quoting_the_message() {
    let fake = FakeApi::start().await;
    let answer =
        json!({"id": "not_found", "message": "The resource you requested could not be found."});
    fake.reply("POST", "/v2/floating_ips/45.55.96.47/actions", vec![Reply::json(404, answer)]);
    let mut value = config(json!("45.55.96.47"));
    value["api_base_url"] = json!(fake.base_url());
    let error = build(value).fire(&incident()).await.unwrap_err();
    let ReactionError::Rejected { status: 404, ref body, .. } = error else { panic!("{error:?}") };
    assert_eq!(body, "The resource you requested could not be found.");
}

#[test]
fn only_public_ipv4_addresses_are_accepted() {
    for ip in ["45.55.96.47", "167.99.1.2"] {
        assert!(parse(config(json!(ip))).is_ok(), "{ip}");
    }
    let bad = ["", "45.55.96", "45.55.96.470", "2604:a880::1", "10.0.0.1", "127.0.0.1", "0.0.0.0"];
    for ip in bad {
        let error = parse(config(json!(ip))).unwrap_err();
        assert_eq!(error.field, "floating_ip", "{ip}: {error}");
    }
    let missing = parse(
        json!({"type": "digitalocean-assign-floatingip", "api_token": TOKEN, "droplet_id": 1}),
    );
    assert_eq!(missing.unwrap_err().field, "floating_ip");
    let private = parse(config(json!("192.168.1.5"))).unwrap_err();
    assert!(private.message.contains("not a public address"), "{private}");
}
