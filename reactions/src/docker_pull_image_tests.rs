//! Tests of `docker-pull-image` against a fake Docker Engine on a unix socket and on TCP, as the
//! Engine API documents `ImageCreate`
//! (<https://docs.docker.com/reference/api/engine/version/v1.43/#tag/Image/operation/ImageCreate>):
//! `POST /v1.43/images/create?fromImage=NAME&tag=TAG`, credentials as `X-Registry-Auth`
//! (base64url JSON `AuthConfig`), a `200` answer streaming JSON progress lines.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::*;
use crate::docker::tests::{build, docker_error, fakes, incident, parse};
use crate::test_api::Reply;
use crate::{ReactionConfig, reaction_types, redact};

const DIGEST: &str = "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31";

fn stream(lines: &[serde_json::Value]) -> Reply {
    let body: String = lines.iter().map(|line| format!("{line}\r\n")).collect();
    Reply { status: 200, body, delay: Duration::ZERO }
}

fn progress_then(last: serde_json::Value) -> Reply {
    stream(&[
        json!({"status": "Pulling from library/nginx", "id": "1.27"}),
        json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "a2abf6c4d29d"}),
        json!({
            "status": "Downloading", "id": "a2abf6c4d29d",
            "progressDetail": {"current": 1024, "total": 31_357_624},
            "progress": "[>                                                  ]  1.024kB/31.36MB",
        }),
        json!({"status": "Pull complete", "progressDetail": {}, "id": "a2abf6c4d29d"}),
        last,
    ])
}

#[tokio::test]
async fn a_pull_reads_the_progress_stream_to_its_end_over_the_socket_and_tcp() {
    let (_dir, fakes) = fakes().await;
    for fake in &fakes {
        let reply = stream(&[
            json!({"status": "Pulling from library/nginx", "id": "1.27"}),
            json!({"status": format!("Digest: {DIGEST}")}),
            json!({"status": "Status: Downloaded newer image for nginx:1.27"}),
        ]);
        fake.reply("POST", "/v1.43/images/create", vec![reply]);
        let reaction = build(
            json!({"type": "docker-pull-image", "endpoint": fake.base_url(), "image": "nginx:1.27"}),
        );
        let fired = reaction.fire(&incident()).await.unwrap();
        let detail = format!(
            "HTTP 200, pulled nginx:1.27: Downloaded newer image for nginx:1.27, digest {DIGEST}"
        );
        assert_eq!(fired, Fired::Executed(detail), "{}", fake.base_url());
        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        let path = "/v1.43/images/create";
        crate::docker::tests::assert_docker_request(
            fake,
            request,
            path,
            "fromImage=nginx&tag=1.27",
        );
        assert_eq!(request.header("x-registry-auth"), None);
        assert_eq!((reaction.kind(), reaction.effect()), ("docker-pull-image", Effect::Idempotent));
    }
}

#[tokio::test]
async fn a_private_image_sends_its_credentials_as_base64url_json() {
    let (_dir, fakes) = fakes().await;
    for fake in &fakes {
        let done = json!({"status": "Status: Image is up to date for registry.example.com:5000/team/app:1.4"});
        fake.reply("POST", "/v1.43/images/create", vec![progress_then(done)]);
        let reaction = build(json!({
            "type": "docker-pull-image", "endpoint": fake.base_url(),
            "image": "registry.example.com:5000/team/app", "tag": "1.4",
            "registry_username": "deploy", "registry_password": "p>?w0rd",
        }));
        let fired = reaction.fire(&incident()).await.unwrap();
        let detail = "HTTP 200, pulled registry.example.com:5000/team/app:1.4: Image is up to date \
                      for registry.example.com:5000/team/app:1.4";
        assert_eq!(fired, Fired::Executed(detail.into()));
        let request = fake.requests().pop().unwrap();
        let query = "fromImage=registry.example.com%3A5000%2Fteam%2Fapp&tag=1.4";
        assert_eq!(request.query.as_deref(), Some(query));
        // Computed independently (Python's base64.urlsafe_b64encode): the URL-safe alphabet
        // (`-`, where standard base64 has `+`) with padding, as the docker CLI sends it.
        let expected = "eyJwYXNzd29yZCI6InA-P3cwcmQiLCJzZXJ2ZXJhZGRyZXNzIjoicmVnaXN0cnkuZXhhbXBsZS5jb206NTAwMCIsInVzZXJuYW1lIjoiZGVwbG95In0=";
        let header = request.header("x-registry-auth").unwrap();
        assert_eq!(header, expected);
        let decoded: serde_json::Value =
            serde_json::from_slice(&URL_SAFE.decode(header).unwrap()).unwrap();
        let auth = json!({"username": "deploy", "password": "p>?w0rd", "serveraddress": "registry.example.com:5000"});
        assert_eq!(decoded, auth);
    }
}

#[tokio::test]
async fn docker_hub_credentials_name_the_hub_and_an_explicit_server_wins() {
    let (_dir, fakes) = fakes().await;
    let fake = &fakes[0];
    fake.reply(
        "POST",
        "/v1.43/images/create",
        vec![progress_then(json!({"status": "Status: ok"}))],
    );
    let hub = json!({
        "type": "docker-pull-image", "endpoint": fake.base_url(), "image": "team/app",
        "registry_username": "deploy", "registry_password": "tok",
    });
    build(hub.clone()).fire(&incident()).await.unwrap();
    let mut explicit = hub;
    explicit["registry_server"] = json!("hub.mirror.internal");
    build(explicit).fire(&incident()).await.unwrap();
    let servers: Vec<serde_json::Value> = fake
        .requests()
        .iter()
        .map(|request| {
            let header = request.header("x-registry-auth").unwrap();
            let auth: serde_json::Value =
                serde_json::from_slice(&URL_SAFE.decode(header).unwrap()).unwrap();
            auth["serveraddress"].clone()
        })
        .collect();
    assert_eq!(servers, [json!("https://index.docker.io/v1/"), json!("hub.mirror.internal")]);
    assert_eq!(fake.requests()[0].query.as_deref(), Some("fromImage=team%2Fapp&tag=latest"));
}

#[tokio::test]
async fn the_tag_defaults_to_latest_and_a_digest_travels_as_the_tag() {
    let (_dir, fakes) = fakes().await;
    let fake = &fakes[1];
    fake.reply(
        "POST",
        "/v1.43/images/create",
        vec![progress_then(json!({"status": "Status: ok"}))],
    );
    let plain =
        build(json!({"type": "docker-pull-image", "endpoint": fake.base_url(), "image": "alpine"}));
    let fired = plain.fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed("HTTP 200, pulled alpine:latest: ok".into()));
    let pinned = format!("alpine@{DIGEST}");
    let by_digest =
        build(json!({"type": "docker-pull-image", "endpoint": fake.base_url(), "image": pinned}));
    let fired = by_digest.fire(&incident()).await.unwrap();
    assert_eq!(fired, Fired::Executed(format!("HTTP 200, pulled {pinned}: ok")));
    let queries: Vec<_> = fake.requests().into_iter().map(|r| r.query.unwrap()).collect();
    let digest_query = format!("fromImage=alpine&tag={}", DIGEST.replace(':', "%3A"));
    assert_eq!(queries, ["fromImage=alpine&tag=latest".to_owned(), digest_query]);
}

#[tokio::test]
async fn an_error_line_fails_the_pull_quoting_docker() {
    let (_dir, fakes) = fakes().await;
    let message = "manifest for nginx:nosuch not found: manifest unknown: manifest unknown";
    for fake in &fakes {
        let detailed =
            progress_then(json!({"errorDetail": {"message": message}, "error": "short"}));
        let bare =
            stream(&[json!({"status": "Pulling from library/nginx"}), json!({"error": message})]);
        fake.reply("POST", "/v1.43/images/create", vec![detailed, bare]);
        let reaction = build(
            json!({"type": "docker-pull-image", "endpoint": fake.base_url(), "image": "nginx:nosuch"}),
        );
        for _ in 0..2 {
            let error = reaction.fire(&incident()).await.unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("docker-pull-image: pull of nginx:nosuch failed: {message}")
            );
            assert!(matches!(error, ReactionError::Failed { .. }));
            assert!(!error.is_retryable());
        }
    }
}

#[tokio::test]
async fn refused_pulls_quote_docker_and_only_server_errors_are_retryable() {
    let (_dir, fakes) = fakes().await;
    let denied = "pull access denied for nosuch/app, repository does not exist or may require 'docker login'";
    for fake in &fakes {
        fake.reply(
            "POST",
            "/v1.43/images/create",
            vec![docker_error(404, denied), docker_error(500, "Something went wrong.")],
        );
        let reaction = build(
            json!({"type": "docker-pull-image", "endpoint": fake.base_url(), "image": "nosuch/app"}),
        );
        let error = reaction.fire(&incident()).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("docker-pull-image: target answered HTTP 404 {denied}")
        );
        assert!(!error.is_retryable());
        let error = reaction.fire(&incident()).await.unwrap_err();
        assert!(matches!(error, ReactionError::Rejected { status: 500, .. }), "{error:?}");
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn an_answer_that_is_no_progress_stream_fails() {
    let (_dir, fakes) = fakes().await;
    let fake = &fakes[0];
    let page = Reply {
        status: 200,
        body: "<html>\n<p>proxy login</p>\n</html>".into(),
        delay: Duration::ZERO,
    };
    fake.reply("POST", "/v1.43/images/create", vec![page]);
    let reaction =
        build(json!({"type": "docker-pull-image", "endpoint": fake.base_url(), "image": "nginx"}));
    let error = reaction.fire(&incident()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "docker-pull-image: the answer is not a docker pull progress stream: <html>"
    );
}

/// What a hand-written daemon does after reading the request head.
enum Step {
    Write(String),
    Pause(u64),
    /// Stay silent until the client closes the connection.
    AwaitClose,
}

/// One chunk of a chunked HTTP body.
fn chunk(data: &str) -> Step {
    Step::Write(format!("{:x}\r\n{data}\r\n", data.len()))
}

fn chunked_head() -> Step {
    Step::Write(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .into(),
    )
}

/// Serves one connection on a unix socket at `path` by `steps`, then closes it; returns the
/// request head once done.
fn raw_daemon(path: &Path, steps: Vec<Step>) -> tokio::task::JoinHandle<String> {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        for step in steps {
            match step {
                Step::Write(data) => stream.write_all(data.as_bytes()).await.unwrap(),
                Step::Pause(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Step::AwaitClose => {
                    let mut rest = [0u8; 1];
                    assert_eq!(stream.read(&mut rest).await.unwrap(), 0, "the client sent more");
                }
            }
        }
        String::from_utf8(head).unwrap()
    })
}

fn pull_on(socket: &Path, timeout_ms: u64) -> Box<dyn Reaction> {
    let endpoint = format!("unix://{}", socket.display());
    build(
        json!({"type": "docker-pull-image", "endpoint": endpoint, "image": "nginx", "timeout_ms": timeout_ms}),
    )
}

#[tokio::test]
async fn a_line_split_across_chunks_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let daemon = raw_daemon(
        &socket,
        vec![
            chunked_head(),
            chunk("{\"status\":\"Pulling from library/nginx\"}\n{\"status\":\"Status: Image is up"),
            Step::Pause(50),
            chunk(" to date for nginx:latest\"}\n"),
            Step::Write("0\r\n\r\n".into()),
        ],
    );
    let fired = pull_on(&socket, 2000).fire(&incident()).await.unwrap();
    let detail = "HTTP 200, pulled nginx:latest: Image is up to date for nginx:latest";
    assert_eq!(fired, Fired::Executed(detail.into()));
    let head = daemon.await.unwrap();
    assert!(
        head.starts_with("POST /v1.43/images/create?fromImage=nginx&tag=latest HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.to_lowercase().contains("\r\nhost: docker\r\n"), "{head}");
}

#[tokio::test]
async fn a_stalled_stream_times_out_and_a_cut_one_is_a_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let stalled = dir.path().join("stalled.sock");
    let daemon = raw_daemon(
        &stalled,
        vec![chunked_head(), chunk("{\"status\":\"Pulling fs layer\"}\n"), Step::AwaitClose],
    );
    let started = Instant::now();
    let error = pull_on(&stalled, 300).fire(&incident()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert!(
        matches!(error, ReactionError::Timeout { kind: "docker-pull-image", timeout_ms: 300 }),
        "{error:?}"
    );
    // Giving up closes the connection, which is what makes Docker cancel the pull.
    let closed = tokio::time::timeout(Duration::from_secs(2), daemon).await;
    assert!(closed.expect("the connection stays open after the timeout").is_ok());

    let cut = dir.path().join("cut.sock");
    let _daemon =
        raw_daemon(&cut, vec![chunked_head(), chunk("{\"status\":\"Pulling fs layer\"}\n")]);
    let error = pull_on(&cut, 2000).fire(&incident()).await.unwrap_err();
    let ReactionError::Transport { ref message, .. } = error else { panic!("{error:?}") };
    assert!(message.starts_with("the pull stream of nginx:latest broke off: "), "{message}");
    assert!(error.is_retryable());
}

#[test]
fn defaults_to_a_thirty_second_pull_of_latest() {
    let Ok(ReactionConfig::DockerPullImage(config)) =
        parse(json!({"type": "docker-pull-image", "image": "nginx"}))
    else {
        panic!("expected a docker-pull-image config");
    };
    assert_eq!(
        (config.timeout_ms, config.endpoint.as_str(), config.api_version.as_str()),
        (30_000, "unix:///var/run/docker.sock", "v1.43")
    );
    let (_, pull) = config.parts().unwrap();
    assert_eq!(
        (pull.name.as_str(), pull.tag.as_str(), pull.reference.as_str()),
        ("nginx", "latest", "nginx:latest")
    );
    assert!(pull.auth.is_none());
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let pull = |extra: serde_json::Value| {
        let mut action = json!({"type": "docker-pull-image", "image": "nginx"});
        action.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        action
    };
    let cases = [
        (json!({"type": "docker-pull-image"}), "image"),
        (pull(json!({"image": ""})), "image"),
        (pull(json!({"image": "Nginx"})), "image"),
        (pull(json!({"image": "-nginx"})), "image"),
        (pull(json!({"image": "team//app"})), "image"),
        (pull(json!({"image": "nginx:bad tag"})), "image"),
        (pull(json!({"image": "nginx:"})), "image"),
        (pull(json!({"image": "registry.example.com:port/app"})), "image"),
        (pull(json!({"image": "alpine@sha256:xyz"})), "image"),
        (pull(json!({"image": "alpine@"})), "image"),
        (pull(json!({"image": "a".repeat(256)})), "image"),
        (pull(json!({"tag": ""})), "tag"),
        (pull(json!({"tag": ".hidden"})), "tag"),
        (pull(json!({"tag": "1.27 stable"})), "tag"),
        (pull(json!({"tag": "t".repeat(129)})), "tag"),
        (pull(json!({"image": "nginx:1.27", "tag": "1.26"})), "tag"),
        (pull(json!({"registry_username": "deploy"})), "registry_password"),
        (pull(json!({"registry_password": "hunter2"})), "registry_username"),
        (
            pull(json!({"registry_username": "", "registry_password": "hunter2"})),
            "registry_username",
        ),
        (
            pull(json!({"registry_username": "deploy", "registry_password": ""})),
            "registry_password",
        ),
        (
            pull(json!({"registry_username": "deploy", "registry_password": "***"})),
            "registry_password",
        ),
        (pull(json!({"registry_server": "registry.example.com"})), "registry_server"),
        (
            pull(
                json!({"registry_username": "d", "registry_password": "p", "registry_server": " "}),
            ),
            "registry_server",
        ),
        (pull(json!({"endpoint": "tcp://10.0.0.5:2375"})), "endpoint"),
        (pull(json!({"api_version": "latest"})), "api_version"),
        (pull(json!({"timeout_ms": 0})), "timeout_ms"),
        (pull(json!({"timeout_ms": 120_001})), "timeout_ms"),
        (pull(json!({"auth": {}})), "auth"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert!(!error.message.contains("hunter2"), "{error}");
    }
    for image in [
        "nginx",
        "library/nginx:1.27-alpine",
        "localhost:5000/app",
        "ghcr.io/org/my_app.v2:v1",
        "127.0.0.1:5000/a-b",
    ] {
        assert!(parse(pull(json!({"image": image}))).is_ok(), "{image}");
    }
}

#[test]
fn the_password_is_write_only_and_never_shown() {
    let action = json!({
        "type": "docker-pull-image", "image": "registry.example.com/team/app",
        "registry_username": "deploy", "registry_password": "hunter2",
    });
    let Ok(ReactionConfig::DockerPullImage(config)) = parse(action.clone()) else { panic!() };
    assert!(!format!("{config:?}").contains("hunter2"));
    let reaction = build(action.clone());
    let shown = format!("{reaction:?}");
    // Nor the header carrying it: base64 of `{"` starts with `eyJ`.
    assert!(!shown.contains("hunter2") && !shown.contains("eyJ"), "{shown}");
    let spec = serde_json::from_value(action).unwrap();
    let redacted = serde_json::to_value(redact(&spec)).unwrap();
    assert_eq!(redacted["registry_password"], "***");
    assert_eq!(redacted["registry_username"], "deploy");

    let types = reaction_types();
    let info = types.iter().find(|t| t.name == "docker-pull-image").unwrap();
    assert_eq!(info.secret_fields, ["registry_password"]);
    let properties = info.schema["properties"].as_object().unwrap();
    let mut listed: Vec<&str> = properties.keys().map(String::as_str).collect();
    listed.sort_unstable();
    let expected = [
        "api_version",
        "endpoint",
        "image",
        "registry_password",
        "registry_server",
        "registry_username",
        "tag",
        "timeout_ms",
    ];
    assert_eq!(listed, expected);
    assert_eq!(properties["registry_password"]["writeOnly"], json!(true));
    assert_eq!(info.schema["required"], json!(["image"]));
}
