//! Tests of the Docker container reactions and their shared transport. Each request test runs
//! against a fake Docker Engine on a real unix socket in a temp dir and against the same fake on
//! TCP, asserting the request the Engine API documents
//! (<https://docs.docker.com/reference/api/engine/version/v1.43/#tag/Container>):
//! `POST /v1.43/containers/{id}/restart?t=N`, `…/start`, `…/kill?signal=SIG`, no body, errors
//! as `{"message": …}`.

use std::time::Duration;

use cloudroutes_engine::{Method, MonitorId, PluginSpec, ReactionId, Status};
use serde_json::json;
use tempfile::TempDir;

use super::*;
use crate::test_api::{FakeApi, Recorded, Reply};
use crate::{Effect, Fired, Incident, Reaction, ReactionConfig, ReactionContext, reaction_types};

/// A fake Docker Engine on a unix socket in a fresh temp dir, and the same fake on TCP.
pub(crate) async fn fakes() -> (TempDir, Vec<FakeApi>) {
    let dir = tempfile::tempdir().unwrap();
    let unix = FakeApi::start_unix(&dir.path().join("docker.sock")).await;
    (dir, vec![unix, FakeApi::start().await])
}

/// An answer with `status` and no body (Docker's `204` and `304`).
pub(crate) fn empty(status: u16) -> Reply {
    Reply { status, body: String::new(), delay: Duration::ZERO }
}

/// Docker's error document.
pub(crate) fn docker_error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({"message": message}))
}

pub(crate) fn incident() -> Incident {
    Incident {
        monitor_id: MonitorId::from("01hmonitor"),
        monitor_name: "shop api".into(),
        reaction_id: ReactionId::from("01hreaction"),
        reaction_name: "restart the api container".into(),
        status: Status::Failed,
        episode: 2,
        reason: "HTTP 502, expected one of 200".into(),
        method: Method::Automatic,
        at: time::macros::datetime!(2024-05-01 12:30:00 UTC),
        idempotency_key: "01hmonitor:01hreaction:2:failed:0".into(),
        node: "node-a".into(),
    }
}

pub(crate) fn parse(action: serde_json::Value) -> Result<ReactionConfig, ConfigError> {
    ReactionConfig::parse(&serde_json::from_value::<PluginSpec>(action).unwrap())
}

/// Parses `action` through the registry and builds it.
pub(crate) fn build(action: serde_json::Value) -> Box<dyn Reaction> {
    let config = parse(action.clone()).unwrap_or_else(|error| panic!("{action}: {error}"));
    config
        .build(
            &ReactionContext::new(cloudroutes_engine::egress::Egress::loopback_for_tests())
                .unwrap(),
        )
        .unwrap()
}

/// Asserts what every request to Docker carries, on either transport.
pub(crate) fn assert_docker_request(fake: &FakeApi, request: &Recorded, path: &str, query: &str) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, path);
    assert_eq!(request.query.as_deref(), (!query.is_empty()).then_some(query));
    assert!(request.body.is_empty(), "{request:?}");
    assert!(request.header("user-agent").unwrap().starts_with("CloudRoutes/"), "{request:?}");
    let host = if fake.base_url().starts_with("unix://") {
        "docker".into()
    } else {
        fake.addr.to_string()
    };
    assert_eq!(request.header("host"), Some(host.as_str()));
}

fn container_types() -> [&'static str; 3] {
    ["docker-restart-container", "docker-start-container", "docker-kill-container"]
}

#[tokio::test]
async fn restart_posts_to_the_versioned_path_with_t_over_the_socket_and_tcp() {
    let (_dir, fakes) = fakes().await;
    for fake in &fakes {
        fake.reply("POST", "/v1.43/containers/web-1/restart", vec![empty(204)]);
        let reaction = build(json!({
            "type": "docker-restart-container", "endpoint": fake.base_url(),
            "container": "web-1", "stop_timeout_secs": 5,
        }));
        let fired = reaction.fire(&incident()).await.unwrap();
        let detail = "HTTP 204, container web-1 restarted (stop timeout 5 s)";
        assert_eq!(fired, Fired::Executed(detail.into()), "{}", fake.base_url());
        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        assert_docker_request(fake, &requests[0], "/v1.43/containers/web-1/restart", "t=5");
        assert_eq!(
            (reaction.kind(), reaction.effect()),
            ("docker-restart-container", Effect::Destructive)
        );
    }
}

#[tokio::test]
async fn start_posts_without_a_query_and_skips_a_running_container() {
    let (_dir, fakes) = fakes().await;
    let id = "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2";
    for fake in &fakes {
        let path = format!("/v1.43/containers/{id}/start");
        fake.reply("POST", &path, vec![empty(204), empty(304)]);
        let reaction = build(json!({
            "type": "docker-start-container", "endpoint": fake.base_url(), "container": id,
        }));
        let started = reaction.fire(&incident()).await.unwrap();
        assert_eq!(started, Fired::Executed(format!("HTTP 204, container {id} started")));
        let running = reaction.fire(&incident()).await.unwrap();
        let reason = format!("container {id} is already running (HTTP 304)");
        assert_eq!(running, Fired::Skipped(reason));
        for request in fake.requests() {
            assert_docker_request(fake, &request, &path, "");
        }
        assert_eq!(reaction.effect(), Effect::Idempotent);
    }
}

#[tokio::test]
async fn kill_sends_sigkill_by_default_and_the_configured_signal_encoded() {
    let (_dir, fakes) = fakes().await;
    for fake in &fakes {
        fake.reply("POST", "/v1.43/containers/worker/kill", vec![empty(204)]);
        let endpoint = fake.base_url();
        let default = build(
            json!({"type": "docker-kill-container", "endpoint": endpoint, "container": "worker"}),
        );
        let fired = default.fire(&incident()).await.unwrap();
        assert_eq!(fired, Fired::Executed("HTTP 204, SIGKILL sent to container worker".into()));
        let realtime = build(json!({
            "type": "docker-kill-container", "endpoint": endpoint, "container": "worker",
            "signal": "SIGRTMIN+3",
        }));
        realtime.fire(&incident()).await.unwrap();
        let requests = fake.requests();
        assert_docker_request(
            fake,
            &requests[0],
            "/v1.43/containers/worker/kill",
            "signal=SIGKILL",
        );
        assert_docker_request(
            fake,
            &requests[1],
            "/v1.43/containers/worker/kill",
            "signal=SIGRTMIN%2B3",
        );
        assert_eq!(default.effect(), Effect::Destructive);
    }
}

#[tokio::test]
async fn no_such_container_is_rejected_quoting_docker_and_final() {
    let (_dir, fakes) = fakes().await;
    for fake in &fakes {
        for (kind, verb) in container_types().into_iter().zip(["restart", "start", "kill"]) {
            let path = format!("/v1.43/containers/gone/{verb}");
            fake.reply("POST", &path, vec![docker_error(404, "No such container: gone")]);
            let reaction =
                build(json!({"type": kind, "endpoint": fake.base_url(), "container": "gone"}));
            let error = reaction.fire(&incident()).await.unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("{kind}: target answered HTTP 404 No such container: gone"),
                "{}",
                fake.base_url()
            );
            assert!(matches!(error, ReactionError::Rejected { status: 404, .. }));
            assert!(!error.is_retryable());
        }
    }
}

#[tokio::test]
async fn killing_a_stopped_container_is_a_final_conflict() {
    let (_dir, fakes) = fakes().await;
    let message = "Container d37cde0fe4ad is not running";
    for fake in &fakes {
        fake.reply("POST", "/v1.43/containers/d37cde0fe4ad/kill", vec![docker_error(409, message)]);
        let reaction = build(json!({
            "type": "docker-kill-container", "endpoint": fake.base_url(), "container": "d37cde0fe4ad",
        }));
        let error = reaction.fire(&incident()).await.unwrap_err();
        let ReactionError::Rejected { status: 409, ref body, .. } = error else {
            panic!("{error:?}")
        };
        assert_eq!(body, message);
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn server_errors_are_retryable_and_quote_the_message_or_the_body() {
    let (_dir, fakes) = fakes().await;
    for fake in &fakes {
        let not_json = Reply { status: 502, body: "bad\n  gateway".into(), delay: Duration::ZERO };
        fake.reply(
            "POST",
            "/v1.43/containers/web/start",
            vec![docker_error(500, "driver failed programming external connectivity"), not_json],
        );
        let reaction = build(
            json!({"type": "docker-start-container", "endpoint": fake.base_url(), "container": "web"}),
        );
        let error = reaction.fire(&incident()).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "docker-start-container: target answered HTTP 500 driver failed programming external connectivity"
        );
        assert!(error.is_retryable());
        let error = reaction.fire(&incident()).await.unwrap_err();
        let ReactionError::Rejected { status: 502, ref body, .. } = error else {
            panic!("{error:?}")
        };
        assert_eq!(body, "bad gateway");
    }
}

#[tokio::test]
async fn api_version_and_a_tcp_base_path_shape_the_request_path() {
    let (_dir, fakes) = fakes().await;
    for fake in &fakes {
        let tcp = !fake.base_url().starts_with("unix://");
        let (endpoint, path) = if tcp {
            (format!("{}/docker", fake.base_url()), "/docker/v1.41/containers/web/start")
        } else {
            (fake.base_url(), "/v1.41/containers/web/start")
        };
        fake.reply("POST", path, vec![empty(204)]);
        let reaction = build(json!({
            "type": "docker-start-container", "endpoint": endpoint, "api_version": "v1.41",
            "container": "web",
        }));
        assert!(matches!(reaction.fire(&incident()).await.unwrap(), Fired::Executed(_)));
        assert_eq!(fake.requests()[0].path, path);
    }
}

#[tokio::test]
async fn a_slow_daemon_times_out_in_time() {
    let (_dir, fakes) = fakes().await;
    for fake in &fakes {
        fake.reply(
            "POST",
            "/v1.43/containers/web/start",
            vec![Reply::slow(Duration::from_secs(5))],
        );
        let reaction = build(json!({
            "type": "docker-start-container", "endpoint": fake.base_url(), "container": "web",
            "timeout_ms": 300,
        }));
        let started = std::time::Instant::now();
        let error = reaction.fire(&incident()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
        assert!(
            matches!(
                error,
                ReactionError::Timeout { kind: "docker-start-container", timeout_ms: 300 }
            ),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn a_missing_socket_is_a_transport_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let endpoint = format!("unix://{}", socket.display());
    let reaction = build(
        json!({"type": "docker-restart-container", "endpoint": endpoint, "container": "web"}),
    );
    let error = reaction.fire(&incident()).await.unwrap_err();
    let ReactionError::Transport { kind: "docker-restart-container", ref message } = error else {
        panic!("{error:?}")
    };
    assert!(message.contains(&format!("docker socket {}", socket.display())), "{message}");
    assert!(message.contains("No such file or directory"), "{message}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_socket_nobody_listens_on_and_a_closed_port_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stale.sock");
    drop(tokio::net::UnixListener::bind(&socket).unwrap());
    let port =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    for endpoint in [format!("unix://{}", socket.display()), format!("http://127.0.0.1:{port}")] {
        let reaction = build(
            json!({"type": "docker-kill-container", "endpoint": endpoint, "container": "web"}),
        );
        let error = reaction.fire(&incident()).await.unwrap_err();
        let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
        assert!(message.to_lowercase().contains("refused"), "{endpoint}: {message}");
        let named =
            endpoint.replace("unix://", "docker socket ").replace("http://", "docker at http://");
        assert!(message.starts_with(&format!("cannot connect to {named}")), "{message}");
        assert!(error.is_retryable());
    }
}

#[test]
fn defaults_are_the_local_socket_and_api_v1_43() {
    let Ok(ReactionConfig::DockerRestartContainer(restart)) =
        parse(json!({"type": "docker-restart-container", "container": "web"}))
    else {
        panic!("expected a docker-restart-container config");
    };
    assert_eq!(
        (restart.endpoint.as_str(), restart.api_version.as_str()),
        (DEFAULT_ENDPOINT, "v1.43")
    );
    assert_eq!((restart.stop_timeout_secs, restart.timeout_ms), (10, 30_000));
    let Ok(ReactionConfig::DockerKillContainer(kill)) =
        parse(json!({"type": "docker-kill-container", "container": "web"}))
    else {
        panic!("expected a docker-kill-container config");
    };
    assert_eq!((kill.signal.as_str(), kill.timeout_ms), ("SIGKILL", 10_000));
    assert_eq!(
        Endpoint::parse(DEFAULT_ENDPOINT).unwrap(),
        Endpoint::Unix("/var/run/docker.sock".into())
    );
    let tcp = Endpoint::parse("https://docker.internal:2376").unwrap();
    assert_eq!(tcp, Endpoint::Tcp(Url::parse("https://docker.internal:2376/").unwrap()));
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let cases = [
        (json!({"type": "docker-start-container"}), "container"),
        (json!({"type": "docker-start-container", "container": ""}), "container"),
        (json!({"type": "docker-start-container", "container": "w"}), "container"),
        (json!({"type": "docker-start-container", "container": "-web"}), "container"),
        (json!({"type": "docker-start-container", "container": "web/../x"}), "container"),
        (json!({"type": "docker-start-container", "container": "my web"}), "container"),
        (json!({"type": "docker-start-container", "container": "a".repeat(256)}), "container"),
        (
            json!({"type": "docker-start-container", "container": "web", "endpoint": "tcp://h:2375"}),
            "endpoint",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "endpoint": "ftp://h"}),
            "endpoint",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "endpoint": "unix://docker.sock"}),
            "endpoint",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "endpoint": "unix:///"}),
            "endpoint",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "endpoint": "/var/run/docker.sock"}),
            "endpoint",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "endpoint": "http://h:2375/?a=1"}),
            "endpoint",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "api_version": "1.43"}),
            "api_version",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "api_version": "v1"}),
            "api_version",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "api_version": "v1.43/x"}),
            "api_version",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            json!({"type": "docker-start-container", "container": "web", "timeout_ms": 120_001}),
            "timeout_ms",
        ),
        (json!({"type": "docker-start-container", "container": "web", "t": 3}), "t"),
        (
            json!({"type": "docker-restart-container", "container": "web", "stop_timeout_secs": 120}),
            "stop_timeout_secs",
        ),
        (
            json!({"type": "docker-restart-container", "container": "web", "stop_timeout_secs": -1}),
            "stop_timeout_secs",
        ),
        (
            json!({"type": "docker-restart-container", "container": "web", "timeout_ms": 10_000}),
            "timeout_ms",
        ),
        (json!({"type": "docker-kill-container", "container": "web", "signal": ""}), "signal"),
        (
            json!({"type": "docker-kill-container", "container": "web", "signal": "SIG KILL"}),
            "signal",
        ),
        (json!({"type": "docker-kill-container", "container": "web", "signal": "0"}), "signal"),
        (json!({"type": "docker-kill-container", "container": "web", "signal": "65"}), "signal"),
        (json!({"type": "docker-kill-container", "container": "web", "signal": "9x"}), "signal"),
        (
            json!({"type": "docker-kill-container", "container": "web", "signal": "S".repeat(33)}),
            "signal",
        ),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
    }
    for ok in [
        json!({"type": "docker-kill-container", "container": "web", "signal": "9"}),
        json!({"type": "docker-kill-container", "container": "web", "signal": "hup"}),
        json!({"type": "docker-restart-container", "container": "web", "stop_timeout_secs": 0, "timeout_ms": 1}),
        json!({"type": "docker-restart-container", "container": "w.e_b-1", "stop_timeout_secs": 119, "timeout_ms": 120_000}),
        json!({"type": "docker-start-container", "container": "web", "endpoint": "http://10.0.0.5:2375"}),
    ] {
        assert!(parse(ok.clone()).is_ok(), "{ok}");
    }
}

#[test]
fn schemas_list_every_field_and_require_only_the_container() {
    let types = reaction_types();
    let common = ["endpoint", "api_version", "container", "timeout_ms"];
    let extra = [
        ("docker-restart-container", Some("stop_timeout_secs")),
        ("docker-start-container", None),
        ("docker-kill-container", Some("signal")),
    ];
    for (name, extra) in extra {
        let info = types.iter().find(|t| t.name == name).unwrap();
        let properties = info.schema["properties"].as_object().unwrap();
        let mut expected: Vec<&str> = common.iter().copied().chain(extra).collect();
        expected.sort_unstable();
        let mut listed: Vec<&str> = properties.keys().map(String::as_str).collect();
        listed.sort_unstable();
        assert_eq!(listed, expected, "{name}");
        assert_eq!(info.schema["required"], json!(["container"]), "{name}");
        assert!(info.secret_fields.is_empty());
        assert_eq!(properties["endpoint"]["default"], DEFAULT_ENDPOINT);
    }
}
