use serde_json::json;
use tokio::net::TcpListener;

use super::*;
use crate::test_support::{refused_port, silent_server};
use crate::{CheckConfig, check_types};

fn config(host: &str, port: u16, timeout_ms: u64) -> Config {
    Config { host: host.into(), port, send: None, expect: None, timeout_ms }
}

fn check(host: &str, port: u16, timeout_ms: u64) -> TcpCheck {
    TcpCheck::new(&config(host, port, timeout_ms))
        .unwrap()
        .with_egress(&crate::test_support::loopback())
}

fn banner_check(port: u16, send: Option<&str>, expect: Option<&str>, timeout_ms: u64) -> TcpCheck {
    let mut config = config("127.0.0.1", port, timeout_ms);
    config.send = send.map(str::to_owned);
    config.expect = expect.map(str::to_owned);
    TcpCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
}

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

/// A Redis-like line server: answers `+PONG\r\n` to `PING\r\n` and `-ERR unknown command\r\n`
/// to any other line, until the client closes.
async fn ping_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while let Ok(1) = stream.read(&mut byte).await {
                    line.push(byte[0]);
                    if line.ends_with(b"\r\n") {
                        let answer: &[u8] = if line == b"PING\r\n" {
                            b"+PONG\r\n"
                        } else {
                            b"-ERR unknown command\r\n"
                        };
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                        line.clear();
                    }
                }
            });
        }
    });
    port
}

/// Greets each connection with `greeting`, then closes it (`close`) or keeps it open.
async fn greeting_server(greeting: &'static [u8], close: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(greeting).await;
            if !close {
                held.push(stream);
            }
        }
    });
    port
}

#[tokio::test]
async fn healthy_when_the_port_listens() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let outcome = check("127.0.0.1", port, 2000).run().await;
    let CheckOutcome::Healthy { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("connected in ") && reason.ends_with(" ms"), "{reason}");
}

#[tokio::test]
async fn resolves_host_names() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let outcome = check("localhost", port, 2000).run().await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
}

#[tokio::test]
async fn failed_when_the_connection_is_refused() {
    let port = refused_port().await;
    let outcome = check("127.0.0.1", port, 2000).run().await;
    let reason = format!("connection refused: 127.0.0.1:{port}");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

/// A listener whose accept queue is full drops new SYNs (Linux), so connecting hangs.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn failed_in_time_when_the_connection_never_opens() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..16 {
        let attempt = TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(200), attempt).await {
            Ok(stream) => queued.push(stream.unwrap()),
            Err(_) => break, // the queue is full
        }
    }
    let started = Instant::now();
    let outcome = check("127.0.0.1", addr.port(), 300).run().await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no answer within 300 ms".into() });
    drop((listener, queued));
}

#[tokio::test]
async fn healthy_when_the_answer_to_send_contains_expect() {
    let port = ping_server().await;
    let outcome = banner_check(port, Some("PING\r\n"), Some("+PONG"), 2000).run().await;
    let CheckOutcome::Healthy { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("connected in "), "{reason}");
    assert!(reason.ends_with(r#" ms, answer contains "+PONG""#), "{reason}");
}

#[tokio::test]
async fn failed_in_time_quoting_a_wrong_answer() {
    let port = ping_server().await;
    let started = Instant::now();
    let outcome = banner_check(port, Some("PONG\r\n"), Some("+PONG"), 300).run().await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    let reason = format!(
        r#"no "+PONG" from 127.0.0.1:{port} within 300 ms, got "-ERR unknown command\r\n""#
    );
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn expect_alone_reads_the_greeting() {
    let port = greeting_server(b"220 mail.example ESMTP ready\r\n", false).await;
    let outcome = banner_check(port, None, Some("ESMTP"), 2000).run().await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
    let outcome = banner_check(port, None, Some("IMAP4"), 200).run().await;
    let reason = format!(
        r#"no "IMAP4" from 127.0.0.1:{port} within 200 ms, got "220 mail.example ESMTP ready\r\n""#
    );
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn failed_when_the_server_closes_before_expect_arrives() {
    let port = greeting_server(b"421 too busy\r\n", true).await;
    let outcome = banner_check(port, None, Some("220"), 2000).run().await;
    let reason = format!(
        r#"127.0.0.1:{port} closed the connection without sending "220", got "421 too busy\r\n""#
    );
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn reads_at_most_64_kib_and_quotes_it_truncated() {
    static FLOOD: [u8; 100_000] = [b'x'; 100_000];
    let port = greeting_server(&FLOOD, false).await;
    let outcome = banner_check(port, None, Some("never"), 5000).run().await;
    let CheckOutcome::Failed { reason } = outcome else { panic!("{outcome:?}") };
    let prefix = format!(r#"no "never" in the first 65536 bytes from 127.0.0.1:{port}, got "x"#);
    assert!(reason.starts_with(&prefix), "{reason}");
    assert!(reason.ends_with(r#"xxx…" (65536 bytes)"#), "{reason}");
}

#[tokio::test]
async fn expect_split_across_reads_is_found() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        for part in [&b"+PO"[..], b"NG\r\n"] {
            stream.write_all(part).await.unwrap();
            stream.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let outcome = banner_check(port, None, Some("+PONG"), 2000).run().await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
}

#[tokio::test]
async fn send_alone_writes_and_is_healthy() {
    let port = ping_server().await;
    let outcome = banner_check(port, Some("PING\r\n"), None, 2000).run().await;
    let CheckOutcome::Healthy { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.ends_with(" ms, sent 6 bytes"), "{reason}");
}

#[tokio::test]
async fn a_silent_server_fails_the_banner_exchange_in_time() {
    let addr = silent_server().await;
    let outcome = banner_check(addr.port(), Some("PING\r\n"), Some("+PONG"), 200).run().await;
    let reason = format!(r#"no "+PONG" from {addr} within 200 ms, got nothing"#);
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let long = "x".repeat(MAX_EXCHANGE_BYTES + 1);
    let cases = [
        (json!({"type": "tcp-check", "host": "x", "port": 0}), "port"),
        (json!({"type": "tcp-check", "host": "x", "port": 65536}), "port"),
        (json!({"type": "tcp-check", "host": "x", "port": "eighty"}), "port"),
        (json!({"type": "tcp-check", "host": "", "port": 80}), "host"),
        (json!({"type": "tcp-check", "host": "a b", "port": 80}), "host"),
        (json!({"type": "tcp-check", "port": 80}), "host"),
        (json!({"type": "tcp-check", "host": "x", "port": 80, "timeout_ms": 0}), "timeout_ms"),
        (json!({"type": "tcp-check", "host": "x", "port": 80, "bogus": true}), "bogus"),
        (json!({"type": "tcp-check", "host": "x", "port": 80, "send": ""}), "send"),
        (json!({"type": "tcp-check", "host": "x", "port": 80, "send": 7}), "send"),
        (json!({"type": "tcp-check", "host": "x", "port": 80, "send": long}), "send"),
        (json!({"type": "tcp-check", "host": "x", "port": 80, "expect": ""}), "expect"),
        (json!({"type": "tcp-check", "host": "x", "port": 80, "expect": long}), "expect"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
}

#[test]
fn timeout_defaults_to_5000_ms_and_the_exchange_to_none() {
    let Ok(CheckConfig::TcpCheck(config)) =
        parse(json!({"type": "tcp-check", "host": "db", "port": 5432}))
    else {
        panic!("expected a tcp-check config");
    };
    assert_eq!(config.timeout_ms, 5000);
    assert_eq!((config.send.as_deref(), config.expect.as_deref()), (None, None));
    assert_eq!(
        TcpCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback()).timeout(),
        Duration::from_secs(5)
    );
}

#[test]
fn json_escapes_reach_the_wire_as_bytes() {
    let spec = json!({"type": "tcp-check", "host": "db", "port": 6379, "send": "PING\r\n"});
    let Ok(CheckConfig::TcpCheck(config)) = parse(spec) else {
        panic!("expected a tcp-check config");
    };
    assert_eq!(
        TcpCheck::new(&config)
            .unwrap()
            .with_egress(&crate::test_support::loopback())
            .send
            .as_deref(),
        Some(&b"PING\r\n"[..])
    );
}

#[test]
fn ipv6_targets_are_bracketed_in_reasons() {
    assert_eq!(check("::1", 80, 1000).target, "[::1]:80");
    assert_eq!(check("[::1]", 80, 1000).target, "[::1]:80");
    assert_eq!(check("[::1]", 80, 1000).host, "::1");
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "tcp-check").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["host", "port", "send", "expect", "timeout_ms"] {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    assert_eq!(properties["port"]["minimum"], json!(1));
}
