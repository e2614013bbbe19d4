//! Tests of `ping`: loopback on this machine (whichever socket kind the process may open), and
//! inside network namespaces that the tests make, where they may change sysctls and routes
//! without touching the machine: which socket kind is chosen, lost echoes, unreachable
//! networks, slow replies, and a process that may open neither kind.

use std::cell::RefCell;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::{CheckConfig, check_types};

fn check(host: &str, count: u16, max_loss_percent: u8, timeout_ms: u64) -> PingCheck {
    let config = Config {
        host: host.into(),
        count,
        interval_ms: 10,
        max_loss_percent,
        max_rtt_ms: None,
        timeout_ms,
    };
    PingCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
}

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

fn healthy_reason(outcome: CheckOutcome) -> String {
    let CheckOutcome::Healthy { reason } = outcome else { panic!("expected healthy: {outcome:?}") };
    reason
}

fn failed_reason(outcome: CheckOutcome) -> String {
    let CheckOutcome::Failed { reason } = outcome else { panic!("expected failed: {outcome:?}") };
    reason
}

/// Returns the average round trip a reason like `3/3 replies from x, avg 0.1 ms` names.
fn average_ms(reason: &str) -> f64 {
    let (_, rest) = reason.split_once(", avg ").unwrap_or_else(|| panic!("no average: {reason}"));
    rest.split_once(" ms").unwrap().0.parse().unwrap()
}

/// Returns whether this machine has `::1` on its loopback interface.
fn ipv6_loopback_configured() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6")
        .is_ok_and(|text| text.lines().any(|line| line.starts_with(&"0".repeat(31))))
}

#[tokio::test]
async fn healthy_when_ipv4_loopback_answers() {
    let reason = healthy_reason(check("127.0.0.1", 3, 0, 2000).run().await);
    assert!(reason.starts_with("3/3 replies from 127.0.0.1, avg "), "{reason}");
    assert!(average_ms(&reason) < 1000.0, "{reason}");
}

#[tokio::test]
async fn healthy_when_ipv6_loopback_answers() {
    if !ipv6_loopback_configured() {
        eprintln!("skipped: ::1 is not configured on this machine");
        return;
    }
    let reason = healthy_reason(check("::1", 2, 0, 2000).run().await);
    assert!(reason.starts_with("2/2 replies from ::1, avg "), "{reason}");
    let reason = healthy_reason(check("[::1]", 1, 0, 2000).run().await);
    assert!(reason.starts_with("1/1 replies from ::1, avg "), "{reason}");
}

#[tokio::test]
async fn names_the_address_a_host_name_resolved_to() {
    let reason = healthy_reason(check("localhost", 1, 0, 2000).run().await);
    assert!(reason.starts_with("1/1 replies from localhost ("), "{reason}");
}

#[test]
fn prefers_the_unprivileged_socket_and_falls_back_to_raw() {
    let stand_in = || Socket::new(Domain::IPV4, Type::DGRAM, None);
    let denied = || io::Error::from(io::ErrorKind::PermissionDenied);
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);

    let tried = RefCell::new(Vec::new());
    let opened = open_echo_socket(ip, |kind, _| {
        tried.borrow_mut().push(kind);
        stand_in()
    });
    assert_eq!(opened.unwrap().1, SocketKind::Dgram);
    assert_eq!(*tried.borrow(), [SocketKind::Dgram], "raw is not tried when dgram opens");

    let opened = open_echo_socket(ip, |kind, _| match kind {
        SocketKind::Dgram => Err(denied()),
        SocketKind::Raw => stand_in(),
    });
    assert_eq!(opened.unwrap().1, SocketKind::Raw);

    let opened = open_echo_socket(ip, |_, _| Err(denied()));
    assert_eq!(opened.unwrap_err(), OpenError::NotPermitted);

    let unsupported = io::ErrorKind::Unsupported;
    let Err(OpenError::Failed(reason)) = open_echo_socket(ip, |kind, _| match kind {
        SocketKind::Dgram => Err(denied()),
        SocketKind::Raw => Err(io::Error::new(unsupported, "no raw sockets here")),
    }) else {
        panic!("expected a failure that is not about permissions");
    };
    assert!(reason.starts_with("could not open an ICMP socket: no raw sockets here"), "{reason}");
}

#[test]
fn a_process_without_icmp_rights_is_told_how_to_get_them() {
    assert_eq!(
        unprivileged_icmp_disabled(Some(1234)),
        "unprivileged ICMP is disabled: set net.ipv4.ping_group_range to include gid 1234, \
         or give the binary CAP_NET_RAW"
    );
    assert!(unprivileged_icmp_disabled(None).contains("include this process's group"));
}

#[tokio::test]
async fn reads_the_effective_group_of_this_process() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("Gid:")).unwrap();
    let effective = line.split_whitespace().nth(2).unwrap().parse::<u32>().unwrap();
    assert_eq!(effective_gid().await, Some(effective));
}

#[test]
fn echo_requests_carry_a_valid_checksum_and_the_run_token() {
    let echo = EchoRun::new(SocketKind::Raw, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let request = echo.request(7);
    assert_eq!(request[0], 8, "icmpv4 echo request");
    assert_eq!(internet_checksum(&request), 0, "a packet with its checksum sums to zero");
    assert_eq!(&request[6..8], &[0, 7]);
    assert_eq!(&request[ECHO_HEADER_LEN..], &echo.token);

    let v6 = EchoRun::new(SocketKind::Dgram, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(v6.request(0)[0], 128, "icmpv6 echo request");
    assert_ne!(v6.token, echo.token, "every run has its own token");
}

/// Returns the reply a host sends to `request`: type `reply_type`, identifier `identifier`.
fn reply_to(request: &[u8], reply_type: u8, identifier: u16) -> Vec<u8> {
    let mut reply = request.to_vec();
    reply[0] = reply_type;
    reply[4..6].copy_from_slice(&identifier.to_be_bytes());
    reply
}

#[test]
fn replies_are_matched_by_token_sequence_and_on_raw_sockets_identifier() {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let raw = EchoRun::new(SocketKind::Raw, v4);
    let mut ip_header = vec![0u8; 20];
    ip_header[0] = 0x45; // version 4, five 32-bit words
    let with_header = |icmp: Vec<u8>| [ip_header.clone(), icmp].concat();
    let reply = reply_to(&raw.request(2), 0, raw.identifier);
    assert_eq!(raw.reply_sequence(&with_header(reply.clone())), Some(2));
    assert_eq!(raw.reply_sequence(&with_header(raw.request(2))), None, "our own request");
    let other_id = reply_to(&raw.request(2), 0, raw.identifier.wrapping_add(1));
    assert_eq!(raw.reply_sequence(&with_header(other_id.clone())), None, "another identifier");
    let mut other_token = reply.clone();
    *other_token.last_mut().unwrap() ^= 0xff;
    assert_eq!(raw.reply_sequence(&with_header(other_token)), None, "another run's token");
    assert_eq!(raw.reply_sequence(&with_header(reply[..10].to_vec())), None, "truncated");

    // Unprivileged sockets: no IP header, and the kernel chose the identifier.
    let dgram = EchoRun::new(SocketKind::Dgram, v4);
    assert_eq!(dgram.reply_sequence(&reply_to(&dgram.request(1), 0, 4321)), Some(1));

    let v6 = EchoRun::new(SocketKind::Raw, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(v6.reply_sequence(&reply_to(&v6.request(3), 129, v6.identifier)), Some(3));
    assert_eq!(v6.reply_sequence(&reply_to(&v6.request(3), 0, v6.identifier)), None);
}

#[test]
fn summary_applies_the_loss_and_round_trip_thresholds() {
    let ms = |ms: u64| Some(Duration::from_millis(ms));
    let all = [ms(1), ms(2), ms(3)];
    let one_lost = [ms(1), None, ms(3)];
    let two_lost = [None, ms(2), None];
    let summary = |round_trips: &[Option<Duration>], max_loss, max_rtt| match summarize(
        "db (10.0.0.5)",
        round_trips,
        max_loss,
        max_rtt,
    ) {
        CheckOutcome::Healthy { reason } => format!("healthy: {reason}"),
        CheckOutcome::Failed { reason } => format!("failed: {reason}"),
        CheckOutcome::Unknown { reason } => format!("unknown: {reason}"),
    };
    let healthy_all = "healthy: 3/3 replies from db (10.0.0.5), avg 2.0 ms";
    assert_eq!(summary(&all, 0, None), healthy_all);
    assert_eq!(
        summary(&one_lost, 0, None),
        "failed: 1 of 3 echoes to db (10.0.0.5) lost (33%, threshold 0%)"
    );
    assert_eq!(summary(&one_lost, 34, None), "healthy: 2/3 replies from db (10.0.0.5), avg 2.0 ms");
    assert_eq!(
        summary(&two_lost, 50, None),
        "failed: 2 of 3 echoes to db (10.0.0.5) lost (67%, threshold 50%)"
    );
    assert_eq!(summary(&[None; 3], 100, None), "failed: no reply from db (10.0.0.5) to 3 echoes");
    assert_eq!(
        summary(&all, 0, Some(1)),
        "failed: 3/3 replies from db (10.0.0.5), avg 2.0 ms, above 1 ms"
    );
    assert_eq!(summary(&all, 0, Some(2)), healthy_all, "an average equal to the limit is healthy");
}

#[test]
fn rejects_invalid_fields_naming_them() {
    let cases = [
        (json!({"type": "ping"}), "host"),
        (json!({"type": "ping", "host": ""}), "host"),
        (json!({"type": "ping", "host": "a b"}), "host"),
        (json!({"type": "ping", "host": "x", "count": 0}), "count"),
        (json!({"type": "ping", "host": "x", "count": 21}), "count"),
        (json!({"type": "ping", "host": "x", "interval_ms": 9}), "interval_ms"),
        (json!({"type": "ping", "host": "x", "interval_ms": 10_001}), "interval_ms"),
        (json!({"type": "ping", "host": "x", "max_loss_percent": 101}), "max_loss_percent"),
        (json!({"type": "ping", "host": "x", "max_rtt_ms": 0}), "max_rtt_ms"),
        (json!({"type": "ping", "host": "x", "timeout_ms": 0}), "timeout_ms"),
        (json!({"type": "ping", "host": "x", "count": 20, "interval_ms": 1000}), "timeout_ms"),
        (json!({"type": "ping", "host": "x", "ttl": 3}), "ttl"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
    let error = parse(json!({"type": "ping", "host": "x", "count": 11, "interval_ms": 500}));
    let message = error.unwrap_err().message;
    assert_eq!(message, "must be longer than the 5000 ms it takes to send 11 echoes every 500 ms");
    assert!(parse(json!({"type": "ping", "host": "x", "count": 11, "interval_ms": 499})).is_ok());
}

#[test]
fn defaults_are_three_echoes_200_ms_apart_without_loss() {
    let Ok(CheckConfig::Ping(config)) = parse(json!({"type": "ping", "host": "gw"})) else {
        panic!("expected a ping config");
    };
    assert_eq!((config.count, config.interval_ms, config.max_loss_percent), (3, 200, 0));
    assert_eq!((config.max_rtt_ms, config.timeout_ms), (None, 5000));
    let check = PingCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback());
    assert_eq!((check.kind(), check.timeout()), ("ping", Duration::from_secs(5)));
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "ping").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    let fields = ["host", "count", "interval_ms", "max_loss_percent", "max_rtt_ms", "timeout_ms"];
    for field in fields {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    assert_eq!(properties["count"]["maximum"], json!(20));
    assert_eq!(properties.len(), fields.len());
}

// ---------------------------------------------------------------------------------------------
// Inside network namespaces. Each outer test starts this test binary again under `unshare --net`
// to run one `#[ignore]`d inner test: in a namespace of its own, with only a loopback interface,
// it may set sysctls (they are per namespace) without changing anything on the machine.

/// Set for the inner tests by their outer test.
const NAMESPACE_ENV: &str = "CLOUDROUTES_PING_TEST_NAMESPACE";

/// Runs the inner test `name` of this module in a new network namespace, after `wrapper` (a
/// command and its arguments that then runs the test binary), and asserts that it passed.
fn run_in_network_namespace(name: &str, wrapper: &[&str]) {
    let module = module_path!().split_once("::").map_or(module_path!(), |(_, path)| path);
    let test = format!("{module}::{name}");
    let output = Command::new("unshare")
        .args(["--net", "--"])
        .args(wrapper)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &test, "--ignored", "--nocapture", "--test-threads=1"])
        .env(NAMESPACE_ENV, "1")
        .output()
        .expect("unshare runs (Debian package util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test} in a network namespace: {}\n{stdout}\n{stderr}",
        output.status
    );
}

/// Asserts that this is an inner test in its own namespace, then brings up its loopback.
fn enter_test_namespace() {
    assert!(
        std::env::var_os(NAMESPACE_ENV).is_some(),
        "run only by its outer test, inside a network namespace it made"
    );
    let devices = std::fs::read_to_string("/proc/net/dev").unwrap();
    let names: Vec<&str> =
        devices.lines().skip(2).filter_map(|line| line.split(':').next()).map(str::trim).collect();
    assert_eq!(names, ["lo"], "a fresh network namespace has only a loopback interface");
    let status = Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap();
    assert!(status.success(), "ip link set lo up (Debian package iproute2)");
}

/// Sets a sysctl of this namespace, e.g. `net/ipv4/ping_group_range`.
fn set_sysctl(path: &str, value: &str) {
    std::fs::write(format!("/proc/sys/{path}"), value).unwrap();
}

/// Stops the kernel answering echo requests in this namespace (IPv4 and IPv6).
fn ignore_echo_requests() {
    set_sysctl("net/ipv4/icmp_echo_ignore_all", "1");
    set_sysctl("net/ipv6/icmp/echo_ignore_all", "1");
}

/// Answers IPv4 echo requests in place of the kernel (which must ignore them): a request with
/// sequence number `n` is answered after `delay(n)`, or never when that is `None`.
fn answer_echoes(delay: impl Fn(u16) -> Option<Duration> + Send + 'static) {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = Arc::new(UdpSocket::from_std(std::net::UdpSocket::from(socket)).unwrap());
    tokio::spawn(async move {
        let mut buffer = [0u8; RECEIVE_BUFFER_LEN];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            let header_len = usize::from(buffer[0] & 0x0f) * 4;
            let icmp = &buffer[header_len..len];
            if icmp.len() < ECHO_HEADER_LEN || icmp[0] != 8 {
                continue;
            }
            let Some(delay) = delay(u16::from_be_bytes([icmp[6], icmp[7]])) else { continue };
            let mut reply = icmp.to_vec();
            reply[0] = 0;
            reply[2..4].fill(0);
            let checksum = internet_checksum(&reply);
            reply[2..4].copy_from_slice(&checksum.to_be_bytes());
            let socket = Arc::clone(&socket);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                socket.send_to(&reply, from).await.unwrap();
            });
        }
    });
}

/// The unreachable-network and lost-echo cases every socket kind must handle.
async fn assert_unreachable_and_lost_echoes() {
    let reason = failed_reason(check("192.0.2.1", 3, 0, 1000).run().await);
    assert_eq!(reason, "network unreachable: 192.0.2.1", "no route in this namespace");

    ignore_echo_requests();
    let started = Instant::now();
    let reason = failed_reason(check("127.0.0.1", 3, 0, 300).run().await);
    assert_eq!(reason, "3 of 3 echoes to 127.0.0.1 lost (100%, threshold 0%)");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1300),
        "{waited:?}"
    );
    let reason = failed_reason(check("::1", 2, 100, 300).run().await);
    assert_eq!(reason, "no reply from ::1 to 2 echoes");

    answer_echoes(|sequence| (sequence != 1).then_some(Duration::ZERO));
    let reason = failed_reason(check("127.0.0.1", 3, 0, 1000).run().await);
    assert_eq!(reason, "1 of 3 echoes to 127.0.0.1 lost (33%, threshold 0%)");
    let reason = healthy_reason(check("127.0.0.1", 3, 34, 1000).run().await);
    assert!(reason.starts_with("2/3 replies from 127.0.0.1, avg "), "{reason}");
}

/// Returns a `ping` of 127.0.0.1 with a limit on the average round trip.
fn check_with_max_rtt(max_rtt_ms: u64) -> PingCheck {
    let config = Config {
        host: "127.0.0.1".into(),
        count: 2,
        interval_ms: 10,
        max_loss_percent: 0,
        max_rtt_ms: Some(max_rtt_ms),
        timeout_ms: 2000,
    };
    PingCheck::new(&config).unwrap().with_egress(&crate::test_support::loopback())
}

#[test]
fn raw_socket_in_a_namespace_without_unprivileged_icmp() {
    run_in_network_namespace("raw_socket_when_unprivileged_icmp_is_disabled", &[]);
}

#[tokio::test]
#[ignore = "runs inside a network namespace: raw_socket_in_a_namespace_without_unprivileged_icmp"]
async fn raw_socket_when_unprivileged_icmp_is_disabled() {
    enter_test_namespace();
    set_sysctl("net/ipv4/ping_group_range", "1 0"); // the kernel's default: nobody
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(open_echo_socket(localhost, open_icmp_socket).unwrap().1, SocketKind::Raw);
    healthy_reason(check("127.0.0.1", 3, 0, 1000).run().await);
    healthy_reason(check("::1", 3, 0, 1000).run().await);
    assert_unreachable_and_lost_echoes().await;
}

#[test]
fn unprivileged_socket_in_a_namespace_that_allows_it() {
    run_in_network_namespace("unprivileged_socket_when_the_group_is_allowed", &[]);
}

#[tokio::test]
#[ignore = "runs inside a network namespace: unprivileged_socket_in_a_namespace_that_allows_it"]
async fn unprivileged_socket_when_the_group_is_allowed() {
    enter_test_namespace();
    set_sysctl("net/ipv4/ping_group_range", "0 0");
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(open_echo_socket(localhost, open_icmp_socket).unwrap().1, SocketKind::Dgram);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(open_echo_socket(v6, open_icmp_socket).unwrap().1, SocketKind::Dgram);
    let reason = healthy_reason(check("127.0.0.1", 3, 0, 1000).run().await);
    assert!(reason.starts_with("3/3 replies from 127.0.0.1"), "{reason}");
    let reason = healthy_reason(check("::1", 3, 0, 1000).run().await);
    assert!(reason.starts_with("3/3 replies from ::1"), "{reason}");
    assert_unreachable_and_lost_echoes().await;
}

#[test]
fn slow_replies_fail_the_round_trip_limit_in_a_namespace() {
    run_in_network_namespace("slow_replies_fail_the_round_trip_limit", &[]);
}

#[tokio::test]
#[ignore = "runs inside a network namespace: slow_replies_fail_the_round_trip_limit_in_a_namespace"]
async fn slow_replies_fail_the_round_trip_limit() {
    enter_test_namespace();
    ignore_echo_requests();
    answer_echoes(|_| Some(Duration::from_millis(60)));
    let reason = failed_reason(check_with_max_rtt(30).run().await);
    assert!(reason.starts_with("2/2 replies from 127.0.0.1, avg "), "{reason}");
    assert!(reason.ends_with(" ms, above 30 ms"), "{reason}");
    assert!(average_ms(&reason) >= 60.0, "{reason}");
    let reason = healthy_reason(check_with_max_rtt(10_000).run().await);
    assert!(average_ms(&reason) >= 60.0, "{reason}");
}

#[test]
fn unknown_in_a_namespace_where_neither_socket_is_allowed() {
    // Without CAP_NET_RAW in its bounding set, even root may not open raw sockets.
    let wrapper = ["setpriv", "--bounding-set=-net_raw", "--"];
    run_in_network_namespace("unknown_when_neither_socket_is_allowed", &wrapper);
}

#[tokio::test]
#[ignore = "runs inside a network namespace: unknown_in_a_namespace_where_neither_socket_is_allowed"]
async fn unknown_when_neither_socket_is_allowed() {
    enter_test_namespace();
    set_sysctl("net/ipv4/ping_group_range", "1 0"); // the kernel's default: nobody
    let gid = effective_gid().await.unwrap();
    let outcome = check("127.0.0.1", 1, 0, 1000).run().await;
    let reason = format!(
        "unprivileged ICMP is disabled: set net.ipv4.ping_group_range to include gid {gid}, \
         or give the binary CAP_NET_RAW"
    );
    assert_eq!(outcome, CheckOutcome::Unknown { reason });
}
