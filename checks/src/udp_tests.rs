use serde_json::json;

use super::*;
use crate::{CheckConfig, check_types};

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

fn check(fields: serde_json::Value) -> UdpCheck {
    let mut spec = json!({"type": "udp", "host": "127.0.0.1", "timeout_ms": 2000});
    spec.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let Ok(CheckConfig::Udp(config)) = parse(spec.clone()) else { panic!("{spec}") };
    UdpCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
}

/// A UDP echo server on loopback: answers every datagram with itself until the test ends.
async fn echo_server() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok((read, peer)) = socket.recv_from(&mut buffer).await {
            let _ = socket.send_to(&buffer[..read], peer).await;
        }
    });
    port
}

/// A bound UDP socket that reads and never answers, held until the test ends.
async fn silent_udp_server() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while socket.recv_from(&mut buffer).await.is_ok() {}
    });
    port
}

/// A loopback UDP port nobody listens on: bound, read, then released.
async fn unused_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn healthy_when_the_reply_contains_expect() {
    let port = echo_server().await;
    let outcome = check(json!({"port": port, "send": "PING\n", "expect": "PING"})).run().await;
    let CheckOutcome::Healthy { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with(r#"reply contains "PING" in "#), "{reason}");
}

#[tokio::test]
async fn any_reply_is_healthy_without_expect() {
    let port = echo_server().await;
    let outcome = check(json!({"port": port, "send": "hello"})).run().await;
    let CheckOutcome::Healthy { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("reply of 5 bytes in "), "{reason}");
}

#[tokio::test]
async fn failed_quoting_a_reply_without_expect() {
    let port = echo_server().await;
    let outcome = check(json!({"port": port, "send": "hello\r\n", "expect": "bye"})).run().await;
    let reason = format!(r#"reply from 127.0.0.1:{port} does not contain "bye", got "hello\r\n""#);
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn binary_payloads_and_expectations_in_hex() {
    let port = echo_server().await;
    let sent = json!({"port": port, "send_hex": "1B 00 ff 10", "expect_hex": "00FF"});
    let outcome = check(sent).run().await;
    let CheckOutcome::Healthy { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("reply contains hex 00 ff in "), "{reason}");
    let outcome =
        check(json!({"port": port, "send_hex": "1b00ff10", "expect_hex": "ff00"})).run().await;
    let reason =
        format!("reply from 127.0.0.1:{port} does not contain hex ff 00, got hex 1b 00 ff 10");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn failed_in_time_without_a_reply() {
    let port = silent_udp_server().await;
    let started = Instant::now();
    let outcome = check(json!({"port": port, "send": "x", "timeout_ms": 300})).run().await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no reply within 300 ms".into() });
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn failed_when_the_port_is_unreachable() {
    let port = unused_udp_port().await;
    let started = Instant::now();
    let outcome = check(json!({"port": port, "send": "x", "timeout_ms": 5000})).run().await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let reason = format!("port unreachable: 127.0.0.1:{port}");
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn resolves_host_names() {
    let port = echo_server().await;
    let outcome =
        check(json!({"host": "localhost", "port": port, "send": "x", "expect": "x"})).run().await;
    // The check sends to the first address; the echo server listens on 127.0.0.1 only.
    let first = tokio::net::lookup_host(("localhost", port)).await.unwrap().next().unwrap();
    if first.is_ipv4() {
        assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
    } else {
        let reason = format!("port unreachable: localhost:{port}");
        assert_eq!(outcome, CheckOutcome::Failed { reason });
    }
}

#[test]
fn hex_is_decoded_in_pairs_and_rejected_naming_the_culprit() {
    assert_eq!(decode_hex("00 Ff\t10\n").unwrap(), [0x00, 0xff, 0x10]);
    assert_eq!(decode_hex("0g").unwrap_err(), "'g' at position 1 is not a hex digit");
    assert_eq!(decode_hex("abc").unwrap_err(), "has 3 hex digits, expected pairs");
    assert_eq!(quote_hex(&[0xab; 40]), format!("hex{} … (40 bytes)", " ab".repeat(32)));
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let long = "x".repeat(MAX_DATAGRAM_BYTES + 1);
    let with = |extra: serde_json::Value| {
        let mut spec = json!({"type": "udp", "host": "x", "port": 53});
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        spec
    };
    let cases = [
        (json!({"type": "udp", "port": 53, "send": "x"}), "host"),
        (with(json!({"host": "a b", "send": "x"})), "host"),
        (with(json!({"port": 0, "send": "x"})), "port"),
        (json!({"type": "udp", "host": "x", "send": "x"}), "port"),
        (with(json!({})), "send"),
        (with(json!({"send": ""})), "send"),
        (with(json!({"send": long})), "send"),
        (with(json!({"send": "x", "send_hex": "00"})), "send_hex"),
        (with(json!({"send_hex": "0"})), "send_hex"),
        (with(json!({"send_hex": "zz"})), "send_hex"),
        (with(json!({"send_hex": " "})), "send_hex"),
        (with(json!({"send": "x", "expect": ""})), "expect"),
        (with(json!({"send": "x", "expect": "a", "expect_hex": "61"})), "expect_hex"),
        (with(json!({"send": "x", "expect_hex": "6"})), "expect_hex"),
        (with(json!({"send": "x", "timeout_ms": 0})), "timeout_ms"),
        (with(json!({"send": "x", "bogus": 1})), "bogus"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
}

#[test]
fn defaults_and_kind() {
    let check = check(json!({"port": 53, "send": "x", "timeout_ms": 5000}));
    assert_eq!((check.kind(), check.timeout()), ("udp", Duration::from_secs(5)));
    assert_eq!(check.payload, b"x");
    assert_eq!(check.expect, None);
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "udp").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["host", "port", "send", "send_hex", "expect", "expect_hex", "timeout_ms"] {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
}
