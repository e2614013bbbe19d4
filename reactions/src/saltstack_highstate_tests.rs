use serde_json::{Value, json};

use super::*;
use crate::ReactionConfig;
use crate::saltstack::tests::{assert_lowstate, build, incident, login_ok, parse, returns, spec};
use crate::test_api::FakeApi;

async fn fake_with(minions: Value) -> FakeApi {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/login", vec![login_ok()]);
    fake.reply("POST", "/", vec![returns(minions)]);
    fake
}

fn state(result: bool, changed: bool, id: &str, run_num: u64) -> Value {
    let changes = if changed { json!({"diff": "New file"}) } else { json!({}) };
    json!({
        "result": result, "changes": changes, "__id__": id, "__run_num__": run_num,
        "comment": if result { "ok" } else { "One or more requisite failed" },
        "name": id, "duration": 12.5, "start_time": "12:30:01.000000",
    })
}

#[tokio::test]
async fn applies_the_highstate_and_counts_states_and_changes() {
    let fake = fake_with(json!({
        "web1": {
            "pkg_|-nginx_|-nginx_|-installed": state(true, false, "nginx", 0),
            "file_|-site_|-/etc/nginx/sites-enabled/shop_|-managed": state(true, true, "site", 1),
        },
        "web2": {
            "pkg_|-nginx_|-nginx_|-installed": state(true, true, "nginx", 0),
            "file_|-site_|-/etc/nginx/sites-enabled/shop_|-managed": state(true, true, "site", 1),
        },
    }))
    .await;
    let reaction = build(spec(KIND, &fake, json!({"target": "web[12]", "tgt_type": "pcre"})));
    let fired = reaction.fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("state.highstate on web1, web2: 4 states, 3 changed".into()));
    let command = json!({
        "client": "local", "tgt": "web[12]", "tgt_type": "pcre", "fun": "state.highstate", "arg": [],
    });
    assert_lowstate(&fake.requests()[1], &command);
}

#[tokio::test]
async fn failed_states_fail_the_run_naming_their_ids() {
    let fake = fake_with(json!({
        "web1": {
            "pkg_|-nginx_|-nginx_|-installed": state(true, false, "nginx", 0),
        },
        "web2": {
            "pkg_|-nginx_|-nginx_|-installed": state(true, false, "nginx", 0),
            "service_|-nginx-running_|-nginx_|-running": state(false, false, "nginx-running", 2),
            "cmd_|-warm-cache_|-curl localhost_|-run": state(false, false, "warm-cache", 3),
        },
    }))
    .await;
    let error = build(spec(KIND, &fake, json!({}))).fire(&incident()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "saltstack-highstate: state.highstate failed on 1 of 2 minions: \
         web2: states nginx-running, warm-cache failed (One or more requisite failed)"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn errors_instead_of_results_fail_the_run() {
    let fake = fake_with(json!({
        "web1": ["Rendering SLS 'base:nginx' failed: could not find expected ':'; line 4"],
        "web2": ["The function \"state.highstate\" is running as PID 4242 and was started at 2024, May 01 12:29:58.000000 with jid 20240501122958000000"],
    }))
    .await;
    let error = build(spec(KIND, &fake, json!({}))).fire(&incident()).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("web1: Rendering SLS 'base:nginx' failed"), "{message}");
    assert!(
        message.contains("web2: The function \"state.highstate\" is running as PID 4242"),
        "{message}"
    );
}

#[test]
fn is_idempotent_with_a_longer_default_timeout() {
    let value = json!({
        "type": KIND, "api_base_url": "https://salt.internal:8000", "username": "u",
        "password": "p", "target": "web*",
    });
    let config = parse(value.clone()).unwrap();
    let ReactionConfig::SaltstackHighstate(ref highstate) = config else { panic!() };
    assert_eq!(highstate.timeout_ms, 60_000);
    assert_eq!(config.effect(), Effect::Idempotent);
    let reaction = config
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap();
    assert_eq!((reaction.kind(), reaction.effect()), (KIND, Effect::Idempotent));
    let mut with_fun = value;
    with_fun["fun"] = json!("state.apply");
    assert_eq!(parse(with_fun).unwrap_err().field, "fun");
}
