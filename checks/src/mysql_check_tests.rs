use serde_json::json;

use super::*;
use crate::db_test_servers::{MariadbServer, start_mariadb};
use crate::test_support::{refused_port, silent_server};
use crate::{CheckConfig, check_types};

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

fn fields(host: &str, port: u16) -> serde_json::Value {
    json!({"type": "mysql", "host": host, "port": port, "user": "monitor", "password": "hunter2"})
}

fn with(mut value: serde_json::Value, changes: serde_json::Value) -> serde_json::Value {
    for (key, change) in changes.as_object().unwrap() {
        value[key] = change.clone();
    }
    value
}

fn build(value: serde_json::Value) -> MysqlCheck {
    match parse(value.clone()) {
        Ok(CheckConfig::Mysql(config)) => {
            MysqlCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
        }
        other => panic!("{value}: {other:?}"),
    }
}

/// A check of `server` as its password user, with `changes` applied.
fn check(server: &MariadbServer, changes: serde_json::Value) -> MysqlCheck {
    let base = fields("127.0.0.1", server.port);
    build(with(with(base, json!({"user": server.user, "password": server.password})), changes))
}

/// Returns the server's `Threads_connected`, read as root through the socket.
async fn threads_connected(server: &MariadbServer) -> u64 {
    let mut conn = Conn::new(server.root_over_socket()).await.unwrap();
    let query = "SHOW GLOBAL STATUS WHERE Variable_name = 'Threads_connected'";
    let row: Option<(String, u64)> = conn.query_first(query).await.unwrap();
    conn.disconnect().await.unwrap();
    row.unwrap().1
}

/// One test per server: starting MariaDB is the slow part. The server stops (by pid) when its
/// guard drops at the end, or when an assertion fails.
#[tokio::test]
async fn against_a_real_mariadb_server() {
    let server = start_mariadb().await;
    let target = format!("127.0.0.1:{}", server.port);

    // Healthy: logs in with the password over TCP and gets `1` back.
    let outcome = check(&server, json!({})).run().await;
    let CheckOutcome::Healthy { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("SELECT 1 answered in ") && reason.ends_with(" ms"), "{reason}");
    let outcome = check(&server, json!({"database": "information_schema"})).run().await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");

    // A wrong password or none: the server's reason, never the password.
    for wrong in ["not-the-password", "my-test-secret-2"] {
        let outcome = check(&server, json!({"password": wrong})).run().await;
        let reason = format!(
            "could not log in to {target}: Access denied for user 'monitor'@'127.0.0.1' \
             (using password: YES)"
        );
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }
    let outcome = check(&server, json!({"password": null})).run().await;
    let CheckOutcome::Failed { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("Access denied") && reason.contains("using password: NO"), "{reason}");
    let outcome = check(&server, json!({"database": "no_such_db"})).run().await;
    let CheckOutcome::Failed { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with(&format!("could not log in to {target}: ")), "{reason}");
    assert!(reason.contains("no_such_db"), "{reason}");

    // The status variable against thresholds, both ways: our own probe is connected, so
    // Threads_connected is at least 1 while the check reads it.
    let threads = json!("Threads_connected");
    let outcome = check(&server, json!({"status_variable": threads, "max": 0})).run().await;
    let CheckOutcome::Failed { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(
        reason.starts_with("Threads_connected is ") && reason.ends_with(", above 0"),
        "{reason}"
    );
    let outcome = check(&server, json!({"status_variable": threads, "min": 1000})).run().await;
    let CheckOutcome::Failed { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.ends_with(", below 1000"), "{reason}");
    let outcome =
        check(&server, json!({"status_variable": threads, "min": 1, "max": 1000})).run().await;
    let CheckOutcome::Healthy { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("Threads_connected is ") && reason.ends_with("(min 1, max 1000)"));
    // Names are matched exactly (`_` is no wildcard), in any case as MySQL does.
    let outcome = check(&server, json!({"status_variable": "threads_connected", "max": 1000}));
    assert!(matches!(outcome.run().await, CheckOutcome::Healthy { .. }));
    let outcome = check(&server, json!({"status_variable": "Threads_connecte_", "max": 1}));
    let reason = format!("{target} has no status variable Threads_connecte_");
    assert_eq!(outcome.run().await, CheckOutcome::Unknown { reason });

    // Each run logs out: only the root session reading the count is left.
    let check = check(&server, json!({}));
    for _ in 0..3 {
        assert!(matches!(check.run().await, CheckOutcome::Healthy { .. }));
    }
    let started = Instant::now();
    while threads_connected(&server).await > 1 {
        assert!(started.elapsed() < Duration::from_secs(3), "sessions left open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn failed_when_the_connection_is_refused() {
    let port = refused_port().await;
    let outcome = build(with(fields("127.0.0.1", port), json!({"timeout_ms": 2000}))).run().await;
    let reason = format!("connection refused: 127.0.0.1:{port}");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn failed_in_time_when_the_server_never_answers() {
    let addr = silent_server().await;
    let started = Instant::now();
    let value = with(fields("127.0.0.1", addr.port()), json!({"timeout_ms": 300}));
    let outcome = build(value).run().await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no answer within 300 ms".into() });
}

#[test]
fn status_values_are_judged_against_the_limits() {
    let rule = |min, max| StatusRule { name: "Threads_connected".into(), min, max };
    let failed = |reason: &str| CheckOutcome::Failed { reason: reason.into() };
    assert_eq!(rule(None, Some(50.0)).outcome("57"), failed("Threads_connected is 57, above 50"));
    assert_eq!(rule(Some(5.0), None).outcome("3"), failed("Threads_connected is 3, below 5"));
    let healthy = CheckOutcome::Healthy { reason: "Threads_connected is 50 (max 50)".into() };
    assert_eq!(rule(None, Some(50.0)).outcome("50"), healthy);
    let healthy = CheckOutcome::Healthy { reason: "Threads_connected is 5 (min 5)".into() };
    assert_eq!(rule(Some(5.0), None).outcome("5"), healthy);
    assert_eq!(
        rule(Some(0.5), Some(2.5)).outcome("1.5"),
        CheckOutcome::Healthy { reason: "Threads_connected is 1.5 (min 0.5, max 2.5)".into() }
    );
    let unknown = rule(None, Some(1.0)).outcome("ON");
    assert!(matches!(unknown, CheckOutcome::Unknown { .. }), "{unknown:?}");
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let cases = [
        (json!({"host": ""}), "host"),
        (json!({"host": "/run/mysqld/mysqld.sock"}), "host"),
        (json!({"port": 0}), "port"),
        (json!({"user": ""}), "user"),
        (json!({"password": "***"}), "password"),
        (json!({"database": ""}), "database"),
        (json!({"status_variable": "Threads_connected"}), "status_variable"),
        (json!({"status_variable": "Threads' OR 1=1 -- ", "max": 1}), "status_variable"),
        (json!({"status_variable": "x".repeat(65), "max": 1}), "status_variable"),
        (json!({"status_variable": "", "max": 1}), "status_variable"),
        (json!({"max": 10}), "max"),
        (json!({"min": 10}), "min"),
        (json!({"status_variable": "Uptime", "min": 10, "max": 5}), "min"),
        (json!({"max": "ten", "status_variable": "Uptime"}), "max"),
        (json!({"timeout_ms": 0}), "timeout_ms"),
        (json!({"ssl": true}), "ssl"),
    ];
    for (changes, field) in cases {
        let value = with(fields("db", 3306), changes);
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
}

#[test]
fn defaults_debug_and_targets() {
    let value = json!({"type": "mysql", "host": "::1", "user": "u", "password": "hunter2"});
    let Ok(CheckConfig::Mysql(config)) = parse(value) else { panic!() };
    assert_eq!((config.port, config.timeout_ms), (3306, 5000));
    assert_eq!(config.database, None);
    let check = MysqlCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback());
    assert_eq!(check.target, "[::1]:3306");
    assert_eq!(check.kind(), "mysql");
    let shown = format!("{config:?} {check:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn schema_lists_every_field_and_marks_the_password_write_only() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "mysql").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    let all = [
        "host",
        "port",
        "user",
        "password",
        "database",
        "status_variable",
        "max",
        "min",
        "timeout_ms",
    ];
    for field in all {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    assert_eq!(properties.len(), all.len(), "{properties:?}");
    assert_eq!(properties["password"]["writeOnly"], json!(true));
    assert_eq!(properties["port"]["default"], json!(3306));
    assert_eq!(SECRET_FIELDS, ["password"]);
}
