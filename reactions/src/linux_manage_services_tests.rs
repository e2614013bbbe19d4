//! Against a real `sshd` per test (Debian's openssh-server), with fake `systemctl` and
//! `service` programs that record the arguments the remote shell gave them.

use std::path::Path;

use cloudroutes_engine::{MonitorId, ReactionId, Status};
use serde_json::json;
use tempfile::TempDir;

use super::*;
use crate::test_sshd::{KeyPair, Sshd, keygen};
use crate::{ReactionConfig, reaction_types};

fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "web-1 http".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "restart nginx".into(),
        status: Status::Failed,
        episode: 2,
        reason: "HTTP 502".into(),
        method: cloudroutes_engine::Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:2:failed:0".into(),
        node: "node-a".into(),
    }
}

/// An sshd whose sessions find fake `systemctl` and `service` first in PATH; each fake writes
/// its arguments, one per line, to `<dir>/<name>.args` and prints a line; when `<dir>/exit`
/// holds a status it writes an error line, then another line to standard output, and exits
/// with it.
struct Lab {
    dir: TempDir,
    client: KeyPair,
    sshd: Sshd,
}

fn write_fake(dir: &Path, name: &str) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let root = dir.display();
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > {root}/{name}.args\n\
         if [ -f {root}/exit ]; then\n  echo 'Job failed, see journalctl -xe' >&2\n  echo exiting\n\
         exit \"$(cat {root}/exit)\"\nfi\necho \"{name} did $*\"\n"
    );
    let path = bin.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

async fn lab() -> Lab {
    let dir = TempDir::new().unwrap();
    write_fake(dir.path(), "systemctl");
    write_fake(dir.path(), "service");
    let client = keygen(dir.path(), "client", "ed25519", "");
    let path = format!("SetEnv PATH={}/bin:/usr/sbin:/usr/bin:/sbin:/bin", dir.path().display());
    let sshd = Sshd::start(dir.path(), "target", &[&client.public], &path).await;
    Lab { dir, client, sshd }
}

impl Lab {
    fn config(&self, service: &str, action: Action) -> Config {
        Config {
            host: "127.0.0.1".into(),
            port: self.sshd.port,
            user: "root".into(),
            private_key: Secret::new(self.client.private.clone()),
            passphrase: None,
            host_key: self.sshd.host_key.public.clone(),
            jump: None,
            service: service.into(),
            action,
            manager: "systemctl".into(),
            timeout_ms: 20_000,
        }
    }

    fn recorded(&self, name: &str) -> Vec<String> {
        let path = self.dir.path().join(format!("{name}.args"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{name} never ran"));
        text.lines().map(str::to_owned).collect()
    }
}

async fn fire(config: &Config) -> Result<Fired, ReactionError> {
    on_loopback(LinuxManageServicesReaction::new(config).unwrap()).fire(&incident()).await
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

#[tokio::test]
async fn systemctl_gets_the_action_a_double_dash_and_the_service() {
    let lab = lab().await;
    let fired = fire(&lab.config("nginx.service", Action::Restart)).await.unwrap();
    assert_eq!(lab.recorded("systemctl"), ["restart", "--", "nginx.service"]);
    let detail = "`systemctl restart -- 'nginx.service'`: exit status 0: systemctl did restart -- \
                  nginx.service";
    assert_eq!(fired, Fired::Executed(detail.into()));

    fire(&lab.config("getty@tty1", Action::Stop)).await.unwrap();
    assert_eq!(lab.recorded("systemctl"), ["stop", "--", "getty@tty1"]);
}

#[tokio::test]
async fn service_gets_the_service_then_the_action() {
    let lab = lab().await;
    let config = Config { manager: "service".into(), ..lab.config("apache2", Action::Start) };
    let fired = fire(&config).await.unwrap();
    assert_eq!(lab.recorded("service"), ["apache2", "start"]);
    assert_eq!(
        fired,
        Fired::Executed(
            "`service 'apache2' start`: exit status 0: service did apache2 start".into()
        )
    );
}

#[tokio::test]
async fn an_absolute_manager_path_is_run_like_systemctl() {
    let lab = lab().await;
    let fake = lab.dir.path().join("bin").join("systemctl").display().to_string();
    let config = Config { manager: fake.clone(), ..lab.config("php8.2-fpm", Action::Restart) };
    fire(&config).await.unwrap();
    assert_eq!(lab.recorded("systemctl"), ["restart", "--", "php8.2-fpm"]);
}

#[tokio::test]
async fn a_failing_manager_fails_with_its_status_and_standard_error_line() {
    let lab = lab().await;
    std::fs::write(lab.dir.path().join("exit"), "5").unwrap();
    let error = fire(&lab.config("nginx", Action::Restart)).await.unwrap_err();
    let ReactionError::Failed { kind: "linux-manage-services", ref message } = error else {
        panic!("{error:?}")
    };
    let expected =
        "`systemctl restart -- 'nginx'` failed: exit status 5: Job failed, see journalctl -xe";
    assert_eq!(message, expected);
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_wrong_host_key_is_refused_before_the_manager_runs() {
    let lab = lab().await;
    let other = keygen(lab.dir.path(), "other", "ed25519", "");
    let config = Config { host_key: other.public, ..lab.config("nginx", Action::Stop) };
    let error = fire(&config).await.unwrap_err();
    assert!(error.to_string().contains("host key did not match"), "{error}");
    assert!(!lab.dir.path().join("systemctl.args").exists());
}

#[test]
fn command_lines_quote_the_service_and_path() {
    let key = Secret::new("unused");
    let config = |service: &str, action, manager: &str| Config {
        host: "h".into(),
        port: 22,
        user: "root".into(),
        private_key: key.clone(),
        passphrase: None,
        host_key: String::new(),
        jump: None,
        service: service.into(),
        action,
        manager: manager.into(),
        timeout_ms: 1000,
    };
    let cases = [
        (config("nginx", Action::Start, "systemctl"), "systemctl start -- 'nginx'"),
        (config("a@b.service", Action::Stop, "systemctl"), "systemctl stop -- 'a@b.service'"),
        (config("nginx", Action::Restart, "service"), "service 'nginx' restart"),
        (config("x_y-z", Action::Restart, "/opt/bin/svc"), "'/opt/bin/svc' restart -- 'x_y-z'"),
    ];
    for (config, expected) in cases {
        assert_eq!(config.command_line().unwrap(), expected);
    }
}

fn base_json(lab: &Lab) -> serde_json::Value {
    json!({
        "type": "linux-manage-services",
        "host": "127.0.0.1",
        "user": "root",
        "private_key": lab.client.private,
        "host_key": lab.sshd.host_key.public,
        "service": "nginx",
        "action": "restart",
    })
}

#[tokio::test]
async fn rejects_bad_service_names_managers_and_actions() {
    let lab = lab().await;
    let base = base_json(&lab);
    let with = |field: &str, value: serde_json::Value| {
        let mut out = base.clone();
        out[field] = value;
        out
    };
    let mut cases = vec![];
    for service in [
        "",
        "nginx; reboot",
        "a b",
        "$(id)",
        "`id`",
        "x|y",
        "x&",
        "it's",
        "x\ny",
        "-h",
        "--now",
        ".hidden",
        "ngïnx",
        "a/b",
        "*",
    ] {
        cases.push((with("service", json!(service)), "service"));
    }
    cases.push((with("service", json!("a".repeat(257))), "service"));
    for manager in
        ["sudo systemctl", "systemd", "bin/systemctl", "/usr/../bin/x", "/", "/x;id", "/a b"]
    {
        cases.push((with("manager", json!(manager)), "manager"));
    }
    cases.push((with("action", json!("reload")), "action"));
    cases.push((with("action", json!("Restart")), "action"));
    let mut missing_host_key = base.clone();
    missing_host_key.as_object_mut().unwrap().remove("host_key");
    cases.push((missing_host_key, "host_key"));
    cases.push((
        with("private_key", json!("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n")),
        "private_key",
    ));
    cases.push((with("bogus", json!(true)), "bogus"));
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
    }
    assert!(parse(with("service", json!("getty@tty1.service"))).is_ok());
    assert!(parse(with("manager", json!("/usr/local/bin/svc-ctl"))).is_ok());
}

#[tokio::test]
async fn start_is_idempotent_and_stop_and_restart_destructive() {
    let lab = lab().await;
    let base = base_json(&lab);
    for (action, effect) in [
        ("start", Effect::Idempotent),
        ("stop", Effect::Destructive),
        ("restart", Effect::Destructive),
    ] {
        let mut value = base.clone();
        value["action"] = json!(action);
        let config = parse(value).unwrap();
        assert_eq!(config.effect(), effect, "{action}");
        let reaction = config
            .build(
                &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                    .unwrap(),
            )
            .unwrap();
        assert_eq!((reaction.kind(), reaction.effect()), ("linux-manage-services", effect));
    }
    let info = reaction_types().into_iter().find(|t| t.name == "linux-manage-services").unwrap();
    assert_eq!(info.effect, Effect::Destructive);
}

#[test]
fn schema_lists_every_field_and_marks_secrets_write_only() {
    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "linux-manage-services").unwrap();
    assert_eq!(info.secret_fields, ["private_key", "passphrase", "jump"]);
    let properties = info.schema["properties"].as_object().unwrap();
    let fields = [
        "host",
        "port",
        "user",
        "private_key",
        "passphrase",
        "host_key",
        "jump",
        "service",
        "action",
        "manager",
        "timeout_ms",
    ];
    assert_eq!(properties.len(), fields.len(), "{properties:?}");
    for field in fields {
        assert!(properties[field]["description"].is_string(), "{field}");
    }
    for field in info.secret_fields {
        assert_eq!(properties[*field]["writeOnly"], json!(true), "{field}");
    }
    assert_eq!(
        info.schema["required"],
        json!(["host", "user", "private_key", "host_key", "service", "action"])
    );
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let lab = lab().await;
    let mut config = lab.config("nginx", Action::Start);
    config.passphrase = Some(Secret::new("hunter2"));
    let reaction = on_loopback(LinuxManageServicesReaction::new(&config).unwrap());
    let key_lines: Vec<&str> =
        lab.client.private.lines().filter(|line| !line.starts_with("-----")).collect();
    for shown in [format!("{config:?}"), format!("{reaction:?}")] {
        for secret in key_lines.iter().copied().chain(["hunter2"]) {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

/// Returns `reaction` allowed to reach the loopback test servers.
fn on_loopback(mut reaction: LinuxManageServicesReaction) -> LinuxManageServicesReaction {
    let egress = std::sync::Arc::new(cloudroutes_engine::egress::Egress::loopback_for_tests());
    reaction.transport = reaction.transport.with_egress(&egress);
    reaction
}
