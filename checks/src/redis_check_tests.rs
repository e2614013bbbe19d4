use serde_json::json;

use super::*;
use crate::db_test_servers::{RedisServer, start_redis};
use crate::test_support::{refused_port, silent_server};
use crate::{CheckConfig, check_types};

const PASSWORD: &str = "s3cr@t/pw";

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

fn check(value: serde_json::Value) -> RedisCheck {
    let mut value = value;
    value["type"] = json!("redis");
    match parse(value.clone()) {
        Ok(CheckConfig::Redis(config)) => {
            RedisCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
        }
        other => panic!("{value}: {other:?}"),
    }
}

async fn run(value: serde_json::Value) -> CheckOutcome {
    check(value).run().await
}

fn url(server: &RedisServer) -> String {
    format!("redis://127.0.0.1:{}", server.port)
}

/// Returns `connected_clients` from the server's `INFO clients`, counting this connection.
async fn connected_clients(server: &RedisServer) -> u64 {
    let client = redis::Client::open(url(server)).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let info: String =
        redis::cmd("INFO").arg("clients").query_async(&mut connection).await.unwrap();
    let line = info.lines().find_map(|line| line.strip_prefix("connected_clients:")).unwrap();
    line.trim().parse().unwrap()
}

/// One test per set of servers: starting them is the slow part. Each server stops (by pid)
/// when its guard drops at the end, or when an assertion fails.
#[tokio::test]
async fn against_real_redis_servers() {
    let plain = start_redis(&[]).await;
    let locked = start_redis(&["--requirepass", PASSWORD]).await;
    let replica = start_redis(&["--replicaof", "127.0.0.1", &plain.port.to_string()]).await;
    let target = |server: &RedisServer| format!("127.0.0.1:{}", server.port);

    // Healthy: PONG, with or without a role.
    let outcome = run(json!({"url": url(&plain)})).await;
    let CheckOutcome::Healthy { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("PONG in ") && reason.ends_with(" ms"), "{reason}");
    let outcome = run(json!({"url": url(&plain), "expect_role": "master"})).await;
    let CheckOutcome::Healthy { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.ends_with("ms, role master"), "{reason}");
    let outcome = run(json!({"url": format!("{}/3", url(&plain))})).await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");

    // Failover: a replica where a master is expected fails, and the other way round.
    let outcome = run(json!({"url": url(&replica), "expect_role": "master"})).await;
    let reason = format!("{} is a replica, expected a master", target(&replica));
    assert_eq!(outcome, CheckOutcome::Failed { reason });
    let outcome = run(json!({"url": url(&replica), "expect_role": "replica"})).await;
    let CheckOutcome::Healthy { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.ends_with("role replica"), "{reason}");
    let outcome = run(json!({"url": url(&plain), "expect_role": "replica"})).await;
    let reason = format!("{} is a master, expected a replica", target(&plain));
    assert_eq!(outcome, CheckOutcome::Failed { reason });

    // A database the server does not have: the server's error, as a failure.
    let outcome = run(json!({"url": format!("{}/999", url(&plain))})).await;
    let reason = format!("{} answered with an error: DB index is out of range", target(&plain));
    assert_eq!(outcome, CheckOutcome::Failed { reason });

    // Authentication: in `password`, wrong, missing.
    let outcome =
        run(json!({"url": url(&locked), "password": PASSWORD, "expect_role": "master"})).await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
    for wrong in ["not-the-password", "hunter2-wrong"] {
        let outcome = run(json!({"url": url(&locked), "password": wrong})).await;
        let CheckOutcome::Failed { reason } = &outcome else { panic!("{outcome:?}") };
        assert!(reason.contains("authentication failed"), "{reason}");
        assert!(reason.contains(&target(&locked)), "{reason}");
        assert!(!reason.contains(wrong) && !reason.contains(PASSWORD), "{reason}");
    }
    let outcome = run(json!({"url": url(&locked)})).await;
    let reason = format!("authentication required by {}: no password configured", target(&locked));
    assert_eq!(outcome, CheckOutcome::Failed { reason });

    // One connection per run, closed when the run ends: only the probe's own is left.
    let check = check(json!({"url": url(&plain)}));
    for _ in 0..5 {
        assert!(matches!(check.run().await, CheckOutcome::Healthy { .. }));
    }
    let started = Instant::now();
    while connected_clients(&plain).await > 1 {
        assert!(started.elapsed() < Duration::from_secs(3), "connections left open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn failed_when_the_connection_is_refused() {
    let port = refused_port().await;
    let outcome =
        run(json!({"url": format!("redis://127.0.0.1:{port}"), "timeout_ms": 2000})).await;
    assert_eq!(
        outcome,
        CheckOutcome::Failed { reason: format!("connection refused: 127.0.0.1:{port}") }
    );
}

#[tokio::test]
async fn failed_in_time_when_the_server_never_answers() {
    let addr = silent_server().await;
    let started = Instant::now();
    let outcome = run(json!({"url": format!("redis://{addr}"), "timeout_ms": 300})).await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no answer within 300 ms".into() });
}

/// Answers every command (each RESP array) with `+HELLO`: a server, but not a Redis.
async fn hello_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer).await {
                    let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    let commands = text.split("\r\n").filter(|line| line.starts_with('*')).count();
                    let answer = "+HELLO\r\n".repeat(commands);
                    if n == 0 || stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn failed_when_ping_gets_another_answer() {
    let addr = hello_server().await;
    let outcome = run(json!({"url": format!("redis://{addr}"), "timeout_ms": 2000})).await;
    let reason = format!("{addr} answered PING with `HELLO`, expected PONG");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let cases = [
        (json!({"url": "rediss://cache:6380"}), "url", "tls"),
        (json!({"url": "http://cache:6379"}), "url", "scheme"),
        (json!({"url": "redis://"}), "url", "host"),
        (json!({"url": "cache:6379"}), "url", "scheme"),
        (json!({"url": "not a url"}), "url", "url"),
        (json!({"url": "redis://cache/abc"}), "url", "database number"),
        (json!({"url": "redis://cache/0?protocol=9"}), "url", "protocol"),
        (json!({"url": "redis://:***@cache"}), "url", "must not hold a password"),
        (json!({"url": "redis://app:pw@cache"}), "url", "must not hold a password"),
        (json!({"url": "redis://cache", "password": "***"}), "password", "placeholder"),
        (json!({"url": "redis://cache", "password": 5}), "password", ""),
        (json!({"url": "redis://cache", "expect_role": "primary"}), "expect_role", "primary"),
        (json!({"url": "redis://cache", "timeout_ms": 0}), "timeout_ms", ""),
        (json!({"url": "redis://cache", "bogus": 1}), "bogus", ""),
        (json!({}), "url", ""),
    ];
    for (mut value, field, words) in cases {
        value["type"] = json!("redis");
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
        assert!(error.message.contains(words), "{value}: {error}");
        assert!(!error.message.contains("pw"), "{value}: {error}");
    }
}

#[test]
fn debug_output_never_shows_a_password() {
    let value = json!({"type": "redis", "url": "redis://cache", "password": "hunter2"});
    let Ok(CheckConfig::Redis(config)) = parse(value.clone()) else { panic!("{value}") };
    let shown = format!(
        "{config:?} {:?}",
        RedisCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("cache"), "{shown}");
    assert_eq!(format!("{:?}", RedisUrl::new("nonsense")), "RedisUrl(<not a url>)");
}

#[test]
fn defaults_and_targets() {
    let check = check(json!({"url": "redis://[::1]"}));
    assert_eq!(check.target, "[::1]:6379");
    assert_eq!(check.timeout(), Duration::from_secs(5));
    assert_eq!(check.kind(), "redis");
}

#[test]
fn roles_are_read_from_info_replication() {
    let info = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\n";
    assert_eq!(role_in_info(info), Some(Role::Replica));
    assert_eq!(role_in_info("# Replication\r\nrole:master\r\n"), Some(Role::Master));
    assert_eq!(role_in_info("# Replication\r\nrole:sentinel\r\n"), None);
    assert_eq!(role_in_info(""), None);
}

#[test]
fn schema_lists_every_field_and_marks_the_password_write_only() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "redis").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["url", "password", "expect_role", "timeout_ms"] {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    assert_eq!(properties["password"]["writeOnly"], json!(true));
    assert_eq!(SECRET_FIELDS, ["password"]);
}
