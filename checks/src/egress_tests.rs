//! The egress policy as checks apply it: refusals at build time for IP literals, failed runs
//! naming the rule for names that resolve to denied addresses, redirect hops, raw sockets.

use cloudroutes_engine::CheckOutcome;
use cloudroutes_engine::egress::Egress;
use serde_json::json;

use crate::http_options::test_servers::{reply, serve};
use crate::test_support::serve_http;
use crate::{CheckConfig, CheckContext};

fn parse(value: serde_json::Value) -> CheckConfig {
    CheckConfig::parse(&serde_json::from_value(value).unwrap()).unwrap()
}

/// Builds and runs `spec` under `egress`.
async fn run_under(egress: Egress, spec: serde_json::Value) -> CheckOutcome {
    let context = CheckContext::new(egress).unwrap();
    parse(spec).build(&context).unwrap().unwrap().run().await
}

#[track_caller]
fn assert_failed_naming(outcome: &CheckOutcome, wanted: &[&str]) {
    let CheckOutcome::Failed { reason } = outcome else {
        panic!("expected a failed outcome, got {outcome:?}");
    };
    for part in wanted {
        assert!(reason.contains(part), "`{part}` missing from {reason:?}");
    }
}

#[test]
fn ip_literals_the_policy_denies_are_refused_at_build_time_naming_the_field_and_rule() {
    let context = CheckContext::new(Egress::default()).unwrap();
    let cases = [
        (
            json!({"type": "http-get-statuscode", "url": "http://169.254.169.254/latest/"}),
            "url",
            "169.254.169.254/32 (cloud metadata)",
        ),
        (
            json!({"type": "http-keyword", "url": "http://[::ffff:169.254.169.254]/", "keyword": "x"}),
            "url",
            "cloud metadata",
        ),
        (
            json!({"type": "tcp-check", "host": "10.0.0.1", "port": 22}),
            "host",
            "10.0.0.0/8 (private)",
        ),
        (
            json!({"type": "tcp-check", "host": "[fd00:ec2::254]", "port": 80}),
            "host",
            "fd00:ec2::254/128",
        ),
        (
            json!({"type": "udp", "host": "0.0.0.0", "port": 53, "send": "x"}),
            "host",
            "(unspecified)",
        ),
        (json!({"type": "ping", "host": "224.0.0.1"}), "host", "(multicast)"),
        (
            json!({"type": "dns", "name": "example.com", "resolver": "127.0.0.1:53"}),
            "resolver",
            "(loopback)",
        ),
        (json!({"type": "redis", "url": "redis://192.168.1.1:6379"}), "url", "(private)"),
        (
            json!({"type": "postgres", "host": "100.64.0.1", "user": "u", "database": "d"}),
            "host",
            "carrier-grade",
        ),
        (json!({"type": "mysql", "host": "172.16.0.1", "user": "u"}), "host", "(private)"),
        (
            json!({"type": "ssl-common-name", "host": "127.0.0.1", "expected_name": "x"}),
            "host",
            "(loopback)",
        ),
        (json!({"type": "ssl-certificate-expiry", "host": "::1"}), "host", "(loopback)"),
    ];
    for (spec, field, rule) in cases {
        let error = parse(spec.clone()).build(&context).unwrap_err();
        assert_eq!(error.field, field, "{spec}: {error}");
        assert!(error.message.contains(rule), "{spec}: {error}");
        assert!(error.message.contains("is denied by"), "{spec}: {error}");
    }
    let public = json!({"type": "tcp-check", "host": "192.0.2.1", "port": 22});
    assert!(parse(public).build(&context).is_ok(), "a public literal builds");
    let name = json!({"type": "tcp-check", "host": "localhost", "port": 22});
    assert!(parse(name).build(&context).is_ok(), "a name is judged when it resolves");
}

#[tokio::test]
async fn a_name_resolving_to_a_denied_address_fails_naming_host_address_and_rule() {
    let server = serve_http(200, b"ok".to_vec()).await;
    let url = format!("http://localhost:{}/", server.port());
    let spec = json!({"type": "http-get-statuscode", "url": url});
    let denied = run_under(Egress::default(), spec.clone()).await;
    assert_failed_naming(&denied, &["localhost", "is denied by built-in deny", "(loopback)"]);
    let allowed = run_under(Egress::loopback_for_tests(), spec).await;
    assert!(matches!(allowed, CheckOutcome::Healthy { .. }), "{allowed:?}");
}

#[tokio::test]
async fn each_redirect_hop_is_checked_and_a_hop_to_metadata_is_refused() {
    let mut server = serve(|request| match request.path.as_str() {
        "/metadata" => reply(302, &[("Location", "http://169.254.169.254/latest/meta-data/")], ""),
        "/mapped" => reply(307, &[("Location", "http://[::ffff:a9fe:a9fe]/")], ""),
        _ => reply(200, &[], "ok"),
    })
    .await;
    for path in ["/metadata", "/mapped"] {
        let spec = json!({
            "type": "http-get-statuscode", "url": server.url(path), "follow_redirects": true,
        });
        let outcome = run_under(Egress::loopback_for_tests(), spec).await;
        assert_failed_naming(&outcome, &["169.254.169.254/32 (cloud metadata)"]);
    }
    assert_eq!(server.received().len(), 2, "only the allowed first hops were requested");
}

/// Issue 7: with loopback allowed, a redirect from an allowed target to the node's own port
/// (by address or by a name that resolves to loopback) is refused before it is requested.
#[tokio::test]
async fn a_redirect_hop_to_the_node_own_port_is_refused() {
    let mut node = serve(|_| reply(200, &[], "node api")).await;
    let node_port = node.addr.port();
    let by_address = format!("http://127.0.0.1:{node_port}/api/v1/monitors");
    let by_name = format!("http://localhost:{node_port}/api/v1/monitors");
    let mut server = serve(move |request| match request.path.as_str() {
        "/address" => reply(302, &[("Location", by_address.as_str())], ""),
        "/name" => reply(307, &[("Location", by_name.as_str())], ""),
        _ => reply(200, &[], "ok"),
    })
    .await;
    let egress = Egress::loopback_for_tests().with_node_ports(&[node_port], &[], false);
    for path in ["/address", "/name"] {
        for kind in ["http-get-statuscode", "http-keyword"] {
            let spec = json!({
                "type": kind, "url": server.url(path), "follow_redirects": true, "keyword": "x",
            });
            let mut spec = spec;
            if kind == "http-get-statuscode" {
                spec.as_object_mut().unwrap().remove("keyword");
            }
            let outcome = run_under(egress.clone(), spec).await;
            let wanted =
                format!("the node's own port {node_port} (egress.allow_node_ports = false)");
            assert_failed_naming(&outcome, &[&wanted]);
        }
    }
    assert_eq!(server.received().len(), 4, "every first hop was requested");
    assert!(node.received().is_empty(), "the node's port was never requested");
}

#[tokio::test]
async fn the_node_own_port_stays_denied_when_loopback_is_allowed() {
    let server = serve_http(200, b"ok".to_vec()).await;
    let port = server.port();
    let egress = Egress::loopback_for_tests().with_node_ports(&[port], &[], false);
    let by_name =
        json!({"type": "http-get-statuscode", "url": format!("http://localhost:{port}/")});
    let outcome = run_under(egress.clone(), by_name).await;
    assert_failed_naming(&outcome, &[&format!("the node's own port {port}")]);
    let context = CheckContext::new(egress).unwrap();
    for literal in [
        json!({"type": "http-get-statuscode", "url": format!("http://127.0.0.1:{port}/")}),
        json!({"type": "tcp-check", "host": "127.0.0.1", "port": port}),
    ] {
        let error = parse(literal).build(&context).unwrap_err();
        assert!(error.message.contains("egress.allow_node_ports = false"), "{error}");
    }
}

#[tokio::test]
async fn raw_socket_checks_resolve_once_and_refuse_denied_addresses() {
    let server = serve_http(200, b"ok".to_vec()).await;
    let port = server.port();
    let specs = [
        json!({"type": "tcp-check", "host": "localhost", "port": port, "timeout_ms": 2000}),
        json!({"type": "udp", "host": "localhost", "port": port, "send": "x", "timeout_ms": 500}),
        json!({"type": "redis", "url": format!("redis://localhost:{port}"), "timeout_ms": 2000}),
        json!({"type": "ssl-common-name", "host": "localhost", "port": port, "expected_name": "x", "timeout_ms": 2000}),
    ];
    for spec in specs {
        let outcome = run_under(Egress::default(), spec.clone()).await;
        assert_failed_naming(&outcome, &["localhost: egress to", "(loopback)"]);
    }
    let tcp = json!({"type": "tcp-check", "host": "localhost", "port": port, "timeout_ms": 2000});
    let allowed = run_under(Egress::loopback_for_tests(), tcp).await;
    assert!(matches!(allowed, CheckOutcome::Healthy { .. }), "{allowed:?}");
}
