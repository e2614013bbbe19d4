//! The salt-api flow every `saltstack-*` type shares (login, lowstate, errors, config), run
//! through `saltstack-cmdrun`; and helpers for the per-type tests.
//!
//! Request and answer shapes from the rest_cherrypy docs:
//! <https://docs.saltproject.io/en/latest/ref/netapi/all/salt.netapi.rest_cherrypy.html>
//! (`Login`: `POST /login`, `{"return": [{"token", "expire", "start", "user", "eauth",
//! "perms"}]}`; the root URL: `POST /` with `X-Auth-Token` and a list of lowstate commands,
//! `{"return": [{<minion>: <return>}]}`).

use std::time::{Duration, Instant};

use cloudroutes_engine::{Method, MonitorId, PluginSpec, ReactionId, Status};
use serde_json::{Value, json};

use super::*;
use crate::test_api::{FakeApi, Recorded, Reply, closed_port};
use crate::{Fired, Incident, Reaction, ReactionConfig, reaction_types};

/// The token the fake salt-api hands out.
pub(crate) const TOKEN: &str = "6a1f5c0e9d3b7a2c4e8f0d1b3a5c7e9f2b4d6a8c";
/// The salt-api password of the tests.
pub(crate) const PASSWORD: &str = "s4lt-api-pa55";

pub(crate) fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop front page".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "fix the web tier".into(),
        status: Status::Failed,
        episode: 4,
        reason: "HTTP 503, expected one of 200".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:4:failed:0".into(),
        node: "node-a".into(),
    }
}

/// A successful login answer, as salt-api sends it.
pub(crate) fn login_ok() -> Reply {
    Reply::json(
        200,
        json!({"return": [{
            "token": TOKEN, "expire": 1_714_609_800.25, "start": 1_714_566_600.25,
            "user": "cloudroutes", "eauth": "pam", "perms": [".*", "@runner"],
        }]}),
    )
}

/// A lowstate answer with `minions`.
pub(crate) fn returns(minions: Value) -> Reply {
    Reply::json(200, json!({"return": [minions]}))
}

/// A `kind` action object on `fake` with the common fields, plus `extra`.
pub(crate) fn spec(kind: &str, fake: &FakeApi, extra: Value) -> Value {
    let mut spec = json!({
        "type": kind, "api_base_url": fake.base_url(), "username": "cloudroutes",
        "password": PASSWORD, "target": "web*", "timeout_ms": 2000,
    });
    for (key, value) in extra.as_object().into_iter().flatten() {
        spec[key] = value.clone();
    }
    spec
}

pub(crate) fn parse(value: Value) -> Result<ReactionConfig, ConfigError> {
    let spec: PluginSpec = serde_json::from_value(value).unwrap();
    ReactionConfig::parse(&spec)
}

pub(crate) fn build(value: Value) -> Box<dyn Reaction> {
    parse(value)
        .unwrap()
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap()
}

/// Asserts the login request salt-api requires.
pub(crate) fn assert_login(request: &Recorded, username: &str, eauth: &str) {
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/login"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-auth-token"), None);
    let credentials = json!({"username": username, "password": PASSWORD, "eauth": eauth});
    assert_eq!(request.json(), credentials);
}

/// Asserts the lowstate request: token, headers, and one `local` command.
pub(crate) fn assert_lowstate(request: &Recorded, command: &Value) {
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/"));
    assert_eq!(request.query, None);
    assert_eq!(request.header("x-auth-token"), Some(TOKEN));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.json(), json!([command]));
}

fn cmdrun(fake: &FakeApi, extra: Value) -> Box<dyn Reaction> {
    let mut extra = extra;
    extra["command"] = json!("systemctl restart nginx");
    build(spec("saltstack-cmdrun", fake, extra))
}

fn run_all_ok() -> Value {
    json!({"pid": 4242, "retcode": 0, "stdout": "", "stderr": ""})
}

#[tokio::test]
async fn logs_in_then_runs_one_local_command_with_the_token() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/login", vec![login_ok()]);
    fake.reply("POST", "/", vec![returns(json!({"web1": run_all_ok(), "web2": run_all_ok()}))]);
    let reaction = cmdrun(
        &fake,
        json!({"eauth": "ldap", "target": "G@role:web and web*", "tgt_type": "compound"}),
    );
    let fired = reaction.fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("cmd.run_all exited 0 on web1, web2".into()));

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_login(&requests[0], "cloudroutes", "ldap");
    let command = json!({
        "client": "local", "tgt": "G@role:web and web*", "tgt_type": "compound",
        "fun": "cmd.run_all", "arg": ["systemctl restart nginx"],
    });
    assert_lowstate(&requests[1], &command);
}

#[tokio::test]
async fn a_refused_login_is_rejected_not_retried_and_runs_nothing() {
    let fake = FakeApi::start().await;
    let refusal =
        json!({"status": 401, "return": "Could not authenticate using provided credentials"});
    fake.reply("POST", "/login", vec![Reply::json(401, refusal)]);
    let error = cmdrun(&fake, json!({})).fire(&incident()).await.unwrap_err();
    let ReactionError::Rejected { kind: "saltstack-cmdrun", status: 401, ref body } = error else {
        panic!("{error:?}")
    };
    assert!(body.starts_with("at login as `cloudroutes` (eauth pam): "), "{body}");
    assert!(body.contains("Could not authenticate"), "{body}");
    assert!(!error.is_retryable());
    assert_eq!(fake.requests().len(), 1, "no command after a refused login");
}

#[tokio::test]
async fn a_login_answer_without_a_token_fails_without_quoting_it() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/login", vec![Reply::json(200, json!({"return": {"token": TOKEN}}))]);
    let error = cmdrun(&fake, json!({})).fire(&incident()).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ReactionError::Failed { .. }), "{error:?}");
    assert!(message.contains("without a token"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn no_minion_answering_fails_naming_the_target() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/login", vec![login_ok()]);
    fake.reply("POST", "/", vec![returns(json!({}))]);
    let error = cmdrun(&fake, json!({})).fire(&incident()).await.unwrap_err();
    assert_eq!(error.to_string(), "saltstack-cmdrun: no minion matched `web*`");
    assert!(!error.is_retryable());
    let grain = cmdrun(&fake, json!({"target": "os:Debian", "tgt_type": "grain"}));
    let error = grain.fire(&incident()).await.unwrap_err();
    assert_eq!(error.to_string(), "saltstack-cmdrun: no minion matched `os:Debian` (grain)");
}

#[tokio::test]
async fn command_answers_map_to_errors_and_never_show_the_token() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/login", vec![login_ok()]);
    fake.reply(
        "POST",
        "/",
        vec![
            Reply::json(503, json!({"status": 503, "return": "Salt request timed out. The master is not responding."})),
            Reply::json(401, json!({"status": 401, "return": format!("token {TOKEN} is not valid")})),
            Reply::json(200, json!({"return": [format!("unexpected {TOKEN}")]})),
            Reply::json(200, json!({"result": "no return list"})),
        ],
    );
    let reaction = cmdrun(&fake, json!({}));
    let unavailable = reaction.fire(&incident()).await.unwrap_err();
    assert!(matches!(unavailable, ReactionError::Rejected { status: 503, .. }), "{unavailable:?}");
    assert!(unavailable.is_retryable());
    assert!(unavailable.to_string().contains("master is not responding"), "{unavailable}");
    let refused = reaction.fire(&incident()).await.unwrap_err();
    assert!(matches!(refused, ReactionError::Rejected { status: 401, .. }), "{refused:?}");
    assert!(!refused.is_retryable());
    let odd = reaction.fire(&incident()).await.unwrap_err();
    let shapeless = reaction.fire(&incident()).await.unwrap_err();
    assert!(shapeless.to_string().contains("no `return` list"), "{shapeless}");
    for error in [&refused, &odd] {
        let text = format!("{error} {error:?}");
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains("***"), "{text}");
    }
    assert!(!format!("{reaction:?}").contains(TOKEN));
    assert!(!format!("{reaction:?}").contains(PASSWORD));
}

#[tokio::test]
async fn login_and_command_share_one_deadline() {
    let fake = FakeApi::start().await;
    let mut slow_login = login_ok();
    slow_login.delay = Duration::from_millis(300);
    fake.reply("POST", "/login", vec![slow_login]);
    let mut slow_answer = returns(json!({"web1": run_all_ok()}));
    slow_answer.delay = Duration::from_millis(300);
    fake.reply("POST", "/", vec![slow_answer]);
    let started = Instant::now();
    let error = cmdrun(&fake, json!({"timeout_ms": 450})).fire(&incident()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1200), "{:?}", started.elapsed());
    assert!(matches!(error, ReactionError::Timeout { kind: "saltstack-cmdrun", timeout_ms: 450 }));
    assert!(error.is_retryable());
    assert_eq!(fake.requests().len(), 2, "the login answered, the command did not");
}

#[tokio::test]
async fn a_silent_login_times_out_and_a_closed_port_is_a_transport_error() {
    let fake = FakeApi::start().await;
    fake.reply("POST", "/login", vec![Reply::slow(Duration::from_secs(5))]);
    let error = cmdrun(&fake, json!({"timeout_ms": 200})).fire(&incident()).await.unwrap_err();
    assert!(matches!(error, ReactionError::Timeout { timeout_ms: 200, .. }), "{error:?}");

    let (_closed, port) = closed_port();
    let mut closed = spec("saltstack-cmdrun", &fake, json!({"command": "true"}));
    closed["api_base_url"] = json!(format!("http://127.0.0.1:{port}"));
    let error = build(closed).fire(&incident()).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(error.is_retryable());
}

#[test]
fn connection_fields_are_checked_naming_each() {
    let fake_url = "https://salt.internal:8000";
    let base = json!({
        "type": "saltstack-cmdrun", "api_base_url": fake_url, "username": "cloudroutes",
        "password": PASSWORD, "target": "web*", "command": "true",
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
        (without("api_base_url"), "api_base_url"),
        (with("api_base_url", json!("salt.internal:8000")), "api_base_url"),
        (with("api_base_url", json!("ftp://salt.internal")), "api_base_url"),
        (without("username"), "username"),
        (with("username", json!(" ")), "username"),
        (with("username", json!("a\nb")), "username"),
        (without("password"), "password"),
        (with("password", json!("")), "password"),
        (with("password", json!("***")), "password"),
        (with("eauth", json!("p a m")), "eauth"),
        (with("eauth", json!("")), "eauth"),
        (without("target"), "target"),
        (with("target", json!("")), "target"),
        (with("target", json!("web\u{7}")), "target"),
        (with("tgt_type", json!("nodegroup")), "tgt_type"),
        (with("timeout_ms", json!(0)), "timeout_ms"),
        (with("timeout_ms", json!(120_001)), "timeout_ms"),
        (with("tgt", json!("web*")), "tgt"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert!(!error.message.starts_with(char::is_uppercase), "{error}");
        assert!(!error.message.contains(PASSWORD), "{error}");
    }
    let Ok(ReactionConfig::SaltstackCmdrun(config)) = parse(base) else { panic!() };
    assert_eq!(
        (config.eauth.as_str(), config.tgt_type, config.timeout_ms),
        ("pam", TargetType::Glob, 10_000)
    );
    assert!(!format!("{config:?}").contains(PASSWORD));
}

#[test]
fn every_salt_type_documents_its_fields_and_hides_the_password() {
    let types = reaction_types();
    for name in
        ["saltstack-cmdrun", "saltstack-generic", "saltstack-highstate", "saltstack-services"]
    {
        let info = types.iter().find(|t| t.name == name).unwrap();
        assert_eq!(info.secret_fields, ["password"], "{name}");
        let properties = info.schema["properties"].as_object().unwrap();
        for field in
            ["api_base_url", "username", "password", "eauth", "target", "tgt_type", "timeout_ms"]
        {
            assert!(properties[field]["description"].is_string(), "{name}.{field}");
        }
        assert_eq!(properties["password"]["writeOnly"], json!(true), "{name}");
        let required = info.schema["required"].as_array().unwrap();
        for field in ["api_base_url", "username", "password", "target"] {
            assert!(required.contains(&json!(field)), "{name} requires {field}");
        }
        assert!(properties["api_base_url"].get("default").is_none(), "{name}: no default url");
        assert_eq!(properties["eauth"]["default"], "pam", "{name}");
    }
}

#[test]
fn minion_names_are_listed_up_to_ten() {
    let few: Returns = [("web1".to_owned(), json!(true)), ("web2".to_owned(), json!(true))].into();
    assert_eq!(minion_names(&few), "web1, web2");
    let many: Returns = (0..13).map(|i| (format!("web{i:02}"), json!(true))).collect();
    assert_eq!(
        minion_names(&many),
        "web00, web01, web02, web03, web04, web05, web06, web07, web08, web09, and 3 more"
    );
}

#[test]
fn salt_error_strings_are_recognised_and_results_are_not() {
    for error in [
        "'service.restar' is not available.",
        "ERROR: Service 'nginx' not found",
        "ERROR executing 'cmd.run': the command is empty",
        "The minion function caused an exception: Traceback …",
        "Passed invalid arguments to cmd.run: missing 1 required positional argument",
        "'systemd' __virtual__ returned False: no systemd",
    ] {
        assert_eq!(minion_error(&json!(error)).as_deref(), Some(error));
    }
    for result in [json!("active"), json!(true), json!({"retcode": 0}), json!(["ERROR"])] {
        assert_eq!(minion_error(&result), None, "{result}");
    }
}

#[test]
fn state_runs_count_changes_and_name_failed_ids() {
    let run = json!({
        "pkg_|-nginx_|-nginx_|-installed": {"result": true, "changes": {}, "__id__": "nginx", "comment": "ok"},
        "service_|-nginx-running_|-nginx_|-running": {
            "result": false, "changes": {}, "__id__": "nginx-running", "comment": "Service nginx failed to start",
            "__run_num__": 1,
        },
        "file_|-site_|-/etc/nginx/site_|-managed": {"result": true, "changes": {"diff": "…"}, "comment": "updated"},
        "cmd_|-reload-php_|-systemctl reload php_|-run": {
            "result": false, "changes": {}, "comment": "exit 1", "__run_num__": 3,
        },
    });
    let parsed = state_run(&run).unwrap();
    assert_eq!((parsed.states, parsed.changed), (4, 1));
    let ids: Vec<_> = parsed.failed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["nginx-running", "reload-php"], "in the order salt ran them");
    assert_eq!(
        state_failure(&run).unwrap(),
        "states nginx-running, reload-php failed (Service nginx failed to start)"
    );
    let rendering =
        json!(["Rendering SLS 'base:nginx' failed: mapping values are not allowed here"]);
    assert!(state_failure(&rendering).unwrap().starts_with("Rendering SLS 'base:nginx' failed"));
    let clean = json!({"a_|-b_|-c_|-d": {"result": true, "changes": {}}});
    assert_eq!(state_failure(&clean), None);
}
