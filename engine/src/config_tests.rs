use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::env::{self, ALIASES, KEYS, Kind, NOT_CONFIG};
use super::{FlagOverrides, NodeConfig, SmtpSecurity};
use crate::error::ConfigError;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../cluster.toml");

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

/// Loads `text` as a config file (in a temp dir) with `env` and no flags.
fn load_text(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    load_with(text, env, &FlagOverrides::default())
}

fn load_with(
    text: &str,
    env: &[(&str, &str)],
    flags: &FlagOverrides,
) -> Result<NodeConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    NodeConfig::load(Some(&path), &vars(env), flags)
}

fn load_env(env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    NodeConfig::load(None, &vars(env), &FlagOverrides::default())
}

#[track_caller]
fn assert_invalid(result: Result<NodeConfig, ConfigError>, expected_key: &str) {
    match result {
        Err(ConfigError::Invalid { key, message }) => {
            assert_eq!(key, expected_key, "{message}");
        }
        other => panic!("expected `{expected_key}` to be rejected, got {other:?}"),
    }
}

#[track_caller]
fn parse_error(result: Result<NodeConfig, ConfigError>) -> String {
    match result {
        Err(error @ ConfigError::Parse { .. }) => error.to_string(),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn no_file_and_no_environment_is_a_single_embedded_node() {
    let config = load_env(&[]).unwrap();
    assert_eq!(config.version, 1);
    assert!(config.is_embedded());
    assert_eq!(config.http.addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(config.node.data_dir, PathBuf::from("./data"));
    assert_eq!(config.embedded_store_path(), Path::new("./data/cloudroutes.redb"));
    assert_eq!(config.engine.history_max_events, 1_000);
    assert!(config.cluster.seeds.is_empty());
    assert!(load_text("", &[]).unwrap().is_embedded(), "an empty file is all defaults");
}

#[test]
fn shipped_cluster_toml_parses_and_validates() {
    let config = NodeConfig::load(Some(Path::new(SHIPPED)), &[], &FlagOverrides::default())
        .expect("the shipped cluster.toml loads");
    assert!(!config.is_embedded(), "the example is a cluster on redis");
    assert_eq!(config.store.url, "redis://127.0.0.1:6379/0");
    assert_eq!(config.node.id.as_deref(), Some("node-1"));
    assert_eq!(config.cluster.addr.as_deref(), Some("127.0.0.1:7001"));
    assert!(config.cluster.seeds.is_empty(), "peers are found through Redis");
    assert_eq!(config.cluster.partitions, 1024);
    assert!(config.cluster.cookie.is_some());
}

#[test]
fn shipped_cluster_toml_documents_every_key_and_variable() {
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    for (key, _) in KEYS {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(text.contains(&format!("{leaf} =")), "cluster.toml sets or shows `{key}`");
        let variable = env::variable_name(key);
        assert!(text.contains(&variable), "cluster.toml names {variable}");
    }
    for (alias, _) in ALIASES {
        assert!(text.contains(alias), "cluster.toml names {alias}");
    }
}

/// Returns the fields a section accepts, read from its "unknown field" message.
fn fields_of(section: &str) -> Vec<String> {
    let text = if section.is_empty() {
        "zzz_unknown = 1".to_owned()
    } else {
        format!("[{section}]\nzzz_unknown = 1")
    };
    let message = parse_error(load_text(&text, &[]));
    let (_, expected) = message.split_once(", expected").expect("serde lists the fields");
    let expected = expected.lines().next().unwrap_or_default();
    expected.split('`').skip(1).step_by(2).map(|field| field.to_owned()).collect()
}

/// Returns whether `path` is a section: a table whose unknown keys are refused by name.
fn is_section(path: &str) -> bool {
    match load_text(&format!("[{path}]\nzzz_unknown = 1"), &[]) {
        Err(error @ ConfigError::Parse { .. }) => {
            error.to_string().contains("unknown field `zzz_unknown`")
        }
        _ => false,
    }
}

/// Returns every dotted key under `section` (the root when empty), sections descended into.
fn keys_under(section: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for field in fields_of(section) {
        let path = if section.is_empty() { field } else { format!("{section}.{field}") };
        if is_section(&path) {
            keys.extend(keys_under(&path));
        } else {
            keys.push(path);
        }
    }
    keys
}

#[test]
fn key_table_matches_the_structs() {
    let mut from_structs = keys_under("");
    assert!(from_structs.contains(&"checks.exec.enabled".to_owned()), "{from_structs:?}");
    let mut table: Vec<String> = KEYS.iter().map(|(key, _)| (*key).to_owned()).collect();
    from_structs.sort();
    table.sort();
    assert_eq!(table, from_structs, "env::KEYS lists exactly the config keys");
}

#[test]
fn every_key_has_a_derived_variable() {
    for (key, kind) in KEYS {
        let variable = env::variable_name(key);
        let value = match kind {
            Kind::Integer => "7",
            Kind::Text | Kind::List => "x",
            Kind::Bool => "true",
        };
        let found = env::overrides(&vars(&[(&variable, value)])).unwrap();
        assert_eq!(found.len(), 1, "{variable}");
        assert_eq!(found[0].key, *key, "{variable} sets {key}");
    }
    assert_eq!(
        env::variable_name("engine.check_concurrency"),
        "CLOUDROUTES_ENGINE_CHECK_CONCURRENCY"
    );
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let file = "[node]\nid = \"file\"\ndata_dir = \"/file\"\n[http]\naddr = \"127.0.0.1:1000\"\n\
                [engine]\ncheck_concurrency = 10\nreaction_concurrency = 11\n";
    let env = [
        ("CLOUDROUTES_NODE_ID", "env"),
        ("CLOUDROUTES_DATA_DIR", "/env"),
        ("CLOUDROUTES_HTTP_ADDR", "127.0.0.1:2000"),
        ("CLOUDROUTES_ENGINE_CHECK_CONCURRENCY", "20"),
    ];
    let config = load_text(file, &[]).unwrap();
    assert_eq!(config.node.id.as_deref(), Some("file"), "file over default");
    assert_eq!(config.engine.check_concurrency, 10);

    let config = load_text(file, &env).unwrap();
    assert_eq!(config.node.id.as_deref(), Some("env"), "environment over file");
    assert_eq!(config.node.data_dir, PathBuf::from("/env"));
    assert_eq!(config.http.addr, SocketAddr::from(([127, 0, 0, 1], 2000)));
    assert_eq!(config.engine.check_concurrency, 20);
    assert_eq!(config.engine.reaction_concurrency, 11, "keys not in the environment stay");

    let flags = FlagOverrides {
        http_addr: Some(SocketAddr::from(([127, 0, 0, 1], 3000))),
        data_dir: Some(PathBuf::from("/flag")),
        node_id: Some("flag".into()),
    };
    let config = load_with(file, &env, &flags).unwrap();
    assert_eq!(config.node.id.as_deref(), Some("flag"), "flag over environment");
    assert_eq!(config.node.data_dir, PathBuf::from("/flag"));
    assert_eq!(config.http.addr, SocketAddr::from(([127, 0, 0, 1], 3000)));
    assert_eq!(config.engine.check_concurrency, 20);
}

#[test]
fn a_cluster_node_can_be_configured_by_environment_alone() {
    let config = load_env(&[
        ("CLOUDROUTES_STORE", "redis://127.0.0.1:6379/0"),
        ("CLOUDROUTES_NODE_ID", "node-2"),
        ("CLOUDROUTES_CLUSTER_ADDR", "127.0.0.1:7002"),
        ("CLOUDROUTES_SEEDS", " 127.0.0.1:7001 ,127.0.0.1:7003,"),
        ("CLOUDROUTES_COOKIE", "s3cret"),
        ("CLOUDROUTES_HTTP_BODY_LIMIT_BYTES", "2048"),
        ("PATH", "/usr/bin"),
    ])
    .unwrap();
    assert_eq!(config.store.url, "redis://127.0.0.1:6379/0");
    assert_eq!(config.cluster.seeds, ["127.0.0.1:7001", "127.0.0.1:7003"]);
    assert_eq!(config.cluster.cookie.as_ref().map(|cookie| cookie.expose()), Some("s3cret"));
    assert!(!format!("{config:?}").contains("s3cret"), "the cookie never prints");
    assert_eq!(config.http.body_limit_bytes, 2048);
}

#[test]
fn non_config_variables_are_ignored_and_unknown_ones_are_named() {
    let ignored: Vec<(&str, &str)> = NOT_CONFIG.iter().map(|name| (*name, "whatever")).collect();
    load_env(&ignored).unwrap();
    let message = parse_error(load_env(&[("CLOUDROUTES_CHECK_CONCURRENCY", "5")]));
    assert!(message.contains("CLOUDROUTES_CHECK_CONCURRENCY"), "{message}");
}

#[test]
fn bad_environment_values_name_the_variable() {
    let message = parse_error(load_env(&[("CLOUDROUTES_ENGINE_CHECK_CONCURRENCY", "many")]));
    assert!(message.contains("CLOUDROUTES_ENGINE_CHECK_CONCURRENCY"), "{message}");
    let message = parse_error(load_env(&[("CLOUDROUTES_HTTP_ADDR", "localhost")]));
    assert!(
        message.contains("CLOUDROUTES_HTTP_ADDR") && message.contains("http.addr"),
        "{message}"
    );
    let message = parse_error(load_env(&[("CLOUDROUTES_ENGINE_ROUTER_SHARDS", "-1")]));
    assert!(message.contains("CLOUDROUTES_ENGINE_ROUTER_SHARDS"), "{message}");
    let message = parse_error(load_text("node = 3", &[("CLOUDROUTES_NODE_ZONE", "a")]));
    assert!(message.contains("CLOUDROUTES_NODE_ZONE"), "{message}");
}

#[test]
fn empty_variables_leave_scalars_alone() {
    let config = load_text("[node]\nzone = \"rack-1\"", &[("CLOUDROUTES_NODE_ZONE", "")]).unwrap();
    assert_eq!(config.node.zone, "rack-1");
}

#[test]
fn alias_and_derived_name_must_agree() {
    let same = [("CLOUDROUTES_DATA_DIR", "/d"), ("CLOUDROUTES_NODE_DATA_DIR", "/d")];
    assert_eq!(load_env(&same).unwrap().node.data_dir, PathBuf::from("/d"));
    let different = [("CLOUDROUTES_STORE", "embedded"), ("CLOUDROUTES_STORE_URL", "redis://h/0")];
    let message = parse_error(load_env(&different));
    assert!(message.contains("CLOUDROUTES_STORE") && message.contains("store.url"), "{message}");
}

#[test]
fn file_errors_name_the_file_and_the_key() {
    let message = parse_error(load_text("[engine]\nchek_concurrency = 4", &[]));
    assert!(message.contains("engine.chek_concurrency"), "{message}");
    assert!(message.contains("cluster.toml"), "{message}");
    let message = parse_error(load_text("[engines]\n", &[]));
    assert!(message.contains("`engines`"), "{message}");
    let message = parse_error(load_text("[engine]\ncheck_concurrency = \"lots\"", &[]));
    assert!(message.contains("engine.check_concurrency"), "{message}");
    assert!(message.contains("cluster.toml"), "{message}");
    let message = parse_error(load_text("[engine\ncheck_concurrency = 1", &[]));
    assert!(message.contains("cluster.toml") && message.contains("line 1"), "{message}");
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let path = Path::new("/nonexistent/cloudroutes/cluster.toml");
    let error = NodeConfig::load(Some(path), &[], &FlagOverrides::default()).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("/nonexistent/cloudroutes/cluster.toml"), "{error}");
}

#[test]
fn out_of_range_values_are_rejected_naming_the_key() {
    let cases = [
        ("version = 2", "version"),
        ("[node]\nid = \"\"", "node.id"),
        ("[node]\nid = \"a b\"", "node.id"),
        ("[node]\ndata_dir = \"\"", "node.data_dir"),
        ("[engine]\ncheck_concurrency = 0", "engine.check_concurrency"),
        ("[engine]\ncheck_concurrency = 1000001", "engine.check_concurrency"),
        ("[engine]\nrouter_shards = 1025", "engine.router_shards"),
        ("[engine]\nreaction_concurrency = 0", "engine.reaction_concurrency"),
        ("[engine]\nreaction_concurrency = 1000001", "engine.reaction_concurrency"),
        ("[engine]\nreaction_timeout_ms = 0", "engine.reaction_timeout_ms"),
        ("[engine]\nreaction_timeout_ms = 600001", "engine.reaction_timeout_ms"),
        ("[engine]\nstate_flush_ms = 9", "engine.state_flush_ms"),
        ("[engine]\nstate_flush_ms = 60001", "engine.state_flush_ms"),
        ("[engine]\nhistory_max_events = 0", "engine.history_max_events"),
        ("[engine]\nhistory_max_events = 1000001", "engine.history_max_events"),
        ("[engine]\nrestart_backoff_initial_ms = 0", "engine.restart_backoff_initial_ms"),
        ("[engine]\ndestructive_budget = 0", "engine.destructive_budget"),
        ("[engine]\ndestructive_window_secs = 0", "engine.destructive_window_secs"),
        ("[engine]\ndestructive_window_secs = 604801", "engine.destructive_window_secs"),
        ("[engine]\nbrake_failed_percent = 0", "engine.brake_failed_percent"),
        ("[engine]\nbrake_failed_percent = 101", "engine.brake_failed_percent"),
        ("[engine]\nbrake_min_monitors = 0", "engine.brake_min_monitors"),
        (
            "[engine]\nrestart_backoff_initial_ms = 2000\nrestart_backoff_max_ms = 1000",
            "engine.restart_backoff_max_ms",
        ),
        ("[http]\nbody_limit_bytes = 1023", "http.body_limit_bytes"),
        ("[http]\nbody_limit_bytes = 67108865", "http.body_limit_bytes"),
        ("[http]\npublic_url = \"example.com\"", "http.public_url"),
        ("[store]\nurl = \"postgres://db\"", "store.url"),
        ("[store]\nurl = \"\"", "store.url"),
        ("[cluster]\nseeds = [\"127.0.0.1:7002\"]", "cluster.seeds"),
        ("[cluster]\naddr = \"127.0.0.1:7001\"\ncookie = \"c\"", "cluster.addr"),
        ("[cluster]\npartitions = 0", "cluster.partitions"),
        ("[cluster]\npartitions = 65537", "cluster.partitions"),
        ("[cluster]\nlease_ms = 299", "cluster.lease_ms"),
        ("[cluster]\nredis_timeout_ms = 49", "cluster.redis_timeout_ms"),
    ];
    for (text, key) in cases {
        assert_invalid(load_text(text, &[]), key);
    }
    // Timings must order so that a node stops writing before its lease can expire.
    let timing = [
        ("renew_ms = 6000", "cluster.renew_ms"),
        ("fence_ms = 10000", "cluster.fence_ms"),
        ("fence_ms = 1000\nrenew_ms = 1000", "cluster.renew_ms"),
        ("heartbeat_ms = 10000", "cluster.heartbeat_ms"),
        ("addr = \"127.0.0.1:7001\"", "cluster.cookie"),
        ("tls_cert = \"node.crt\"", "cluster.tls_key"),
        ("tls_key = \"node.key\"", "cluster.tls_cert"),
    ];
    for (keys, key) in timing {
        assert_invalid(load_text(&format!("{REDIS}\n[cluster]\n{keys}"), &[]), key);
    }
}

#[test]
fn boundary_values_are_accepted() {
    let text = "[engine]\ncheck_concurrency = 1000000\nreaction_concurrency = 1\n\
                reaction_timeout_ms = 600000\nstate_flush_ms = 10\nhistory_max_events = 1\n\
                restart_backoff_initial_ms = 5\nrestart_backoff_max_ms = 5\n\
                [http]\nbody_limit_bytes = 67108864\npublic_url = \"https://cr.example.com\"\n\
                [store]\nurl = \"rediss://redis.example.com:6380/1\"\n\
                [cluster]\nseeds = [\"10.0.0.2:7001\"]";
    load_text(text, &[]).unwrap();
}

#[test]
fn a_cluster_on_the_embedded_store_says_it_needs_redis() {
    let error = load_env(&[("CLOUDROUTES_SEEDS", "127.0.0.1:7002")]).unwrap_err();
    assert!(error.to_string().contains("redis"), "{error}");
    assert_invalid(Err(error), "cluster.seeds");
    let env = [("CLOUDROUTES_CLUSTER_ADDR", "127.0.0.1:7001"), ("CLOUDROUTES_COOKIE", "c")];
    let error = load_env(&env).unwrap_err();
    assert!(error.to_string().contains("redis"), "{error}");
    assert_invalid(Err(error), "cluster.addr");
}

/// A store section that makes cluster keys legal.
const REDIS: &str = "[store]\nurl = \"redis://127.0.0.1:6379/0\"";

#[test]
fn cluster_timings_default_to_a_safe_order_and_load_from_the_environment() {
    let config = load_text(REDIS, &[]).unwrap();
    let cluster = &config.cluster;
    assert_eq!(cluster.partitions, 1024);
    assert!(cluster.renew_ms < cluster.fence_ms && cluster.fence_ms < cluster.lease_ms);
    assert!(cluster.heartbeat_ms < cluster.heartbeat_ttl_ms);
    let env = [
        ("CLOUDROUTES_CLUSTER_LEASE_MS", "3000"),
        ("CLOUDROUTES_CLUSTER_RENEW_MS", "500"),
        ("CLOUDROUTES_CLUSTER_FENCE_MS", "2000"),
        ("CLOUDROUTES_CLUSTER_PARTITIONS", "64"),
    ];
    let config = load_text(REDIS, &env).unwrap();
    assert_eq!(
        (config.cluster.lease_ms, config.cluster.renew_ms, config.cluster.fence_ms),
        (3000, 500, 2000)
    );
    assert_eq!(config.cluster.partitions, 64);
}

#[test]
fn router_shards_zero_means_one_per_core() {
    let config = load_env(&[]).unwrap();
    assert!(config.router_shards() >= 1);
    let config = load_env(&[("CLOUDROUTES_ENGINE_ROUTER_SHARDS", "3")]).unwrap();
    assert_eq!(config.router_shards(), 3);
}

#[test]
fn validate_checks_configs_built_in_code() {
    let mut config = NodeConfig::default();
    config.validate().unwrap();
    config.engine.state_flush_ms = 0;
    assert_invalid(config.validate().map(|()| NodeConfig::default()), "engine.state_flush_ms");
}

/// A `[checks.exec]` section that lets monitors run `printf` and `env`.
const EXEC: &str = "[checks.exec]\nenabled = true\nallow = [\"/usr/bin/printf\", \"/usr/bin/env\"]";

#[test]
fn exec_checks_are_off_by_default() {
    let exec = load_env(&[]).unwrap().checks.exec;
    assert!(!exec.enabled);
    assert!(exec.allow.is_empty());
    assert_eq!(exec.max_timeout_ms, 30_000);
    assert_eq!(exec.user, None);
    assert_eq!(exec.resolve_user().unwrap(), None);
}

#[test]
fn exec_checks_load_from_the_file() {
    let text = format!("{EXEC}\nmax_timeout_ms = 10000\nuser = \"nobody\"");
    let exec = load_text(&text, &[]).unwrap().checks.exec;
    assert!(exec.enabled);
    assert_eq!(exec.allow, [PathBuf::from("/usr/bin/printf"), PathBuf::from("/usr/bin/env")]);
    assert_eq!(exec.max_timeout_ms, 10_000);
    let user = exec.resolve_user().unwrap().expect("nobody resolves");
    assert_eq!((user.name.as_str(), user.uid), ("nobody", 65_534));
}

#[test]
fn exec_checks_load_from_the_environment() {
    let env = [
        ("CLOUDROUTES_CHECKS_EXEC_ENABLED", "true"),
        ("CLOUDROUTES_CHECKS_EXEC_ALLOW", " /usr/bin/printf, /usr/bin/id ,"),
        ("CLOUDROUTES_CHECKS_EXEC_MAX_TIMEOUT_MS", "2500"),
        ("CLOUDROUTES_CHECKS_EXEC_USER", "nobody"),
    ];
    let exec = load_env(&env).unwrap().checks.exec;
    assert!(exec.enabled);
    assert_eq!(exec.allow, [PathBuf::from("/usr/bin/printf"), PathBuf::from("/usr/bin/id")]);
    assert_eq!(exec.max_timeout_ms, 2_500);
    assert_eq!(exec.user.as_deref(), Some("nobody"));
    let exec = load_text(EXEC, &[("CLOUDROUTES_CHECKS_EXEC_ENABLED", "false")]).unwrap();
    assert!(!exec.checks.exec.enabled, "the environment turns off what the file turned on");
}

#[test]
fn exec_check_rejections_name_the_key() {
    let cases = [
        ("[checks.exec]\nenabled = true".to_owned(), "checks.exec.allow"),
        ("[checks.exec]\nenabled = true\nallow = []".to_owned(), "checks.exec.allow"),
        ("[checks.exec]\nallow = [\"printf\"]".to_owned(), "checks.exec.allow"),
        ("[checks.exec]\nallow = [\"/usr/bin/../../tmp/x\"]".to_owned(), "checks.exec.allow"),
        (format!("{EXEC}\nmax_timeout_ms = 0"), "checks.exec.max_timeout_ms"),
        (format!("{EXEC}\nmax_timeout_ms = 120001"), "checks.exec.max_timeout_ms"),
        (format!("{EXEC}\nuser = \"\""), "checks.exec.user"),
        (format!("{EXEC}\nuser = \"no-such-user-here\""), "checks.exec.user"),
        ("[checks.exec]\nuser = \"no-such-user-here\"".to_owned(), "checks.exec.user"),
    ];
    for (text, key) in cases {
        assert_invalid(load_text(&text, &[]), key);
    }
    let error = load_env(&[("CLOUDROUTES_CHECKS_EXEC_ENABLED", "true")]).unwrap_err();
    assert!(error.to_string().contains("checks.exec.enabled"), "{error}");
    assert_invalid(Err(error), "checks.exec.allow");
    let env = [("CLOUDROUTES_CHECKS_EXEC_USER", "no-such-user-here")];
    assert_invalid(load_env(&env), "checks.exec.user");
    let emptied = [("CLOUDROUTES_CHECKS_EXEC_ALLOW", "")];
    assert_invalid(load_text(EXEC, &emptied), "checks.exec.allow");
}

#[test]
fn exec_parse_errors_name_the_key_or_the_variable() {
    let message = parse_error(load_text("[checks.exec]\nallowed = []", &[]));
    assert!(message.contains("checks.exec.allowed"), "{message}");
    let message = parse_error(load_text("[checks.ssh]\nenabled = true", &[]));
    assert!(message.contains("checks.ssh"), "{message}");
    let message = parse_error(load_text("[checks.exec]\nenabled = \"yes\"", &[]));
    assert!(message.contains("checks.exec.enabled"), "{message}");
    let message = parse_error(load_env(&[("CLOUDROUTES_CHECKS_EXEC_ENABLED", "yes")]));
    assert!(message.contains("CLOUDROUTES_CHECKS_EXEC_ENABLED"), "{message}");
    assert!(message.contains("true or false"), "{message}");
    let message = parse_error(load_env(&[("CLOUDROUTES_CHECKS_EXEC_MAX_TIMEOUT_MS", "soon")]));
    assert!(message.contains("CLOUDROUTES_CHECKS_EXEC_MAX_TIMEOUT_MS"), "{message}");
}

#[test]
fn smtp_relay_from_file_and_environment_with_rejections_naming_the_key() {
    let relay = "[smtp]\nhost = \"mail.example.com\"\nfrom = \"cr@example.com\"";
    let config = load_text(relay, &[]).unwrap();
    assert_eq!(config.smtp.port, None, "the port follows the security unless set");
    assert_eq!(config.smtp.security, SmtpSecurity::Starttls);
    let env = [
        ("CLOUDROUTES_SMTP_SECURITY", "tls"),
        ("CLOUDROUTES_SMTP_PORT", "465"),
        ("CLOUDROUTES_SMTP_USERNAME", "cr"),
        ("CLOUDROUTES_SMTP_PASSWORD", "hunter2"),
    ];
    let config = load_text(relay, &env).unwrap();
    assert_eq!((config.smtp.security, config.smtp.port), (SmtpSecurity::Tls, Some(465)));
    assert_eq!(
        config.smtp.password.as_ref().map(|p| p.expose().to_owned()),
        Some("hunter2".into())
    );
    assert!(!format!("{config:?}").contains("hunter2"), "the password stays out of Debug");
    let cases = [
        ("[smtp]\nhost = \"mail.example.com\"", "smtp.from"),
        ("[smtp]\nhost = \"mail.example.com\"\nfrom = \"nobody\"", "smtp.from"),
        ("[smtp]\nhost = \"mail example\"\nfrom = \"a@b\"", "smtp.host"),
        ("[smtp]\nhost = \"m\"\nfrom = \"a@b\"\nport = 0", "smtp.port"),
        ("[smtp]\nhost = \"m\"\nfrom = \"a@b\"\nusername = \"u\"", "smtp.password"),
    ];
    for (text, key) in cases {
        assert_invalid(load_text(text, &[]), key);
    }
    let error = parse_error(load_text("[smtp]\nsecurity = \"ssl\"", &[]));
    assert!(error.contains("security"), "{error}");
}

#[test]
fn egress_lists_from_file_and_environment_with_bad_prefixes_naming_the_key() {
    let config = load_text("[egress]\nallow = [\"10.0.0.0/8\", \"127.0.0.1\"]", &[]).unwrap();
    let policy = config.egress.policy().unwrap();
    assert!(policy.check("10.1.2.3".parse().unwrap(), 80).is_ok());
    assert!(policy.check("127.0.0.2".parse().unwrap(), 80).is_err(), "only 127.0.0.1/32");
    assert!(!config.egress.allow_node_ports);

    let from_env = load_env(&[
        ("CLOUDROUTES_EGRESS_ALLOW", "127.0.0.0/8, ::1"),
        ("CLOUDROUTES_EGRESS_DENY", "127.0.0.9/32"),
        ("CLOUDROUTES_EGRESS_ALLOW_NODE_PORTS", "true"),
    ])
    .unwrap();
    assert_eq!(from_env.egress.allow, ["127.0.0.0/8", "::1"]);
    assert_eq!(from_env.egress.deny, ["127.0.0.9/32"]);
    assert!(from_env.egress.allow_node_ports);

    assert_invalid(
        load_text("[egress]\nallow = [\"10.0.0.0/8\", \"10.0.0.0/33\"]", &[]),
        "egress.allow[1]",
    );
    assert_invalid(load_env(&[("CLOUDROUTES_EGRESS_DENY", "example.com")]), "egress.deny[0]");
    assert_invalid(load_env(&[("CLOUDROUTES_EGRESS_ALLOW", "10.0.0.1/8")]), "egress.allow[0]");
    let message = load_env(&[("CLOUDROUTES_EGRESS_ALLOW", "10.0.0.1/8")]).unwrap_err().to_string();
    assert!(message.contains("host bits set; the network is 10.0.0.0/8"), "{message}");
    let unknown = parse_error(load_text("[egress]\nallowed = []", &[]));
    assert!(unknown.contains("egress.allowed"), "{unknown}");
}

#[test]
fn a_syntax_error_names_line_and_column_but_never_echoes_the_line() {
    let text = "[cluster]\ncookie = \"canary-cookie-93 \nzone = 1\n";
    let message = parse_error(load_text(text, &[]));
    assert!(message.contains("line 2, column"), "{message}");
    assert!(!message.contains("canary-cookie-93"), "the line leaked: {message}");
}
