//! Tests of `dns` against a real dnsmasq on loopback, started and stopped by each test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::json;
use tokio::net::UdpSocket;

use super::*;
use crate::{CheckConfig, check_types};

/// A dnsmasq serving the test zone on loopback; killed (by its pid) when dropped.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the dnsmasq binary: on PATH, or where Debian installs it.
fn dnsmasq_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("dnsmasq"))
        .find(|binary| binary.is_file())
        .expect(
            "dnsmasq not found on PATH or in /usr/sbin: install the Debian package dnsmasq-base",
        )
}

/// Returns a loopback port nobody uses for UDP or TCP (dnsmasq takes both): bound, read,
/// then released. Another process may still take it before dnsmasq does, so callers that can
/// pick again use [`start_dnsmasq_with`].
async fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A query for `web.test A`, the name every test zone answers.
const READY_QUERY: &[u8] =
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x04test\x00\x00\x01\x00\x01";

/// Starts dnsmasq on `addr` with the test zone and `extra` options; returns once it answers a
/// query over UDP (a TCP connect could reach another program holding that port), or its
/// error output when it exits first.
async fn try_start_dnsmasq_at(addr: SocketAddr, extra: &[String]) -> Result<Dnsmasq, String> {
    let mut command = Command::new(dnsmasq_binary());
    command
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--local=/test/",
            "--address=/web.test/192.0.2.10",
            "--host-record=multi.test,192.0.2.20",
            "--host-record=multi.test,192.0.2.21",
            "--host-record=v6.test,2001:db8::6",
            "--cname=alias.test,multi.test",
            "--mx-host=mail.test,mx1.test,10",
            "--mx-host=mail.test,mx2.test,20",
            "--txt-record=txt.test,v=spf1 -all",
            "--txt-record=txt.test,split,text",
        ])
        .arg(format!("--listen-address={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("dnsmasq starts");
    let mut server = Dnsmasq { child, addr };
    let probe = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).await.unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            let mut stderr = String::new();
            let pipe = server.child.stderr.as_mut().unwrap();
            std::io::Read::read_to_string(pipe, &mut stderr).unwrap();
            return Err(format!("dnsmasq exited ({status}): {stderr}"));
        }
        assert!(started.elapsed() < Duration::from_secs(10), "dnsmasq did not answer on {addr}");
        probe.send_to(READY_QUERY, addr).await.unwrap();
        let mut reply = [0u8; 512];
        let answer = tokio::time::timeout(Duration::from_millis(50), probe.recv(&mut reply));
        if matches!(answer.await, Ok(Ok(n)) if n >= 2 && reply[..2] == READY_QUERY[..2]) {
            return Ok(server);
        }
    }
}

/// Starts dnsmasq on `addr`, which the test picked and needs; panics when it cannot.
async fn start_dnsmasq_at(addr: SocketAddr, extra: &[String]) -> Dnsmasq {
    try_start_dnsmasq_at(addr, extra).await.unwrap_or_else(|error| panic!("{error}"))
}

/// Starts dnsmasq on 127.0.0.1 and a free port with `extra` options, picking another port
/// when something took the first one in between.
async fn start_dnsmasq_with(extra: &[String]) -> Dnsmasq {
    let mut last_error = String::new();
    for _ in 0..5 {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port().await));
        match try_start_dnsmasq_at(addr, extra).await {
            Ok(server) => return server,
            Err(error) if error.contains("Address already in use") => last_error = error,
            Err(error) => panic!("{error}"),
        }
    }
    panic!("no free port for dnsmasq after 5 tries: {last_error}");
}

/// Starts dnsmasq with the test zone on 127.0.0.1 and a free port.
async fn start_dnsmasq() -> Dnsmasq {
    start_dnsmasq_with(&[]).await
}

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

/// Builds a `dns` check from the fields of its `check` object (without `type`).
fn check(fields: serde_json::Value) -> DnsCheck {
    let mut value = json!({"type": "dns"});
    value.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let Ok(CheckConfig::Dns(config)) = parse(value.clone()) else { panic!("{value}") };
    DnsCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
}

/// Runs a check of `name` (`record_type`, more `fields`) against `server`.
async fn ask(
    server: &Dnsmasq,
    name: &str,
    record_type: &str,
    fields: serde_json::Value,
) -> CheckOutcome {
    let mut all =
        json!({"name": name, "record_type": record_type, "resolver": server.addr.to_string()});
    all.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    check(all).run().await
}

fn healthy(reason: &str) -> CheckOutcome {
    CheckOutcome::Healthy { reason: reason.into() }
}

fn failed(reason: impl Into<String>) -> CheckOutcome {
    CheckOutcome::Failed { reason: reason.into() }
}

#[tokio::test]
async fn healthy_when_each_record_type_resolves() {
    let server = start_dnsmasq().await;
    let none = json!({});
    assert_eq!(
        ask(&server, "web.test", "A", none.clone()).await,
        healthy("web.test A is 192.0.2.10")
    );
    let multi = ask(&server, "multi.test", "a", none.clone()).await;
    assert_eq!(multi, healthy("multi.test A is 192.0.2.20, 192.0.2.21"));
    let v6 = ask(&server, "v6.test", "AAAA", none.clone()).await;
    assert_eq!(v6, healthy("v6.test AAAA is 2001:db8::6"));
    let alias = ask(&server, "alias.test", "CNAME", none.clone()).await;
    assert_eq!(alias, healthy("alias.test CNAME is multi.test"));
    let followed = ask(&server, "alias.test.", "A", none.clone()).await;
    assert_eq!(followed, healthy("alias.test A is 192.0.2.20, 192.0.2.21"), "cname followed");
    let mail = ask(&server, "mail.test", "mx", none.clone()).await;
    assert_eq!(mail, healthy("mail.test MX is mx1.test, mx2.test"));
    let txt = ask(&server, "txt.test", "TXT", none).await;
    assert_eq!(txt, healthy(r#"txt.test TXT is "splittext", "v=spf1 -all""#));
}

#[tokio::test]
async fn healthy_when_an_authoritative_server_names_the_zone_name_servers() {
    let auth = [
        "--auth-zone=zone.test".to_owned(),
        "--auth-server=ns1.zone.test,127.0.0.1".to_owned(),
        "--auth-sec-servers=ns2.zone.test".to_owned(),
    ];
    let server = start_dnsmasq_with(&auth).await;
    let outcome = ask(&server, "zone.test", "NS", json!({})).await;
    assert_eq!(outcome, healthy("zone.test NS is ns1.zone.test, ns2.zone.test"));
    let both = json!({"expected": ["ns2.zone.test", "NS1.zone.test."]});
    assert!(matches!(ask(&server, "zone.test", "NS", both).await, CheckOutcome::Healthy { .. }));
    let one = json!({"expected": ["ns1.zone.test"]});
    let outcome = ask(&server, "zone.test", "NS", one).await;
    let reason = "zone.test NS is ns1.zone.test, ns2.zone.test, expected ns1.zone.test";
    assert_eq!(outcome, failed(reason));
}

#[tokio::test]
async fn expected_values_must_match_exactly_or_be_contained() {
    let server = start_dnsmasq().await;
    let both = json!({"expected": ["192.0.2.21", "192.0.2.20"]});
    let outcome = ask(&server, "multi.test", "A", both).await;
    assert_eq!(outcome, healthy("multi.test A is 192.0.2.20, 192.0.2.21"), "order does not matter");

    let one = json!({"expected": ["192.0.2.20"]});
    let outcome = ask(&server, "multi.test", "A", one).await;
    assert_eq!(outcome, failed("multi.test A is 192.0.2.20, 192.0.2.21, expected 192.0.2.20"));
    let contained = json!({"expected": ["192.0.2.20"], "match": "contains"});
    assert!(matches!(
        ask(&server, "multi.test", "A", contained).await,
        CheckOutcome::Healthy { .. }
    ));
    let missing = json!({"expected": ["192.0.2.99", "192.0.2.20"], "match": "contains"});
    let outcome = ask(&server, "multi.test", "A", missing).await;
    let reason = "multi.test A is 192.0.2.20, 192.0.2.21, expected at least 192.0.2.20, 192.0.2.99";
    assert_eq!(outcome, failed(reason));

    // Values are compared in a normal form: addresses parsed, names lowercased without the dot.
    let v6 = json!({"expected": ["2001:DB8:0::6"]});
    assert!(matches!(ask(&server, "v6.test", "AAAA", v6).await, CheckOutcome::Healthy { .. }));
    let exchangers = json!({"expected": ["MX2.test.", "mx1.test"]});
    assert!(matches!(
        ask(&server, "mail.test", "MX", exchangers).await,
        CheckOutcome::Healthy { .. }
    ));
    let wrong_target = json!({"expected": ["web.test"]});
    let outcome = ask(&server, "alias.test", "CNAME", wrong_target).await;
    assert_eq!(outcome, failed("alias.test CNAME is multi.test, expected web.test"));
    let text = json!({"expected": ["v=spf1 -all"], "match": "contains"});
    assert!(matches!(ask(&server, "txt.test", "TXT", text).await, CheckOutcome::Healthy { .. }));
    let text = json!({"expected": ["v=spf1 ~all"]});
    let outcome = ask(&server, "txt.test", "TXT", text).await;
    let reason = r#"txt.test TXT is "splittext", "v=spf1 -all", expected "v=spf1 ~all""#;
    assert_eq!(outcome, failed(reason));
}

#[tokio::test]
async fn failed_when_the_name_does_not_exist_or_has_no_such_records() {
    let server = start_dnsmasq().await;
    let at = server.addr;
    let none = json!({});
    let outcome = ask(&server, "nothing.test", "A", none.clone()).await;
    assert_eq!(outcome, failed(format!("nothing.test does not exist (NXDOMAIN from {at})")));
    let outcome = ask(&server, "multi.test", "AAAA", none.clone()).await;
    assert_eq!(outcome, failed(format!("multi.test has no AAAA records (asked {at})")));
    let outcome = ask(&server, "multi.test", "MX", none.clone()).await;
    assert_eq!(outcome, failed(format!("multi.test has no MX records (asked {at})")));
    // No upstream servers: dnsmasq refuses names outside its own zone.
    let outcome = ask(&server, "example.org", "A", none).await;
    assert_eq!(outcome, failed(format!("{at} answered REFUSED for example.org A")));
}

#[tokio::test]
async fn failed_in_time_when_nobody_answers() {
    // A bound UDP socket that reads nothing: queries go unanswered.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let outcome =
        check(json!({"name": "web.test", "resolver": addr.to_string(), "timeout_ms": 300}))
            .run()
            .await;
    assert_eq!(outcome, failed(format!("no answer from {addr} within 300 ms")));
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
    drop(silent);

    // A port where nobody listens at all: the resolver's UDP sockets are not connected, so the
    // port-unreachable answer never reaches it and it waits, as for a silent server.
    let port = free_port().await;
    let started = Instant::now();
    let resolver = format!("127.0.0.1:{port}");
    let outcome =
        check(json!({"name": "web.test", "resolver": resolver, "timeout_ms": 300})).run().await;
    assert_eq!(outcome, failed(format!("no answer from {resolver} within 300 ms")));
    assert!(started.elapsed() < Duration::from_millis(1300), "{:?}", started.elapsed());
}

#[tokio::test]
async fn every_run_asks_the_server_again() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "192.0.2.30 moving.test\n").unwrap();
    // A long TTL: a cache would keep serving the first answer.
    let extra = [format!("--addn-hosts={}", hosts.display()), "--local-ttl=3600".to_owned()];
    let server = start_dnsmasq_with(&extra).await;
    let check = check(json!({"name": "moving.test", "resolver": server.addr.to_string()}));
    assert_eq!(check.run().await, healthy("moving.test A is 192.0.2.30"));

    // Replaced whole, so dnsmasq never reads a half-written file.
    let next = dir.path().join("hosts.next");
    std::fs::write(&next, "192.0.2.31 moving.test\n").unwrap();
    std::fs::rename(&next, &hosts).unwrap();
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(status.success(), "dnsmasq rereads its hosts file on SIGHUP");
    let started = Instant::now();
    loop {
        let outcome = check.run().await;
        if outcome == healthy("moving.test A is 192.0.2.31") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still {outcome:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Returns a free loopback address other than 127.0.0.1 (so a dnsmasq of this test may take
/// port 53 on it): 127.53.x.y, picked from this process's id and free at the moment.
async fn free_loopback_address_with_port_53() -> SocketAddr {
    for offset in 0..50u32 {
        let n = std::process::id().wrapping_add(offset * 7919) % 60_000;
        let addr = SocketAddr::from(([127, 53, (n / 250) as u8, (n % 250 + 2) as u8], DNS_PORT));
        let udp_free = std::net::UdpSocket::bind(addr).is_ok();
        if udp_free && std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free 127.53.x.y address with port 53");
}

#[tokio::test]
async fn without_resolver_asks_the_nameservers_of_resolv_conf() {
    let addr = free_loopback_address_with_port_53().await;
    let server = start_dnsmasq_at(addr, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let resolv_conf = dir.path().join("resolv.conf");
    let text = format!("# generated\nsearch test\nnameserver {}\noptions ndots:2\n", addr.ip());
    std::fs::write(&resolv_conf, text).unwrap();
    let mut check = check(json!({"name": "web", "timeout_ms": 2000}));
    check.resolv_conf = resolv_conf.clone();
    let outcome = check.run().await;
    // Asked as `web.`: the search domain would have made it web.test, which exists.
    assert_eq!(outcome, failed(format!("{addr} answered REFUSED for web A")));
    check.name = parse_name("web.test").unwrap();
    check.shown_name = "web.test".into();
    assert_eq!(check.run().await, healthy("web.test A is 192.0.2.10"));
    drop(server);

    std::fs::write(&resolv_conf, "search example.org\n").unwrap();
    let reason = format!("{} lists no nameserver; set `resolver`", resolv_conf.display());
    assert_eq!(check.run().await, CheckOutcome::Unknown { reason });
    check.resolv_conf = dir.path().join("missing.conf");
    let CheckOutcome::Unknown { reason } = check.run().await else { panic!("expected unknown") };
    assert!(
        reason.starts_with("could not read ") && reason.ends_with("; set `resolver`"),
        "{reason}"
    );
}

#[test]
fn reasons_list_at_most_ten_values() {
    let check = check(json!({"name": "many.test"}));
    let values: BTreeSet<String> = (10..22).map(|n| format!("192.0.2.{n}")).collect();
    let listed = check.listed(&values);
    assert!(listed.starts_with("192.0.2.10, 192.0.2.11, "), "{listed}");
    assert!(listed.ends_with(", 192.0.2.19 and 2 more"), "{listed}");
}

#[test]
fn reads_at_most_three_nameservers_from_resolv_conf() {
    let text = "\
        # comment\n\
        nameserver 10.0.0.53\n\
        search corp.example\n\
        nameserver fe80::1%eth0\n\
        nameserver   fd00::53\n\
        nameserver not-an-address\n\
        nameserver 10.0.0.54\n\
        nameserver 10.0.0.55\n";
    let servers: Vec<String> = nameservers_in(text).iter().map(ToString::to_string).collect();
    assert_eq!(servers, ["10.0.0.53:53", "[fd00::53]:53", "10.0.0.54:53"]);
    assert!(nameservers_in("").is_empty());
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let dns = |fields: serde_json::Value| {
        let mut value = json!({"type": "dns", "name": "web.test"});
        value.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        value
    };
    let cases = [
        (json!({"type": "dns"}), "name"),
        (dns(json!({"name": ""})), "name"),
        (dns(json!({"name": "."})), "name"),
        (dns(json!({"name": "web test"})), "name"),
        (dns(json!({"name": "a..b"})), "name"),
        (dns(json!({"name": format!("{}.test", "a".repeat(250))})), "name"),
        (dns(json!({"record_type": "soa"})), "record_type"),
        (dns(json!({"record_type": 1})), "record_type"),
        (dns(json!({"resolver": "dns.example"})), "resolver"),
        (dns(json!({"resolver": "10.0.0.53:dns"})), "resolver"),
        (dns(json!({"resolver": "10.0.0.53:0"})), "resolver"),
        (dns(json!({"resolver": "fd00::53:5353:x"})), "resolver"),
        (dns(json!({"expected": []})), "expected"),
        (dns(json!({"expected": "192.0.2.1"})), "expected"),
        (dns(json!({"expected": ["192.0.2.1", "2001:db8::1"]})), "expected[1]"),
        (dns(json!({"record_type": "AAAA", "expected": ["192.0.2.1"]})), "expected[0]"),
        (dns(json!({"record_type": "MX", "expected": ["mx1.test", "bad name"]})), "expected[1]"),
        (dns(json!({"match": "contains"})), "match"),
        (dns(json!({"expected": ["192.0.2.1"], "match": "all"})), "match"),
        (dns(json!({"timeout_ms": 0})), "timeout_ms"),
        (dns(json!({"server": "10.0.0.53"})), "server"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
    let error = parse(dns(json!({"record_type": "soa"}))).unwrap_err();
    assert_eq!(
        error.message,
        "unknown record type `soa`, expected one of a, aaaa, cname, mx, ns, txt"
    );
    let error = parse(dns(json!({"expected": ["192.0.2.1", "2001:db8::1"]}))).unwrap_err();
    assert_eq!(error.message, "`2001:db8::1` is not an ipv4 address");
}

#[test]
fn accepts_every_resolver_form_and_name_and_defaults_to_a_records() {
    let Ok(CheckConfig::Dns(config)) = parse(json!({"type": "dns", "name": "web.test"})) else {
        panic!("expected a dns config");
    };
    assert_eq!(
        (config.record_type, &config.resolver, config.match_mode),
        (RecordKind::A, &None, None)
    );
    let check = DnsCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback());
    assert_eq!((check.kind(), check.timeout()), ("dns", Duration::from_secs(5)));
    assert_eq!(
        (check.match_mode, check.resolv_conf.as_path()),
        (MatchMode::Exact, Path::new(RESOLV_CONF))
    );

    for (resolver, parsed) in [
        ("10.0.0.53", "10.0.0.53:53"),
        ("10.0.0.53:5353", "10.0.0.53:5353"),
        ("fd00::53", "[fd00::53]:53"),
        ("[fd00::53]:5353", "[fd00::53]:5353"),
    ] {
        assert_eq!(parse_resolver(resolver).unwrap().to_string(), parsed);
    }
    for (name, asked) in [
        ("_dmarc.example.com", "_dmarc.example.com."),
        ("host_1.corp.", "host_1.corp."),
        ("bücher.example", "xn--bcher-kva.example."),
    ] {
        let Ok(CheckConfig::Dns(config)) = parse(json!({"type": "dns", "name": name})) else {
            panic!("{name} is a valid name");
        };
        assert_eq!(
            DnsCheck::new(&config)
                .unwrap()
                .with_egress(&crate::test_support::loopback())
                .name
                .to_ascii(),
            asked
        );
    }
    for kind in ["NS", "ns", "Txt", "cname", "aaaa"] {
        let value = json!({"type": "dns", "name": "example.com", "record_type": kind});
        let Ok(CheckConfig::Dns(config)) = parse(value) else { panic!("{kind}") };
        assert!(config.record_type.as_str().eq_ignore_ascii_case(kind));
    }
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "dns").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    let fields = ["name", "record_type", "resolver", "expected", "match", "timeout_ms"];
    for field in fields {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    assert_eq!(properties.len(), fields.len());
    let schema = info.schema.to_string();
    assert!(schema.contains(r#"["A","AAAA","CNAME","MX","NS","TXT"]"#), "{schema}");
}
