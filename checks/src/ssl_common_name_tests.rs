use serde_json::json;

use super::*;
use crate::test_support::{
    CertificateSpec, refused_port, serve_plain_text, serve_tls, silent_server,
};
use crate::{CheckConfig, check_types};

fn check(port: u16, expected_name: &str) -> SslCommonNameCheck {
    SslCommonNameCheck::new(&Config {
        host: "127.0.0.1".into(),
        port,
        server_name: Some("example.com".into()),
        expected_name: expected_name.into(),
        timeout_ms: 2000,
    })
    .unwrap()
    .with_egress(&crate::test_support::loopback())
    .unwrap()
}

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

#[tokio::test]
async fn healthy_when_a_subject_alt_name_matches() {
    let spec = CertificateSpec::valid_for_days(&["example.com", "www.example.com"], 90);
    let server = serve_tls(&spec).await;
    let outcome = check(server.port, "WWW.Example.com.").run().await;
    let reason = format!(
        "certificate from 127.0.0.1:{} is for WWW.Example.com. (as www.example.com)",
        server.port
    );
    assert_eq!(outcome, CheckOutcome::Healthy { reason });
}

#[tokio::test]
async fn healthy_when_only_the_common_name_matches() {
    let spec =
        CertificateSpec::valid_for_days(&["alt.example.com"], 90).with_common_name("legacy.local");
    let server = serve_tls(&spec).await;
    let outcome = check(server.port, "legacy.local").run().await;
    let reason = format!("certificate from 127.0.0.1:{} is for legacy.local", server.port);
    assert_eq!(outcome, CheckOutcome::Healthy { reason });
}

#[tokio::test]
async fn failed_for_another_name_listing_what_it_names() {
    let spec = CertificateSpec::valid_for_days(&["other.example.net", "*.other.example.net"], 90);
    let server = serve_tls(&spec).await;
    let outcome = check(server.port, "example.com").run().await;
    let reason = format!(
        "certificate from 127.0.0.1:{} is not for example.com: \
         it names other.example.net, *.other.example.net",
        server.port
    );
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn a_wildcard_covers_exactly_one_label() {
    let spec = CertificateSpec::valid_for_days(&["*.example.com"], 90);
    let server = serve_tls(&spec).await;
    let outcome = check(server.port, "api.example.com").run().await;
    let reason = format!(
        "certificate from 127.0.0.1:{} is for api.example.com (as *.example.com)",
        server.port
    );
    assert_eq!(outcome, CheckOutcome::Healthy { reason });
    for uncovered in ["example.com", "a.b.example.com", "api.example.org"] {
        let outcome = check(server.port, uncovered).run().await;
        assert!(matches!(outcome, CheckOutcome::Failed { .. }), "{uncovered}: {outcome:?}");
    }
}

#[tokio::test]
async fn an_expired_self_signed_certificate_is_still_inspected() {
    let spec = CertificateSpec::expired_days_ago(&["example.com"], 30);
    let server = serve_tls(&spec).await;
    let outcome = check(server.port, "example.com").run().await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
}

#[tokio::test]
async fn refused_silent_and_plain_text_targets_fail() {
    let port = refused_port().await;
    let outcome = check(port, "example.com").run().await;
    let reason = format!("connection refused: 127.0.0.1:{port}");
    assert_eq!(outcome, CheckOutcome::Failed { reason });

    let addr = silent_server().await;
    let mut config = Config {
        host: "127.0.0.1".into(),
        port: addr.port(),
        server_name: None,
        expected_name: "example.com".into(),
        timeout_ms: 200,
    };
    let outcome = SslCommonNameCheck::new(&config)
        .unwrap()
        .with_egress(&crate::test_support::loopback())
        .unwrap()
        .run()
        .await;
    let reason = format!("no tls handshake with {addr} within 200 ms");
    assert_eq!(outcome, CheckOutcome::Failed { reason });

    config.port = serve_plain_text(b"SSH-2.0-OpenSSH_9.2\r\n").await;
    let outcome = SslCommonNameCheck::new(&config)
        .unwrap()
        .with_egress(&crate::test_support::loopback())
        .unwrap()
        .run()
        .await;
    let CheckOutcome::Failed { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("does not speak tls"), "{reason}");
}

#[test]
fn names_match_ignoring_case_and_a_trailing_dot() {
    let cases = [
        ("example.com", "EXAMPLE.com.", true),
        ("*.example.com", "www.example.com", true),
        ("*.example.com", "example.com", false),
        ("*.example.com", ".example.com", false),
        ("*.example.com", "a.b.example.com", false),
        ("*.example.com", "*.example.com", true),
        ("*.", "com", false),
        ("::1", "0:0:0:0:0:0:0:1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("www.example.com", "example.com", false),
    ];
    for (certificate_name, expected, matches) in cases {
        assert_eq!(
            name_matches(certificate_name, expected),
            matches,
            "{certificate_name} {expected}"
        );
    }
}

#[test]
fn failure_reasons_list_at_most_ten_names() {
    let names: Vec<String> = (0..13).map(|i| format!("n{i}.example")).collect();
    let listed = list_names(&names);
    assert!(listed.starts_with("n0.example, n1.example"), "{listed}");
    assert!(listed.ends_with("n9.example and 3 more"), "{listed}");
    assert_eq!(list_names(&[]), "no names");
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let kind = "ssl-common-name";
    let cases = [
        (json!({"type": kind, "expected_name": "example.com"}), "host"),
        (json!({"type": kind, "host": "x y", "expected_name": "example.com"}), "host"),
        (json!({"type": kind, "host": "x", "port": 0, "expected_name": "e.com"}), "port"),
        (
            json!({"type": kind, "host": "x", "server_name": "a/b", "expected_name": "e"}),
            "server_name",
        ),
        (json!({"type": kind, "host": "x"}), "expected_name"),
        (json!({"type": kind, "host": "x", "expected_name": ""}), "expected_name"),
        (json!({"type": kind, "host": "x", "expected_name": "a b"}), "expected_name"),
        (json!({"type": kind, "host": "x", "expected_name": "x".repeat(254)}), "expected_name"),
        (json!({"type": kind, "host": "x", "expected_name": "e", "timeout_ms": 0}), "timeout_ms"),
        (json!({"type": kind, "host": "x", "expected_name": "e", "days": 3}), "days"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
}

#[test]
fn defaults_port_443_and_server_name_host() {
    let Ok(CheckConfig::SslCommonName(config)) =
        parse(json!({"type": "ssl-common-name", "host": "example.com", "expected_name": "x.com"}))
    else {
        panic!("expected an ssl-common-name config");
    };
    assert_eq!((config.port, config.timeout_ms), (443, 5000));
    let check = SslCommonNameCheck::new(&config)
        .unwrap()
        .with_egress(&crate::test_support::loopback())
        .unwrap();
    assert_eq!(
        (check.target.name.as_str(), check.target.target.as_str()),
        ("example.com", "example.com:443")
    );
    assert_eq!(check.kind(), "ssl-common-name");
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "ssl-common-name").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["host", "port", "server_name", "expected_name", "timeout_ms"] {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    let required = info.schema["required"].as_array().unwrap();
    assert!(required.contains(&json!("expected_name")), "{required:?}");
}
