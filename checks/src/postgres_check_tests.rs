use serde_json::json;

use super::*;
use crate::db_test_servers::{PostgresServer, start_postgres};
use crate::test_support::{refused_port, silent_server};
use crate::{CheckConfig, check_types};

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

/// A check of `server` as its superuser, with `fields` added or replaced.
fn check(server: &PostgresServer, fields: serde_json::Value) -> PostgresCheck {
    let mut value = json!({
        "type": "postgres", "host": "127.0.0.1", "port": server.port, "user": "postgres",
        "password": server.password, "database": "postgres", "timeout_ms": 5000,
    });
    for (key, field) in fields.as_object().unwrap() {
        value[key] = field.clone();
    }
    match parse(value.clone()) {
        Ok(CheckConfig::Postgres(config)) => {
            PostgresCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
        }
        other => panic!("{value}: {other:?}"),
    }
}

/// Runs `sql` as the superuser outside any check; returns the first column of the first row.
async fn admin_query(server: &PostgresServer, sql: &str) -> Result<i64, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config.host("127.0.0.1").port(server.port).user("postgres").password(server.password);
    config.dbname("postgres");
    let (client, connection) = config.connect(NoTls).await?;
    let connection = tokio::spawn(connection);
    let value = client.query_one(sql, &[]).await.map(|row| row.get::<_, i64>(0));
    drop(client);
    let _ = connection.await;
    value
}

/// One test per server: starting PostgreSQL is the slow part. The server stops (by pid) when
/// its guard drops at the end, or when an assertion fails.
#[tokio::test]
async fn against_a_real_postgres_server() {
    let server = start_postgres().await;
    let target = format!("127.0.0.1:{}", server.port);

    // Healthy: the default `SELECT 1`, and a query of our own that ends with `;`.
    let outcome = check(&server, json!({})).run().await;
    let CheckOutcome::Healthy { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("query returned 1 row in ") && reason.ends_with(" ms"), "{reason}");
    let query =
        json!({"query": "SELECT datname FROM pg_database WHERE datname LIKE 'template%' ;"});
    let outcome = check(&server, query).run().await;
    let CheckOutcome::Healthy { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("query returned 2 rows in "), "{reason}");

    // A wrong password: the server's reason, never a password.
    for wrong in ["not-the-password", "pg-test-secret-2"] {
        let outcome = check(&server, json!({"password": wrong})).run().await;
        let reason = format!(
            "could not log in to {target}: password authentication failed for user \"postgres\""
        );
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }
    let outcome = check(&server, json!({"password": null})).run().await;
    let CheckOutcome::Failed { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with(&format!("could not log in to {target}: ")), "{reason}");
    assert!(reason.contains("password missing"), "{reason}");

    // An unknown database, a query that errors.
    let outcome = check(&server, json!({"database": "no_such_db"})).run().await;
    let reason = format!("could not log in to {target}: database \"no_such_db\" does not exist");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
    let outcome = check(&server, json!({"query": "SELECT * FROM no_such_table"})).run().await;
    let reason = format!("query failed on {target}: relation \"no_such_table\" does not exist");
    assert_eq!(outcome, CheckOutcome::Failed { reason });

    // Writes are refused by the read-only transaction, even for a superuser, and nothing stays.
    let outcome =
        check(&server, json!({"query": "CREATE TABLE probe_written (x int)"})).run().await;
    let reason =
        format!("query failed on {target}: cannot execute CREATE TABLE in a read-only transaction");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
    let count = "SELECT count(*) FROM pg_class WHERE relname = 'probe_written'";
    assert_eq!(admin_query(&server, count).await.unwrap(), 0);

    // Each run logs out: no session of the check is left on the server.
    let check = check(&server, json!({}));
    for _ in 0..3 {
        assert!(matches!(check.run().await, CheckOutcome::Healthy { .. }));
    }
    let sessions = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}'"
    );
    let started = Instant::now();
    while admin_query(&server, &sessions).await.unwrap() > 0 {
        assert!(started.elapsed() < Duration::from_secs(3), "sessions left open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fields(host: &str, port: u16, timeout_ms: u64) -> serde_json::Value {
    json!({
        "type": "postgres", "host": host, "port": port, "user": "monitor",
        "password": "hunter2", "database": "app", "timeout_ms": timeout_ms,
    })
}

fn build(value: serde_json::Value) -> PostgresCheck {
    let Ok(CheckConfig::Postgres(config)) = parse(value.clone()) else { panic!("{value}") };
    PostgresCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
}

#[tokio::test]
async fn failed_when_the_connection_is_refused() {
    let port = refused_port().await;
    let outcome = build(fields("127.0.0.1", port, 2000)).run().await;
    assert_eq!(
        outcome,
        CheckOutcome::Failed { reason: format!("connection refused: 127.0.0.1:{port}") }
    );
}

#[tokio::test]
async fn failed_in_time_when_the_server_never_answers() {
    let addr = silent_server().await;
    let started = Instant::now();
    let outcome = build(fields("127.0.0.1", addr.port(), 300)).run().await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no answer within 300 ms".into() });
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let cases = [
        (json!({"host": ""}), "host"),
        (json!({"host": "/var/run/postgresql"}), "host"),
        (json!({"port": 0}), "port"),
        (json!({"port": 70000}), "port"),
        (json!({"user": ""}), "user"),
        (json!({"password": "***"}), "password"),
        (json!({"database": ""}), "database"),
        (json!({"query": " ; "}), "query"),
        (json!({"query": "SELECT 1; DROP TABLE users"}), "query"),
        (json!({"query": "SELECT 1;\nSELECT 2;"}), "query"),
        (json!({"query": "SELECT '\u{0}'"}), "query"),
        (json!({"query": "x".repeat(4097)}), "query"),
        (json!({"timeout_ms": 0}), "timeout_ms"),
        (json!({"sslmode": "require"}), "sslmode"),
    ];
    for (changes, field) in cases {
        let mut value = fields("db", 5432, 5000);
        for (key, change) in changes.as_object().unwrap() {
            value[key] = change.clone();
        }
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
    let mut missing = fields("db", 5432, 5000);
    missing.as_object_mut().unwrap().remove("database");
    assert_eq!(parse(missing).unwrap_err().field, "database");
}

#[test]
fn defaults_debug_and_targets() {
    let value = json!({"type": "postgres", "host": "::1", "user": "u", "password": "hunter2",
        "database": "app"});
    let Ok(CheckConfig::Postgres(config)) = parse(value) else { panic!() };
    assert_eq!((config.port, config.query.as_str(), config.timeout_ms), (5432, "SELECT 1", 5000));
    let check = PostgresCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback());
    assert_eq!(check.target, "[::1]:5432");
    assert_eq!(check.kind(), "postgres");
    let shown = format!("{config:?} {check:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let with_semicolon = json!({"query": "SELECT 1 ;  "});
    let mut value = fields("db", 5432, 5000);
    value["query"] = with_semicolon["query"].clone();
    assert_eq!(build(value).query, "SELECT 1");
}

#[test]
fn schema_lists_every_field_and_marks_the_password_write_only() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "postgres").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["host", "port", "user", "password", "database", "query", "timeout_ms"] {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    assert_eq!(properties["password"]["writeOnly"], json!(true));
    assert_eq!(properties["port"]["default"], json!(5432));
    assert_eq!(SECRET_FIELDS, ["password"]);
}
