//! The shared HTTP options, exercised through `http-get-statuscode` against loopback servers
//! that record each request as it arrived.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::test_servers::{Reply, reply, serve, serve_tls};
use super::*;
use crate::Check;
use crate::http_get_statuscode::{Config, HttpGetStatuscodeCheck};
use crate::test_support::silent_server;

fn config(url: &str) -> Config {
    Config {
        url: url.to_owned(),
        codes: vec![200],
        timeout_ms: 2000,
        host: None,
        follow_redirects: false,
        verify_tls: true,
        headers: CustomHeaders::default(),
        max_response_ms: None,
        expect_json: None,
    }
}

fn headers(pairs: &[(&str, &str)]) -> CustomHeaders {
    CustomHeaders(pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect())
}

async fn run(config: Config) -> CheckOutcome {
    HttpGetStatuscodeCheck::new(&config, &CheckContext::new(Egress::loopback_for_tests()).unwrap())
        .unwrap()
        .run()
        .await
}

fn healthy_200() -> CheckOutcome {
    CheckOutcome::Healthy { reason: "HTTP 200".into() }
}

#[tokio::test]
async fn custom_headers_and_the_host_override_arrive_as_configured() {
    let mut server = serve(|_| reply(200, &[], "ok")).await;
    let check = Config {
        host: Some("Status.Example.COM:8080".into()),
        headers: headers(&[("X-Api-Key", "k3y with spaces"), ("accept", "application/json")]),
        ..config(&server.url("/health?probe=1"))
    };
    assert_eq!(run(check).await, healthy_200());
    let request = server.next_request().await;
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/health?probe=1");
    assert_eq!(request.header("host"), Some("status.example.com:8080"));
    assert_eq!(request.header("x-api-key"), Some("k3y with spaces"));
    assert_eq!(request.header("accept"), Some("application/json"));
}

#[tokio::test]
async fn without_a_host_override_the_url_authority_is_the_host() {
    let mut server = serve(|_| reply(200, &[], "ok")).await;
    assert_eq!(run(config(&server.url("/"))).await, healthy_200());
    let expected = server.addr.to_string();
    assert_eq!(server.next_request().await.header("host"), Some(expected.as_str()));
}

#[tokio::test]
async fn a_same_origin_redirect_keeps_the_host_override_and_credentials() {
    let mut server = serve(|request| match request.path.as_str() {
        "/" => reply(302, &[("Location", "/login")], ""),
        _ => reply(200, &[], "ok"),
    })
    .await;
    let check = Config {
        host: Some("app.example.com".into()),
        headers: headers(&[("Authorization", "Bearer s3cret")]),
        follow_redirects: true,
        ..config(&server.url("/"))
    };
    assert_eq!(run(check).await, healthy_200());
    for path in ["/", "/login"] {
        let request = server.next_request().await;
        assert_eq!(request.path, path);
        assert_eq!(request.header("host"), Some("app.example.com"), "{path}");
        assert_eq!(request.header("authorization"), Some("Bearer s3cret"), "{path}");
    }
}

#[tokio::test]
async fn a_cross_origin_redirect_drops_the_host_override_and_credentials() {
    let mut elsewhere = serve(|_| reply(200, &[], "landed")).await;
    let landing = elsewhere.url("/landing");
    let mut origin = serve(move |_| reply(301, &[("Location", landing.as_str())], "moved")).await;
    let check = Config {
        host: Some("app.example.com".into()),
        headers: headers(&[
            ("Authorization", "Bearer s3cret"),
            ("Cookie", "session=1"),
            ("X-Trace", "t-1"),
        ]),
        follow_redirects: true,
        ..config(&origin.url("/"))
    };
    assert_eq!(run(check).await, healthy_200());

    let first = origin.next_request().await;
    assert_eq!(first.header("host"), Some("app.example.com"));
    assert_eq!(first.header("authorization"), Some("Bearer s3cret"));
    let second = elsewhere.next_request().await;
    assert_eq!(second.path, "/landing");
    let elsewhere_authority = elsewhere.addr.to_string();
    assert_eq!(second.header("host"), Some(elsewhere_authority.as_str()));
    assert_eq!(second.header("authorization"), None);
    assert_eq!(second.header("cookie"), None);
    assert_eq!(second.header("x-trace"), Some("t-1"));
}

#[tokio::test]
async fn stops_after_ten_redirects() {
    let mut server = serve(|request| {
        let hop = request.path.trim_start_matches("/r/").split('?').next().unwrap_or_default();
        let hop: usize = hop.parse().unwrap_or(0);
        reply(307, &[("Location", &format!("/r/{}?token=t", hop + 1))], "")
    })
    .await;
    let check = Config { follow_redirects: true, ..config(&server.url("/r/0")) };
    let reason = format!(
        "more than 10 redirects, the last from {} to {}",
        server.url("/r/10"),
        server.url("/r/11")
    );
    assert_eq!(run(check).await, CheckOutcome::Failed { reason });
    assert_eq!(server.received().len(), MAX_REDIRECTS + 1);
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_not_followed() {
    let server = serve(|_| reply(302, &[("Location", "ftp://files.example.com/")], "")).await;
    let check = Config { follow_redirects: true, ..config(&server.url("/")) };
    let reason =
        format!("HTTP 302 from {} to a ftp url, only http and https are followed", server.url("/"));
    assert_eq!(run(check).await, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn a_redirect_status_without_location_is_judged_as_a_status() {
    let server = serve(|_| reply(302, &[], "")).await;
    let check = Config { follow_redirects: true, ..config(&server.url("/")) };
    let reason = "HTTP 302, expected one of 200".to_owned();
    assert_eq!(run(check).await, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn a_304_or_300_with_a_location_is_not_followed() {
    for status in [300, 304] {
        let mut server = serve(move |_| reply(status, &[("Location", "/other")], "")).await;
        let check = Config { follow_redirects: true, ..config(&server.url("/")) };
        let reason = format!("HTTP {status}, expected one of 200");
        assert_eq!(run(check).await, CheckOutcome::Failed { reason });
        server.next_request().await;
        assert!(server.received().is_empty(), "{status} was followed");
    }
}

#[tokio::test]
async fn one_timeout_covers_every_hop() {
    let silent = silent_server().await;
    let location = format!("http://{silent}/");
    let server = serve(move |_| reply(302, &[("Location", location.as_str())], "")).await;
    let check = Config { follow_redirects: true, timeout_ms: 300, ..config(&server.url("/")) };
    let started = std::time::Instant::now();
    let outcome = run(check).await;
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no answer within 300 ms".into() });
}

#[tokio::test]
async fn a_self_signed_certificate_fails_unless_verify_tls_is_false() {
    let mut server = serve_tls(|_| reply(200, &[], "ok")).await;
    let context = CheckContext::new(Egress::loopback_for_tests()).unwrap();
    let verified = HttpGetStatuscodeCheck::new(&config(&server.url("/")), &context).unwrap();
    let CheckOutcome::Failed { reason } = verified.run().await else { panic!("expected failed") };
    let prefix = format!("tls certificate of {} refused: invalid peer certificate", server.addr);
    assert!(reason.starts_with(&prefix), "{reason}");
    assert!(server.received().is_empty(), "a request went through the refused handshake");

    let unverified = Config { verify_tls: false, ..config(&server.url("/")) };
    let unverified = HttpGetStatuscodeCheck::new(&unverified, &context).unwrap();
    assert_eq!(unverified.run().await, healthy_200());
    assert_eq!(server.next_request().await.path, "/");

    // The node's verifying client stays verifying after the other one was used.
    assert!(matches!(verified.run().await, CheckOutcome::Failed { .. }));
}

#[tokio::test]
async fn the_response_time_counts_every_hop() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let server = serve(move |request| {
        counter.fetch_add(1, Ordering::SeqCst);
        let slow = |r: Reply| Reply { delay: Duration::from_millis(150), ..r };
        match request.path.as_str() {
            "/" => slow(reply(302, &[("Location", "/next")], "")),
            _ => slow(reply(200, &[], "ok")),
        }
    })
    .await;
    let check =
        Config { follow_redirects: true, max_response_ms: Some(250), ..config(&server.url("/")) };
    let CheckOutcome::Failed { reason } = run(check).await else { panic!("expected failed") };
    assert!(reason.ends_with(" ms, slower than 250 ms"), "{reason}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[test]
fn host_overrides_are_normalised_or_refused() {
    let value = |host: &str| host_header_value(host).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(value("Example.COM").unwrap(), "example.com");
    assert_eq!(value("example.com:8080").unwrap(), "example.com:8080");
    assert_eq!(value("example.com:80").unwrap(), "example.com");
    assert_eq!(value("10.0.0.5").unwrap(), "10.0.0.5");
    assert_eq!(value("[::1]:8443").unwrap(), "[::1]:8443");
    assert_eq!(value("bücher.example").unwrap(), "xn--bcher-kva.example");
    for bad in ["", "a b", "a/b", "user@host", "host?x", "host:99999", "host:port", "[::1"] {
        let error = value(bad).unwrap_err();
        assert_eq!(error.field, "host", "{bad}");
        assert_eq!(error.message, error.message.to_lowercase(), "{bad}");
    }
    assert_eq!(value(&"a".repeat(260)).unwrap_err().field, "host");
}

#[test]
fn headers_are_refused_naming_the_header() {
    let field = |pairs: &[(&str, &str)]| header_map(&headers(pairs), &[]).unwrap_err().field;
    assert_eq!(field(&[("Bad Name", "v")]), "headers.Bad Name");
    assert_eq!(field(&[("", "v")]), "headers.");
    assert_eq!(field(&[("X-A", "line\r\nbreak")]), "headers.X-A");
    assert_eq!(field(&[("X-A", "bell\u{7}")]), "headers.X-A");
    assert_eq!(field(&[("X-A", "nul\0")]), "headers.X-A");
    assert_eq!(field(&[("X-A", &"v".repeat(MAX_HEADER_VALUE_BYTES + 1))]), "headers.X-A");
    for managed in ["Host", "host", "Content-Length", "Transfer-Encoding", "Connection", "TE"] {
        assert_eq!(field(&[(managed, "x")]), format!("headers.{managed}"));
    }
    // Names are case-insensitive: the second spelling is the duplicate.
    assert_eq!(field(&[("X-Token", "1"), ("x-token", "2")]), "headers.x-token");

    let many: Vec<_> = (0..=MAX_HEADERS).map(|i| (format!("X-{i}"), "v".to_owned())).collect();
    let error = header_map(&CustomHeaders(many.into_iter().collect()), &[]).unwrap_err();
    assert_eq!(error.field, "headers");
    assert_eq!(error.message, "must have at most 32 headers, not 33");

    let error = header_map(&headers(&[("Host", "x")]), &[]).unwrap_err();
    assert_eq!(error.message, "host use the `host` field to set the host header");
    let type_managed = [("content-type", "is set with the `content_type` field")];
    let error = header_map(&headers(&[("Content-Type", "a/b")]), &type_managed).unwrap_err();
    assert_eq!(error.field, "headers.Content-Type");
    assert!(header_map(&headers(&[("Content-Type", "a/b")]), &[]).is_ok());
}

#[test]
fn debug_output_never_shows_header_values() {
    let secret = Config {
        headers: headers(&[("Authorization", "Bearer s3cret-token")]),
        ..config("http://127.0.0.1/")
    };
    let check = HttpGetStatuscodeCheck::new(
        &secret,
        &CheckContext::new(Egress::loopback_for_tests()).unwrap(),
    )
    .unwrap();
    for debug in [format!("{secret:?}"), format!("{check:?}")] {
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.to_lowercase().contains("authorization"), "{debug}");
    }
}

#[test]
fn truncate_cuts_at_characters_not_bytes() {
    assert_eq!(truncate("héllo", 2), "hé…");
    assert_eq!(truncate("héllo", 5), "héllo");
    assert_eq!(truncate("", 3), "");
}
