use serde_json::{Value, json};

use super::*;
use crate::saltstack::tests::{assert_lowstate, build, incident, login_ok, parse, returns, spec};
use crate::test_api::FakeApi;

async fn fake_with(minions: Value) -> FakeApi {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/login", vec![login_ok()]);
    fake.reply("POST", "/", vec![returns(minions)]);
    fake
}

#[tokio::test]
async fn runs_the_function_with_its_arguments_as_given() {
    let fake = fake_with(json!({"db1": {"pid": 9, "retcode": 0}, "db2": true})).await;
    let extra = json!({
        "fun": "pkg.install", "args": ["nginx", 2, {"refresh": true}],
        "target": "db1,db2", "tgt_type": "list",
    });
    let fired = build(spec(KIND, &fake, extra)).fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("pkg.install ran on db1, db2".into()));
    let command = json!({
        "client": "local", "tgt": "db1,db2", "tgt_type": "list",
        "fun": "pkg.install", "arg": ["nginx", 2, {"refresh": true}],
    });
    assert_lowstate(&fake.requests()[1], &command);
}

#[tokio::test]
async fn no_arguments_sends_an_empty_arg_list() {
    let fake = fake_with(json!({"web1": true})).await;
    build(spec(KIND, &fake, json!({"fun": "test.ping"}))).fire(&incident()).await.unwrap();
    let command = json!({
        "client": "local", "tgt": "web*", "tgt_type": "glob", "fun": "test.ping", "arg": [],
    });
    assert_lowstate(&fake.requests()[1], &command);
}

#[tokio::test]
async fn salt_errors_failed_states_and_exit_codes_fail_the_run() {
    let missing =
        fake_with(json!({"web1": "'nginx.reload' is not available.", "web2": true})).await;
    let error = build(spec(KIND, &missing, json!({"fun": "nginx.reload"})))
        .fire(&incident())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "saltstack-generic: nginx.reload failed on 1 of 2 minions: web1: 'nginx.reload' is not available."
    );

    let states = json!({"web1": {"service_|-nginx_|-nginx_|-running": {
        "result": false, "comment": "Service nginx is not available", "changes": {}, "__id__": "nginx",
    }}});
    let failed_state = fake_with(states).await;
    let error = build(spec(KIND, &failed_state, json!({"fun": "state.sls", "args": ["web"]})))
        .fire(&incident())
        .await
        .unwrap_err();
    assert!(
        error.to_string().ends_with("web1: state nginx failed (Service nginx is not available)"),
        "{error}"
    );

    let exit = fake_with(
        json!({"web1": {"pid": 1, "retcode": 2, "stdout": "", "stderr": "no such file"}}),
    )
    .await;
    let error = build(spec(KIND, &exit, json!({"fun": "cmd.script", "args": ["salt://fix.sh"]})))
        .fire(&incident())
        .await
        .unwrap_err();
    assert!(error.to_string().ends_with("web1: retcode 2: no such file"), "{error}");
}

#[tokio::test]
async fn a_false_or_plain_return_is_a_result_not_a_failure() {
    let fake = fake_with(json!({"web1": false, "web2": "active", "web3": {"changes": {}}})).await;
    let fired = build(spec(KIND, &fake, json!({"fun": "service.status", "args": ["nginx"]})))
        .fire(&incident())
        .await
        .unwrap();
    assert_eq!(fired, Fired::Executed("service.status ran on web1, web2, web3".into()));
}

#[test]
fn fun_must_be_module_dot_function_and_args_few() {
    let base = json!({
        "type": KIND, "api_base_url": "https://salt.internal:8000", "username": "u",
        "password": "p", "target": "web*",
    });
    let with = |fun: Value, args: Value| {
        let mut spec = base.clone();
        spec["fun"] = fun;
        spec["args"] = args;
        spec
    };
    for fun in ["cmd", "cmd.", ".run", "cmd.run.all", "cmd run", "1cmd.run", "cmd.run;", "cmd.rün"]
    {
        let error = parse(with(json!(fun), json!([]))).unwrap_err();
        assert_eq!(error.field, "fun", "{fun}: {error}");
        assert!(error.message.contains("module.function"), "{error}");
    }
    assert_eq!(parse(base.clone()).unwrap_err().field, "fun");
    let too_many = parse(with(json!("test.arg"), json!(vec![1; 33]))).unwrap_err();
    assert_eq!(too_many.field, "args");
    assert_eq!(parse(with(json!("test.arg"), json!({"a": 1}))).unwrap_err().field, "args");
    for fun in ["test.ping", "state.sls", "_custom.do_it", "pkg.install2"] {
        let config = parse(with(json!(fun), json!(vec![1; 32]))).unwrap();
        assert_eq!(config.effect(), Effect::Destructive, "{fun}");
    }
}
