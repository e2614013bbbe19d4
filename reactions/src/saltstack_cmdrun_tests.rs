use serde_json::{Value, json};

use super::*;
use crate::ReactionConfig;
use crate::saltstack::tests::{
    assert_login, assert_lowstate, build, incident, login_ok, parse, returns, spec,
};
use crate::test_api::FakeApi;

fn reaction(fake: &FakeApi, command: &str) -> Box<dyn Reaction> {
    build(spec(KIND, fake, json!({"command": command})))
}

async fn fake_with(minions: Value) -> FakeApi {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/login", vec![login_ok()]);
    fake.reply("POST", "/", vec![returns(minions)]);
    fake
}

#[tokio::test]
async fn runs_the_command_with_cmd_run_all_and_reports_the_minions() {
    let ok = json!({"pid": 81, "retcode": 0, "stdout": "", "stderr": ""});
    let fake = fake_with(json!({"web1": ok, "web2": ok})).await;
    let fired = reaction(&fake, "systemctl restart 'php8.2-fpm'").fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("cmd.run_all exited 0 on web1, web2".into()));
    let requests = fake.requests();
    assert_login(&requests[0], "cloudroutes", "pam");
    let command = json!({
        "client": "local", "tgt": "web*", "tgt_type": "glob",
        "fun": "cmd.run_all", "arg": ["systemctl restart 'php8.2-fpm'"],
    });
    assert_lowstate(&requests[1], &command);
}

#[tokio::test]
async fn a_non_zero_exit_fails_naming_the_minion_its_retcode_and_stderr() {
    let fake = fake_with(json!({
        "web1": {"pid": 81, "retcode": 0, "stdout": "done", "stderr": ""},
        "web2": {"pid": 82, "retcode": 5, "stdout": "", "stderr": "Failed to restart nginx.service:\n  Unit not found."},
        "web3": {"pid": 83, "retcode": 1, "stdout": "half done", "stderr": ""},
    }))
    .await;
    let error = reaction(&fake, "systemctl restart nginx").fire(&incident()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "saltstack-cmdrun: cmd.run_all failed on 2 of 3 minions: \
         web2: retcode 5: Failed to restart nginx.service: Unit not found.; web3: retcode 1: half done"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_salt_error_or_a_shapeless_return_fails() {
    let fake = fake_with(json!({
        "web1": "'cmd.run_all' is not available.",
        "web2": "some text",
    }))
    .await;
    let error = reaction(&fake, "true").fire(&incident()).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("web1: 'cmd.run_all' is not available."), "{message}");
    assert!(message.contains("web2: unexpected return some text"), "{message}");
}

#[test]
fn is_destructive_and_checks_the_command() {
    let fake_url = "https://salt.internal:8000";
    let base = json!({
        "type": KIND, "api_base_url": fake_url, "username": "u", "password": "p", "target": "web*",
    });
    let with = |command: Value| {
        let mut spec = base.clone();
        spec["command"] = command;
        spec
    };
    for (value, field) in [
        (base.clone(), "command"),
        (with(json!("")), "command"),
        (with(json!("rm -rf /tmp/x\0")), "command"),
        (with(json!("x".repeat(4097))), "command"),
        (with(json!(["ls"])), "command"),
    ] {
        assert_eq!(parse(value.clone()).unwrap_err().field, field, "{value}");
    }
    let config = parse(with(json!("systemctl restart nginx"))).unwrap();
    assert!(matches!(config, ReactionConfig::SaltstackCmdrun(_)));
    assert_eq!(config.effect(), Effect::Destructive);
    let reaction = config
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap();
    assert_eq!((reaction.kind(), reaction.effect()), (KIND, Effect::Destructive));
}
