//! Against a real `sshd` per test (Debian's openssh-server): see `crate::test_sshd`.

use std::path::Path;
use std::time::{Duration, Instant};

use cloudroutes_engine::{Method, MonitorId, ReactionId, Status};
use serde_json::json;
use tempfile::TempDir;
use tokio::net::TcpListener;

use super::*;
use crate::test_api::closed_port;
use crate::test_sshd::{KeyPair, Sshd, keygen};
use crate::{ReactionConfig, reaction_types};

fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "web-1 http".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "restart the app".into(),
        status: Status::Failed,
        episode: 2,
        reason: "HTTP 502".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:2:failed:0".into(),
        node: "node-a".into(),
    }
}

/// One sshd accepting `client`, and the config that reaches it.
struct Lab {
    dir: TempDir,
    client: KeyPair,
    sshd: Sshd,
}

async fn lab() -> Lab {
    let dir = TempDir::new().unwrap();
    let client = keygen(dir.path(), "client", "ed25519", "");
    let sshd = Sshd::start(dir.path(), "target", &[&client.public], "").await;
    Lab { dir, client, sshd }
}

impl Lab {
    fn config(&self, command: &str) -> Config {
        Config {
            host: "127.0.0.1".into(),
            port: self.sshd.port,
            user: "root".into(),
            private_key: Secret::new(self.client.private.clone()),
            passphrase: None,
            host_key: self.sshd.host_key.public.clone(),
            jump: None,
            command: command.into(),
            expect_exit: vec![0],
            timeout_ms: 20_000,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

async fn fire(config: &Config) -> Result<Fired, ReactionError> {
    on_loopback(ExecuteShellCommandReaction::new(config).unwrap()).fire(&incident()).await
}

fn parse(value: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value(value).unwrap())
}

#[tokio::test]
async fn runs_the_command_and_reports_exit_status_and_last_output_line() {
    let lab = lab().await;
    let marker = lab.path("ran");
    let command = format!("echo first; echo warn >&2; echo '  second line  '; touch {marker}");
    let fired = fire(&lab.config(&command)).await.unwrap();
    assert_eq!(fired, Fired::Executed("exit status 0: second line".into()));
    assert!(Path::new(&marker).exists(), "the command did not run on the server");
    assert!(lab.sshd.log().contains("Accepted publickey for root"), "{}", lab.sshd.log());
}

#[tokio::test]
async fn the_remote_shell_interprets_the_command() {
    let lab = lab().await;
    let fired = fire(&lab.config("x=$((6 * 7)); printf 'answer %s\\n' \"$x\" | tr a-z A-Z")).await;
    assert_eq!(fired.unwrap(), Fired::Executed("exit status 0: ANSWER 42".into()));
    // On a pseudo-terminal, as `ssh -t` would run it.
    let terminal = fire(&lab.config("[ -t 0 ] && [ -t 1 ] && echo \"tty $TERM\"")).await;
    assert_eq!(terminal.unwrap(), Fired::Executed("exit status 0: tty dumb".into()));
    let quiet = fire(&lab.config("true")).await.unwrap();
    assert_eq!(quiet, Fired::Executed("exit status 0, no output".into()));
}

#[tokio::test]
async fn a_listed_non_zero_exit_status_succeeds() {
    let lab = lab().await;
    let config = Config { expect_exit: vec![0, 3], ..lab.config("echo partial; exit 3") };
    assert_eq!(fire(&config).await.unwrap(), Fired::Executed("exit status 3: partial".into()));
}

#[tokio::test]
async fn an_unexpected_exit_status_fails_naming_it_and_the_error_line() {
    let lab = lab().await;
    let config = lab.config("echo working; echo 'disk is full' >&2; exit 7");
    let error = fire(&config).await.unwrap_err();
    let ReactionError::Failed { kind: "execute-shell-command", ref message } = error else {
        panic!("{error:?}")
    };
    assert_eq!(message, "exit status 7: disk is full (expected exit status 0)");
    assert!(!error.is_retryable());

    let config = Config { expect_exit: vec![1, 2], ..lab.config("exit 0") };
    let error = fire(&config).await.unwrap_err().to_string();
    assert!(error.contains("exit status 0, no output (expected exit status 1 or 2)"), "{error}");
}

#[tokio::test]
async fn long_output_keeps_only_the_last_line_cut_to_200_characters() {
    let lab = lab().await;
    let fired = fire(&lab.config("seq 1 200000; printf 'y%.0s' $(seq 1 500); echo")).await.unwrap();
    assert_eq!(fired, Fired::Executed(format!("exit status 0: {}", "y".repeat(200))));
}

#[tokio::test]
async fn rsa_and_passphrase_protected_keys_log_in() {
    let dir = TempDir::new().unwrap();
    let rsa = keygen(dir.path(), "rsa", "rsa", "");
    let locked = keygen(dir.path(), "locked", "ed25519", "open sesame");
    let sshd = Sshd::start(dir.path(), "target", &[&rsa.public, &locked.public], "").await;
    let lab = Lab { dir, client: rsa, sshd };
    assert!(lab.client.private.contains("BEGIN OPENSSH PRIVATE KEY"));
    let fired = fire(&lab.config("echo rsa")).await.unwrap();
    assert_eq!(fired, Fired::Executed("exit status 0: rsa".into()));

    let config = Config {
        private_key: Secret::new(locked.private.clone()),
        passphrase: Some(Secret::new("open sesame")),
        ..lab.config("echo unlocked")
    };
    assert_eq!(fire(&config).await.unwrap(), Fired::Executed("exit status 0: unlocked".into()));
}

#[tokio::test]
async fn a_wrong_host_key_is_refused_before_authentication_showing_fingerprints() {
    let lab = lab().await;
    let impostor = keygen(lab.dir.path(), "impostor", "ed25519", "");
    let config = Config { host_key: impostor.public.clone(), ..lab.config("touch /tmp/never") };
    let error = fire(&config).await.unwrap_err();
    let ReactionError::Failed { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.contains("host key did not match"), "{message}");
    let expected = PublicKeyFingerprint::of(&impostor.public);
    let presented = PublicKeyFingerprint::of(&lab.sshd.host_key.public);
    assert!(message.contains(&expected) && message.contains(&presented), "{message}");
    for material in [impostor.public_material(), lab.sshd.host_key.public_material()] {
        assert!(!message.contains(material), "{message}");
    }
    assert!(!error.is_retryable());
    let log = lab.sshd.log();
    assert!(!log.contains("publickey"), "a login was attempted:\n{log}");
}

#[tokio::test]
async fn the_configured_host_key_type_is_the_one_negotiated() {
    // A server with ed25519 and rsa host keys, configured by its rsa key.
    let dir = TempDir::new().unwrap();
    let client = keygen(dir.path(), "client", "ed25519", "");
    let sshd = Sshd::start_with_host_keys(
        dir.path(),
        "target",
        &["rsa", "ed25519"],
        &[&client.public],
        "",
    )
    .await;
    let lab = Lab { dir, client, sshd };
    let fired = fire(&lab.config("echo rsa host key")).await.unwrap();
    assert_eq!(fired, Fired::Executed("exit status 0: rsa host key".into()));

    // A key type the server does not have: named, not retryable.
    let ecdsa = keygen(lab.dir.path(), "ecdsa_host", "ecdsa", "");
    let error = fire(&Config { host_key: ecdsa.public, ..lab.config("true") }).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("the server has no ecdsa-sha2-nistp256 host key"), "{message}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_key_the_server_does_not_know_fails_the_login() {
    let lab = lab().await;
    let stranger = keygen(lab.dir.path(), "stranger", "ed25519", "");
    let config =
        Config { private_key: Secret::new(stranger.private.clone()), ..lab.config("true") };
    let error = fire(&config).await.unwrap_err();
    let ReactionError::Failed { ref message, .. } = error else { panic!("{error:?}") };
    let fingerprint = PublicKeyFingerprint::of(&stranger.public);
    assert!(message.contains("login refused: user `root`"), "{message}");
    assert!(message.contains(&fingerprint), "{message}");
    assert!(!error.is_retryable());
    assert!(!lab.sshd.log().contains("Accepted publickey"), "{}", lab.sshd.log());
}

/// Returns the ids of live processes in process group `group`.
fn processes_in_group(group: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp …: comm may hold spaces, so split after its ')'.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        if fields[0] != "Z" && fields[2] == group.to_string() {
            members.push(pid);
        }
    }
    members
}

#[tokio::test]
async fn a_command_past_the_timeout_is_stopped_on_the_server() {
    let lab = lab().await;
    let pid_file = lab.path("pid");
    let command = format!("echo $$ > {pid_file}; sleep 30; echo never");
    let config = Config { timeout_ms: 1500, ..lab.config(&command) };
    let started = Instant::now();
    let error = fire(&config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(4000), "{:?}", started.elapsed());
    assert!(matches!(error, ReactionError::Timeout { timeout_ms: 1500, .. }), "{error:?}");

    let group: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let mut left = processes_in_group(group);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        left = processes_in_group(group);
    }
    assert!(left.is_empty(), "the command still runs on the server: {left:?}");
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_transport_error() {
    let lab = lab().await;
    let (_closed, port) = closed_port();
    let error = fire(&Config { port, ..lab.config("true") }).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.starts_with(&format!("127.0.0.1:{port}: connect failed")), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_silent_server_times_out_in_time() {
    let lab = lab().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let error = fire(&Config { port, timeout_ms: 400, ..lab.config("true") }).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    assert!(matches!(error, ReactionError::Timeout { timeout_ms: 400, .. }), "{error:?}");
}

#[tokio::test]
async fn runs_through_a_jump_host_with_its_own_key() {
    let dir = TempDir::new().unwrap();
    let bastion_key = keygen(dir.path(), "bastion_client", "ed25519", "");
    let target_key = keygen(dir.path(), "target_client", "rsa", "");
    // The bastion logs at DEBUG1, which records each forwarding request.
    let bastion =
        Sshd::start(dir.path(), "bastion", &[&bastion_key.public], "LogLevel DEBUG1").await;
    let target = Sshd::start(dir.path(), "target", &[&target_key.public], "").await;
    let lab = Lab { dir, client: target_key, sshd: target };
    let jump = JumpConfig {
        host: "127.0.0.1".into(),
        port: bastion.port,
        user: "root".into(),
        private_key: Some(Secret::new(bastion_key.private.clone())),
        passphrase: None,
        host_key: bastion.host_key.public.clone(),
    };
    let config = Config { jump: Some(jump.clone()), ..lab.config("echo \"$SSH_CONNECTION\"") };
    let Fired::Executed(detail) = fire(&config).await.unwrap() else { panic!() };
    // SSH_CONNECTION ends with the server's port: the command ran on the target.
    assert!(detail.ends_with(&format!(" 127.0.0.1 {}", lab.sshd.port)), "{detail}");
    let forwarded = format!("target 127.0.0.1 port {}", lab.sshd.port);
    assert!(bastion.log().contains(&forwarded), "{}", bastion.log());
    assert!(bastion.log().contains("Accepted publickey for root"));

    // Without its own key the bastion is tried with the target's key, which it refuses.
    let shared = JumpConfig { private_key: None, ..jump.clone() };
    let error = fire(&Config { jump: Some(shared), ..config.clone() }).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&format!("jump host 127.0.0.1:{}: login refused", bastion.port)));

    // A bastion presenting another host key is refused, naming the bastion.
    let jump = JumpConfig { host_key: lab.sshd.host_key.public.clone(), ..jump };
    let error = fire(&Config { jump: Some(jump), ..config }).await.unwrap_err();
    let message = error.to_string();
    let bastion_name = format!("jump host 127.0.0.1:{}: host key did not match", bastion.port);
    assert!(message.contains(&bastion_name), "{message}");
}

#[tokio::test]
async fn a_jump_host_that_cannot_reach_the_target_is_a_transport_error() {
    let lab = lab().await;
    let (_closed_socket, closed) = closed_port();
    let jump = JumpConfig {
        host: "127.0.0.1".into(),
        port: lab.sshd.port,
        user: "root".into(),
        private_key: None,
        passphrase: None,
        host_key: lab.sshd.host_key.public.clone(),
    };
    let config = Config { port: closed, jump: Some(jump), ..lab.config("true") };
    let error = fire(&config).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    let expected =
        format!("jump host 127.0.0.1:{}: could not forward to 127.0.0.1:{closed}", lab.sshd.port);
    assert!(message.starts_with(&expected), "{message}");
}

/// `SHA256:…` of a public key line, as ssh-keygen -l prints it.
struct PublicKeyFingerprint;

impl PublicKeyFingerprint {
    fn of(public: &str) -> String {
        let key = russh::keys::PublicKey::from_openssh(public).unwrap();
        key.fingerprint(russh::keys::HashAlg::Sha256).to_string()
    }
}

fn base_json(lab: &Lab) -> serde_json::Value {
    json!({
        "type": "execute-shell-command",
        "host": "127.0.0.1",
        "user": "root",
        "private_key": lab.client.private,
        "host_key": lab.sshd.host_key.public,
        "command": "uptime",
    })
}

fn with(base: &serde_json::Value, field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut out = base.clone();
    if value.is_null() {
        out.as_object_mut().unwrap().remove(field);
    } else {
        out[field] = value;
    }
    out
}

#[tokio::test]
async fn rejects_invalid_fields_naming_them_without_quoting_keys() {
    let lab = lab().await;
    let locked = keygen(lab.dir.path(), "locked", "ed25519", "right");
    let base = base_json(&lab);
    let jump = |extra: serde_json::Value| {
        let mut jump =
            json!({"host": "10.0.0.1", "user": "ops", "host_key": lab.sshd.host_key.public});
        jump.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        jump
    };
    let client_private = lab.client.private.clone();
    let truncated = client_private[..client_private.len() / 2].to_owned();
    let cases = [
        (with(&base, "host_key", json!(null)), "host_key"),
        (with(&base, "host_key", json!("")), "host_key"),
        (with(&base, "host_key", json!("ssh-ed25519 AAAAnotbase64!")), "host_key"),
        (with(&base, "host_key", json!(client_private)), "host_key"),
        (with(&base, "private_key", json!("not a key")), "private_key"),
        (with(&base, "private_key", json!(truncated)), "private_key"),
        (with(&base, "private_key", json!(lab.client.public)), "private_key"),
        (with(&base, "private_key", json!(locked.private)), "private_key"),
        (
            with(&with(&base, "private_key", json!(locked.private)), "passphrase", json!("wrong")),
            "passphrase",
        ),
        (with(&base, "private_key", json!("***")), "private_key"),
        (with(&base, "host", json!("")), "host"),
        (with(&base, "host", json!("web 1; rm")), "host"),
        (with(&base, "port", json!(0)), "port"),
        (with(&base, "port", json!(70000)), "port"),
        (with(&base, "user", json!("")), "user"),
        (with(&base, "user", json!("a b")), "user"),
        (with(&base, "command", json!("  ")), "command"),
        (with(&base, "command", json!(null)), "command"),
        (with(&base, "command", json!("echo \u{0}")), "command"),
        (with(&base, "command", json!("x".repeat(16 * 1024 + 1))), "command"),
        (with(&base, "expect_exit", json!([])), "expect_exit"),
        (with(&base, "expect_exit", json!([256])), "expect_exit[0]"),
        (with(&base, "timeout_ms", json!(0)), "timeout_ms"),
        (with(&base, "timeout_ms", json!(120_001)), "timeout_ms"),
        (with(&base, "bogus", json!(1)), "bogus"),
        (with(&base, "jump", json!({"host": "x"})), "jump.user"),
        (with(&base, "jump", jump(json!({"host_key": "nope"}))), "jump.host_key"),
        (with(&base, "jump", jump(json!({"host": "a/b"}))), "jump.host"),
        (with(&base, "jump", jump(json!({"private_key": "junk"}))), "jump.private_key"),
        (with(&base, "jump", jump(json!({"private_key": "***"}))), "jump.private_key"),
        (with(&base, "jump", jump(json!({"extra": 1}))), "jump.extra"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert!(!error.message.starts_with(char::is_uppercase), "{error}");
        for secret in ["PRIVATE KEY", "right", "wrong", lab.client.public_material()] {
            assert!(!error.message.contains(secret), "{field}: {error}");
        }
    }
    assert!(parse(base).is_ok());
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let lab = lab().await;
    let mut config = lab.config("uptime");
    config.passphrase = Some(Secret::new("hunter2"));
    config.jump = Some(JumpConfig {
        host: "10.0.0.1".into(),
        port: 22,
        user: "ops".into(),
        private_key: Some(Secret::new(lab.client.private.clone())),
        passphrase: Some(Secret::new("hunter3")),
        host_key: lab.sshd.host_key.public.clone(),
    });
    let reaction = on_loopback(ExecuteShellCommandReaction::new(&config).unwrap());
    // The private key's body, line by line.
    let key_lines: Vec<&str> =
        lab.client.private.lines().filter(|line| !line.starts_with("-----")).collect();
    for shown in [format!("{config:?}"), format!("{reaction:?}")] {
        for secret in key_lines.iter().copied().chain(["hunter2", "hunter3"]) {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
    assert!(format!("{reaction:?}").contains("SHA256:"));
}

#[test]
fn schema_lists_every_field_and_marks_secrets_write_only() {
    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "execute-shell-command").unwrap();
    assert_eq!(info.secret_fields, ["private_key", "passphrase", "jump"]);
    assert_eq!(info.effect, Effect::Destructive);
    let properties = info.schema["properties"].as_object().unwrap();
    let fields = [
        "host",
        "port",
        "user",
        "private_key",
        "passphrase",
        "host_key",
        "jump",
        "command",
        "expect_exit",
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
        json!(["host", "user", "private_key", "host_key", "command"])
    );
}

#[tokio::test]
async fn defaults_and_the_declared_effect() {
    let lab = lab().await;
    let Ok(ReactionConfig::ExecuteShellCommand(config)) = parse(base_json(&lab)) else {
        panic!("expected an execute-shell-command config")
    };
    assert_eq!((config.port, config.expect_exit.clone(), config.timeout_ms), (22, vec![0], 30_000));
    let reaction = on_loopback(ExecuteShellCommandReaction::new(&config).unwrap());
    assert_eq!(
        (reaction.kind(), reaction.effect()),
        ("execute-shell-command", Effect::Destructive)
    );
    assert_eq!(ReactionConfig::ExecuteShellCommand(config).effect(), Effect::Destructive);
}

#[tokio::test]
async fn the_api_shows_keys_and_the_whole_bastion_as_stars_and_keeps_them_on_write_back() {
    let lab = lab().await;
    let mut value = base_json(&lab);
    value["passphrase"] = json!("unused");
    value["jump"] = json!({
        "host": "bastion.example.com", "user": "ops", "host_key": lab.sshd.host_key.public,
    });
    let stored: cloudroutes_engine::PluginSpec = serde_json::from_value(value).unwrap();
    let shown = crate::redact(&stored);
    assert_eq!(shown.0["private_key"], "***");
    assert_eq!(shown.0["passphrase"], "***");
    assert_eq!(shown.0["jump"], json!({"host": "***", "user": "***", "host_key": "***"}));
    assert_eq!(shown.0["host_key"], json!(lab.sshd.host_key.public));
    assert_eq!(shown.0["command"], "uptime");

    let mut edited = shown.clone();
    edited.0.insert("command".into(), json!("uptime -p"));
    crate::restore_secrets(&mut edited, &stored);
    assert_eq!(edited.0["private_key"], stored.0["private_key"]);
    assert_eq!(edited.0["jump"], stored.0["jump"]);
    assert!(ReactionConfig::parse(&edited).is_ok());
}

/// Returns `reaction` allowed to reach the loopback test servers.
fn on_loopback(mut reaction: ExecuteShellCommandReaction) -> ExecuteShellCommandReaction {
    let egress = std::sync::Arc::new(cloudroutes_engine::egress::Egress::loopback_for_tests());
    reaction.transport = reaction.transport.with_egress(&egress);
    reaction
}
