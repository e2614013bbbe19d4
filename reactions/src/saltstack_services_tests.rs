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

#[tokio::test]
async fn each_action_calls_its_service_function_with_the_service() {
    for (action, fun) in
        [("restart", "service.restart"), ("start", "service.start"), ("stop", "service.stop")]
    {
        let fake = fake_with(json!({"web1": true, "web2": true})).await;
        let extra = json!({"action": action, "service": "php8.2-fpm"});
        let fired = build(spec(KIND, &fake, extra)).fire(&incident()).await.unwrap();
        assert_eq!(fired, Fired::Executed(format!("{fun} php8.2-fpm on web1, web2")));
        let command = json!({
            "client": "local", "tgt": "web*", "tgt_type": "glob", "fun": fun, "arg": ["php8.2-fpm"],
        });
        assert_lowstate(&fake.requests()[1], &command);
    }
}

#[tokio::test]
async fn false_or_an_error_fails_naming_the_minions() {
    let fake = fake_with(json!({
        "web1": true,
        "web2": false,
        "web3": "ERROR: Failed to restart nginx.service: Unit nginx.service not found.",
    }))
    .await;
    let extra = json!({"action": "restart", "service": "nginx"});
    let error = build(spec(KIND, &fake, extra)).fire(&incident()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "saltstack-services: service.restart failed on 2 of 3 minions: web2: answered false for \
         nginx; web3: ERROR: Failed to restart nginx.service: Unit nginx.service not found."
    );
    assert!(!error.is_retryable());
}

#[test]
fn the_action_decides_the_effect() {
    let base = json!({
        "type": KIND, "api_base_url": "https://salt.internal:8000", "username": "u",
        "password": "p", "target": "web*", "service": "nginx",
    });
    for (action, effect) in [
        ("restart", Effect::Destructive),
        ("start", Effect::Idempotent),
        ("stop", Effect::Destructive),
    ] {
        let mut value = base.clone();
        value["action"] = json!(action);
        let config = parse(value).unwrap();
        assert!(matches!(config, ReactionConfig::SaltstackServices(_)));
        assert_eq!(config.effect(), effect, "{action}");
        let reaction = config
            .build(
                &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(reaction.effect(), effect, "{action}");
    }
    assert_eq!(<Config as crate::ReactionType>::EFFECT, Effect::Destructive);
}

#[test]
fn rejects_bad_actions_and_service_names() {
    let base = json!({
        "type": KIND, "api_base_url": "https://salt.internal:8000", "username": "u",
        "password": "p", "target": "web*", "action": "restart", "service": "nginx",
    });
    let with = |key: &str, value: Value| {
        let mut spec = base.clone();
        spec[key] = value;
        spec
    };
    let without = |key: &str| {
        let mut spec = base.clone();
        spec.as_object_mut().unwrap().remove(key);
        spec
    };
    let cases = [
        (without("action"), "action"),
        (with("action", json!("reload")), "action"),
        (with("action", json!("Restart")), "action"),
        (without("service"), "service"),
        (with("service", json!("")), "service"),
        (with("service", json!("nginx; reboot")), "service"),
        (with("service", json!("nginx php")), "service"),
        (with("service", json!("--now")), "service"),
        (with("service", json!("x".repeat(257))), "service"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
    }
    for service in ["nginx", "getty@tty1", "php8.2-fpm", "docker.service", "a:b+c_d"] {
        assert!(parse(with("service", json!(service))).is_ok(), "{service}");
    }
}
