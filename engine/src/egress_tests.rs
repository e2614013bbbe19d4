use std::net::{IpAddr, SocketAddr};

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn cidrs(texts: &[&str]) -> Vec<Cidr> {
    texts.iter().map(|text| text.parse().unwrap()).collect()
}

/// Returns the rule text that denies `addr` port 80, or `None` when it is allowed.
fn denial(egress: &Egress, addr: &str) -> Option<String> {
    egress.check(ip(addr), 80).err().map(|denied| denied.rule)
}

#[test]
fn every_built_in_range_is_denied_by_default_naming_the_range() {
    let egress = Egress::default();
    let table = [
        ("169.254.169.254", "built-in deny 169.254.169.254/32 (cloud metadata)"),
        ("100.100.100.200", "built-in deny 100.100.100.200/32 (cloud metadata)"),
        ("fd00:ec2::254", "built-in deny fd00:ec2::254/128 (cloud metadata)"),
        ("169.254.1.1", "built-in deny 169.254.0.0/16 (link-local)"),
        ("fe80::1", "built-in deny fe80::/10 (link-local)"),
        ("0.0.0.0", "built-in deny 0.0.0.0/8 (unspecified)"),
        ("::", "built-in deny ::/128 (unspecified)"),
        ("224.0.0.1", "built-in deny 224.0.0.0/4 (multicast)"),
        ("ff02::1", "built-in deny ff00::/8 (multicast)"),
        ("255.255.255.255", "built-in deny 255.255.255.255/32 (broadcast)"),
        ("127.0.0.1", "built-in deny 127.0.0.0/8 (loopback)"),
        ("127.9.9.9", "built-in deny 127.0.0.0/8 (loopback)"),
        ("::1", "built-in deny ::1/128 (loopback)"),
        ("10.1.2.3", "built-in deny 10.0.0.0/8 (private)"),
        ("172.16.0.1", "built-in deny 172.16.0.0/12 (private)"),
        ("172.31.255.255", "built-in deny 172.16.0.0/12 (private)"),
        ("192.168.1.1", "built-in deny 192.168.0.0/16 (private)"),
        ("100.64.0.1", "built-in deny 100.64.0.0/10 (carrier-grade nat)"),
        ("fd12::1", "built-in deny fc00::/7 (unique local)"),
    ];
    for (addr, rule) in table {
        assert_eq!(denial(&egress, addr).as_deref(), Some(rule), "{addr}");
    }
    for public in ["93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "8.8.8.8"] {
        assert_eq!(denial(&egress, public), None, "{public}");
    }
}

#[test]
fn mapped_and_nat64_ipv6_addresses_are_judged_as_their_ipv4_address() {
    let egress = Egress::default();
    let metadata = Some("built-in deny 169.254.169.254/32 (cloud metadata)".to_owned());
    assert_eq!(denial(&egress, "::ffff:169.254.169.254"), metadata);
    assert_eq!(denial(&egress, "64:ff9b::a9fe:a9fe"), metadata);
    assert_eq!(
        denial(&egress, "::ffff:127.0.0.1").unwrap(),
        "built-in deny 127.0.0.0/8 (loopback)"
    );
    assert_eq!(denial(&egress, "::ffff:8.8.8.8"), None);
    let denied = egress.check(ip("::ffff:169.254.169.254"), 80).unwrap_err();
    assert_eq!(denied.addr.to_string(), "[::ffff:169.254.169.254]:80", "the address as given");
}

/// Issue 7: 6to4 and Teredo addresses carry an IPv4 destination and are judged as it.
#[test]
fn six_to_four_and_teredo_addresses_are_judged_as_their_ipv4_address() {
    let egress = Egress::default();
    let metadata = "built-in deny 169.254.169.254/32 (cloud metadata)";
    let loopback = "built-in deny 127.0.0.0/8 (loopback)";
    // (wrapped address, the IPv4 address it carries, the rule that should decide).
    let table = [
        ("2002:a9fe:a9fe::1", "169.254.169.254", Some(metadata)),
        ("2002:a9fe:a9fe:ffff:ffff:ffff:ffff:ffff", "169.254.169.254", Some(metadata)),
        ("2002:7f00:1::", "127.0.0.1", Some(loopback)),
        ("2002:808:808::1", "8.8.8.8", None),
        // Teredo: server 65.54.227.120, flags 0x8000, port 0x63bf, client inverted.
        ("2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254", Some(metadata)),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1", Some(loopback)),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "8.8.8.8", None),
    ];
    for (wrapped, v4, rule) in table {
        assert_eq!(canonical(ip(wrapped)), ip(v4), "{wrapped}");
        assert_eq!(denial(&egress, wrapped).as_deref(), rule, "{wrapped}");
    }
    // Neighbours of the wrapping prefixes are plain IPv6 addresses.
    for plain in ["2003:a9fe:a9fe::1", "2001:1::5601:5601", "2001:db8::a9fe:a9fe"] {
        assert_eq!(canonical(ip(plain)), ip(plain), "{plain}");
    }
    let node = Egress::new(&cidrs(&["127.0.0.0/8"]), &[]).with_node_ports(&[8080], &[], false);
    let denied = node.check(ip("2002:7f00:1::1"), 8080).unwrap_err();
    assert!(denied.rule.contains("the node's own port 8080"), "{denied}");
    assert!(node.check(ip("2001:0:4136:e378:8000:63bf:80ff:fffe"), 8080).is_err());
    assert!(node.check(ip("2002:7f00:1::1"), 8081).is_ok(), "loopback is allowed here");
}

/// The deprecated IPv4-compatible form `::a.b.c.d` reaches nothing legitimate any more: it is
/// denied whole, while `::` and `::1` keep their own, more specific rules.
#[test]
fn ipv4_compatible_addresses_are_denied() {
    let egress = Egress::default();
    let rule = "built-in deny ::/96 (ipv4-compatible (deprecated))";
    for addr in ["::a9fe:a9fe", "::7f00:1", "::808:808"] {
        assert_eq!(denial(&egress, addr).as_deref(), Some(rule), "{addr}");
    }
    assert_eq!(denial(&egress, "::1").as_deref(), Some("built-in deny ::1/128 (loopback)"));
    let opened = Egress::new(&cidrs(&["::1/128"]), &[]);
    assert_eq!(denial(&opened, "::1"), None, "an operator may still allow loopback");
}

/// The local-use NAT64 block has no fixed IPv4 position, so all of it is denied.
#[test]
fn local_use_nat64_is_denied_whatever_it_carries() {
    let egress = Egress::default();
    let rule = "built-in deny 64:ff9b:1::/48 (local-use nat64)";
    for addr in ["64:ff9b:1::a9fe:a9fe", "64:ff9b:1::7f00:1", "64:ff9b:1::808:808"] {
        assert_eq!(denial(&egress, addr).as_deref(), Some(rule), "{addr}");
    }
    let well_known = "built-in deny 169.254.169.254/32 (cloud metadata)";
    assert_eq!(denial(&egress, "64:ff9b::a9fe:a9fe").as_deref(), Some(well_known));
    assert_eq!(
        denial(&egress, "64:ff9b::7f00:1").as_deref(),
        Some("built-in deny 127.0.0.0/8 (loopback)")
    );
    assert_eq!(denial(&egress, "64:ff9b::808:808"), None, "well-known nat64 of a public address");
    let opened = Egress::new(&cidrs(&["64:ff9b:1::/48"]), &[]);
    assert_eq!(denial(&opened, "64:ff9b:1::808:808"), None, "an operator may allow it");
}

#[test]
fn the_most_specific_prefix_wins_and_deny_wins_a_tie() {
    let broad = Egress::new(&cidrs(&["169.254.0.0/16", "10.0.0.0/8"]), &cidrs(&["10.9.0.0/16"]));
    assert_eq!(denial(&broad, "169.254.1.1"), None, "allow /16 ties the built-in /16 and wins");
    assert_eq!(
        denial(&broad, "169.254.169.254").unwrap(),
        "built-in deny 169.254.169.254/32 (cloud metadata)",
        "a broader allow does not open the metadata address"
    );
    assert_eq!(denial(&broad, "10.1.1.1"), None);
    assert_eq!(denial(&broad, "10.9.1.1").unwrap(), "egress.deny 10.9.0.0/16");

    let exact = Egress::new(&cidrs(&["169.254.169.254/32"]), &[]);
    assert_eq!(denial(&exact, "169.254.169.254"), None, "listed exactly, it opens");

    let tie = Egress::new(&cidrs(&["10.0.0.0/8"]), &cidrs(&["10.0.0.0/8"]));
    assert_eq!(denial(&tie, "10.1.1.1").unwrap(), "egress.deny 10.0.0.0/8");

    let hole = Egress::new(&cidrs(&["10.0.0.5/32"]), &cidrs(&["10.0.0.0/8"]));
    assert_eq!(denial(&hole, "10.0.0.5"), None, "a /32 allow inside a /8 deny");
    assert_eq!(denial(&hole, "10.0.0.6").unwrap(), "egress.deny 10.0.0.0/8");

    let public = Egress::new(&[], &cidrs(&["203.0.113.0/24"]));
    assert_eq!(denial(&public, "203.0.113.7").unwrap(), "egress.deny 203.0.113.0/24");

    let everything = Egress::new(&cidrs(&["0.0.0.0/0", "::/0"]), &[]);
    assert!(denial(&everything, "127.0.0.1").is_some(), "a /0 allow opens no built-in range");
}

#[test]
fn the_deciding_allow_rule_is_reported() {
    let egress = Egress::new(&cidrs(&["10.0.0.0/8"]), &[]);
    let Decision::Allowed { rule: Some(rule) } = egress.decide(ip("10.2.3.4"), 443) else {
        panic!("expected an allow");
    };
    assert_eq!(rule.to_string(), "egress.allow 10.0.0.0/8");
    assert_eq!(egress.decide(ip("8.8.8.8"), 443), Decision::Allowed { rule: None });
}

#[test]
fn node_ports_stay_denied_on_local_addresses_even_when_loopback_is_allowed() {
    let node_ip = ip("10.0.0.7");
    let egress = Egress::new(&cidrs(&["127.0.0.0/8", "10.0.0.0/8", "::1/128"]), &[])
        .with_node_ports(&[8080, 7000], &[node_ip], false);
    let rule = "the node's own port 8080 (egress.allow_node_ports = false)";
    for addr in ["127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "10.0.0.7", "::ffff:127.0.0.1"] {
        assert_eq!(egress.check(ip(addr), 8080).unwrap_err().rule, rule, "{addr}");
    }
    assert!(egress.check(ip("127.0.0.1"), 7000).is_err());
    assert!(egress.check(ip("127.0.0.1"), 8081).is_ok(), "other ports on loopback are allowed");
    assert!(egress.check(ip("10.0.0.8"), 8080).is_ok(), "another host's 8080 is not ours");

    let opened = Egress::new(&cidrs(&["127.0.0.0/8"]), &[]).with_node_ports(&[8080], &[], true);
    assert!(opened.check(ip("127.0.0.1"), 8080).is_ok());
}

#[test]
fn protected_endpoints_are_denied_unless_node_ports_are_allowed() {
    let redis: SocketAddr = "10.0.0.9:6379".parse().unwrap();
    let egress = Egress::new(&cidrs(&["10.0.0.0/8"]), &[])
        .with_node_ports(&[], &[], false)
        .with_protected_endpoints(&[redis]);
    let denied = egress.check(redis.ip(), 6379).unwrap_err();
    assert_eq!(
        denied.to_string(),
        "egress to 10.0.0.9:6379 is denied by the node's own redis 10.0.0.9:6379 (egress.allow_node_ports = false)"
    );
    assert!(egress.check(redis.ip(), 6380).is_ok());
}

#[test]
fn cidr_texts_parse_or_say_what_is_wrong() {
    assert_eq!("10.0.0.0/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
    assert_eq!("127.0.0.1".parse::<Cidr>().unwrap().to_string(), "127.0.0.1/32");
    assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    assert_eq!("fd00::/8".parse::<Cidr>().unwrap().prefix(), 8);
    let cases = [
        ("10.0.0.0/33", "prefix length must be at most 32"),
        ("::/129", "prefix length must be at most 128"),
        ("10.0.0.1/8", "has host bits set; the network is 10.0.0.0/8"),
        ("example.com/8", "expected an ip address"),
        ("10.0.0.0/", "prefix length must be a number"),
        ("10.0.0.0/-1", "prefix length must be a number"),
        ("10.0.0.0/99999999999", "prefix length is too long"),
        ("", "expected an ip address"),
    ];
    for (text, message) in cases {
        let error = text.parse::<Cidr>().unwrap_err();
        assert!(error.message.contains(message), "{text}: {error}");
        assert!(error.to_string().contains(&format!("`{text}`")), "{error}");
    }
}

#[test]
fn prefixes_contain_exactly_their_addresses() {
    let cidr: Cidr = "172.16.0.0/12".parse().unwrap();
    assert!(cidr.contains(ip("172.16.0.0")));
    assert!(cidr.contains(ip("172.31.255.255")));
    assert!(!cidr.contains(ip("172.32.0.0")));
    assert!(!cidr.contains(ip("::ffff:172.16.0.1")), "callers canonicalise first");
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(ip("255.255.255.255")));
    let host: Cidr = "::1/128".parse().unwrap();
    assert!(host.contains(ip("::1")) && !host.contains(ip("::2")));
}
