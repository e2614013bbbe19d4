use std::time::Instant;

use cloudroutes_engine::egress::Egress;

use cloudroutes_engine::config::ExecSection;
use serde_json::json;

use super::*;
use crate::{CheckConfig, check_types};

/// Returns `path` when this machine has it; fails naming the Debian package otherwise.
#[track_caller]
fn program(path: &'static str, package: &str) -> &'static str {
    assert!(Path::new(path).exists(), "{path} is missing: install the Debian package {package}");
    path
}

fn sh() -> &'static str {
    program("/bin/sh", "dash")
}

fn policy(allow: &[&str]) -> ExecPolicy {
    ExecPolicy {
        enabled: true,
        allow: allow.iter().map(PathBuf::from).collect(),
        max_timeout_ms: MAX_TIMEOUT_MS,
        user: None,
    }
}

fn config(command: &str, args: &[&str]) -> Config {
    Config {
        command: command.into(),
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        expect_exit: vec![0],
        expect_output: None,
        timeout_ms: 5000,
    }
}

/// Builds `config` on a node that allows exactly its command.
fn check(config: &Config) -> ExecuteShellCommandCheck {
    ExecuteShellCommandCheck::new(config, &policy(&[&config.command])).unwrap()
}

async fn run(config: &Config) -> CheckOutcome {
    check(config).run().await
}

/// Runs `check` and returns what it printed on stdout.
async fn stdout_of(check: &ExecuteShellCommandCheck) -> String {
    match check.execute().await {
        Execution::Exited { stdout, .. } => String::from_utf8(stdout.bytes).unwrap(),
        other => panic!("expected an exit, got {other:?}"),
    }
}

fn parse(value: serde_json::Value) -> Result<CheckConfig, ConfigError> {
    CheckConfig::parse(&serde_json::from_value(value).unwrap())
}

/// Returns whether process `pid` exists and has not yet died (a zombie counts as dead).
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z' | 'X'))
}

/// Waits up to two seconds for `pid` to die; the kernel finishes a SIGKILL asynchronously.
async fn dies_soon(pid: u32) -> bool {
    for _ in 0..100 {
        if !is_running(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[test]
fn a_node_with_exec_disabled_refuses_to_build() {
    let config = parse(json!({"type": "execute-shell-command", "command": "/usr/bin/printf"}));
    let config = config.expect("the shape is valid on any node");
    let error =
        config.build(&CheckContext::new(Egress::loopback_for_tests()).unwrap()).unwrap_err();
    assert_eq!(error.field, "command", "{error}");
    assert!(error.message.contains("checks.exec.enabled = true"), "{error}");
    assert_eq!(error.message, error.message.to_lowercase());
}

#[test]
fn a_program_off_the_allow_list_is_refused() {
    let context = CheckContext::new(Egress::loopback_for_tests())
        .unwrap()
        .with_exec(policy(&["/usr/bin/printf"]));
    let spec = json!({"type": "execute-shell-command", "command": "/usr/bin/env"});
    let error = parse(spec).unwrap().build(&context).unwrap_err();
    assert_eq!(error.field, "command", "{error}");
    assert!(error.message.contains("`/usr/bin/env`"), "{error}");
    assert!(error.message.contains("checks.exec.allow"), "{error}");
    let spec = json!({"type": "execute-shell-command", "command": "/usr/bin/printf"});
    assert!(parse(spec).unwrap().build(&context).is_ok(), "the listed program builds");
    let spec = json!({"type": "execute-shell-command", "command": "/usr/bin/../bin/printf"});
    assert_eq!(parse(spec).unwrap_err().field, "command", "no second spelling via `..`");
}

#[test]
fn a_timeout_above_the_node_ceiling_is_refused() {
    let mut node = policy(&["/usr/bin/printf"]);
    node.max_timeout_ms = 1000;
    let mut config = config("/usr/bin/printf", &["ok"]);
    config.timeout_ms = 1001;
    let error = ExecuteShellCommandCheck::new(&config, &node).unwrap_err();
    assert_eq!(error.field, "timeout_ms", "{error}");
    assert!(error.message.contains("checks.exec.max_timeout_ms"), "{error}");
    config.timeout_ms = 1000;
    assert!(ExecuteShellCommandCheck::new(&config, &node).is_ok());
}

#[tokio::test]
async fn healthy_when_the_program_exits_with_an_expected_code() {
    let printf = program("/usr/bin/printf", "coreutils");
    let outcome = run(&config(printf, &["ok\\n"])).await;
    let CheckOutcome::Healthy { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("/usr/bin/printf exited with 0 in "), "{reason}");
    let mut exit_3 = config(sh(), &["-c", "exit 3"]);
    exit_3.expect_exit = vec![0, 3];
    let outcome = run(&exit_3).await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
}

#[tokio::test]
async fn failed_with_the_exit_code_and_the_last_line_of_stderr() {
    let script = "echo starting >&2; echo 'disk almost full' >&2; echo >&2; exit 3";
    let mut failing = config(sh(), &["-c", script]);
    let reason = "/bin/sh exited with 3, expected 0 (stderr: disk almost full)".to_owned();
    assert_eq!(run(&failing).await, CheckOutcome::Failed { reason });
    failing.expect_exit = vec![0, 1];
    let outcome = run(&failing).await;
    let CheckOutcome::Failed { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("exited with 3, expected one of 0, 1 (stderr:"), "{reason}");
    let silent = config(sh(), &["-c", "exit 1"]);
    let reason = "/bin/sh exited with 1, expected 0".to_owned();
    assert_eq!(run(&silent).await, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn a_long_stderr_line_is_cut_to_200_characters() {
    let long = config(sh(), &["-c", "printf '%0300d' 7 >&2; exit 1"]);
    let outcome = run(&long).await;
    let CheckOutcome::Failed { reason } = outcome else { panic!("{outcome:?}") };
    let quoted = reason.split_once("(stderr: ").unwrap().1.trim_end_matches(')');
    assert_eq!(quoted.chars().count(), 201, "200 characters and an ellipsis: {reason}");
}

#[tokio::test]
async fn failed_when_a_signal_ends_it() {
    let outcome = run(&config(sh(), &["-c", "kill -TERM $$"])).await;
    let reason = "/bin/sh was killed by signal 15".to_owned();
    assert_eq!(outcome, CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn expect_output_must_be_in_stdout() {
    let printf = program("/usr/bin/printf", "coreutils");
    let mut green = config(printf, &["status: %s\\n", "green"]);
    green.expect_output = Some("status: green".into());
    let outcome = run(&green).await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
    green.expect_output = Some("status: red".into());
    let reason =
        "/usr/bin/printf exited with 0 but \"status: red\" is not in its output (14 bytes)";
    assert_eq!(run(&green).await, CheckOutcome::Failed { reason: reason.into() });
    let mut on_stderr = config(sh(), &["-c", "echo green >&2"]);
    on_stderr.expect_output = Some("green".into());
    let outcome = run(&on_stderr).await;
    assert!(matches!(outcome, CheckOutcome::Failed { .. }), "stderr does not count: {outcome:?}");
}

#[tokio::test]
async fn the_environment_is_cleared_but_for_path_and_lang() {
    let parent: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
    let inherited = parent.iter().find(|name| !["PATH", "LANG"].contains(&name.as_str()));
    let inherited = inherited.expect("the test process has variables of its own to hide");
    let env = program("/usr/bin/env", "coreutils");
    let printed = stdout_of(&check(&config(env, &[]))).await;
    let mut lines: Vec<&str> = printed.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["LANG=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "{inherited} leaked?");
    assert!(!printed.contains(&format!("{inherited}=")), "{printed}");
}

#[tokio::test]
async fn arguments_reach_the_program_without_a_shell() {
    let printf = program("/usr/bin/printf", "coreutils");
    let literal = check(&config(printf, &["%s|", "$HOME", "*", "a b", "`id`;x"]));
    assert_eq!(stdout_of(&literal).await, "$HOME|*|a b|`id`;x|");
}

#[tokio::test]
async fn runs_in_the_root_directory_with_stdin_closed() {
    let started = Instant::now();
    let printed = stdout_of(&check(&config(sh(), &["-c", "pwd; cat; echo end"]))).await;
    assert_eq!(printed, "/\nend\n");
    assert!(started.elapsed() < Duration::from_secs(2), "cat read end of file at once");
}

#[tokio::test]
async fn a_timeout_kills_the_program_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = r#"sleep 30 & echo $$ $! > "$0"; sleep 30"#;
    let mut slow = config(sh(), &["-c", script, pids.to_str().unwrap()]);
    slow.timeout_ms = 500;
    let started = Instant::now();
    let outcome = run(&slow).await;
    assert_eq!(outcome, CheckOutcome::Failed { reason: "no exit within 500 ms".into() });
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(500) + Duration::from_secs(1), "{elapsed:?}");
    let text = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<u32> = text.split_whitespace().map(|pid| pid.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{text}");
    for pid in pids {
        assert!(dies_soon(pid).await, "process {pid} survived the timeout");
    }
}

#[tokio::test]
async fn leftovers_holding_the_output_are_killed_and_do_not_stall_the_check() {
    let started = Instant::now();
    let leaving = check(&config(sh(), &["-c", "sleep 30 & echo $!"]));
    let printed = stdout_of(&leaving).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let pid: u32 = printed.trim().parse().unwrap();
    assert!(dies_soon(pid).await, "the background sleep {pid} survived");
}

#[tokio::test]
async fn output_beyond_64_kib_neither_blocks_nor_is_kept() {
    let head = program("/usr/bin/head", "coreutils");
    let mut chatty = config(head, &["-c", "1048576", "/dev/zero"]);
    let Execution::Exited { stdout, .. } = check(&chatty).execute().await else {
        panic!("head should exit");
    };
    assert_eq!((stdout.total, stdout.bytes.len()), (1_048_576, MAX_OUTPUT_BYTES));
    chatty.expect_output = Some("x".into());
    let outcome = run(&chatty).await;
    let CheckOutcome::Failed { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.ends_with("is not in the first 65536 bytes of its output"), "{reason}");
}

#[tokio::test]
async fn stderr_keeps_its_last_64_kib() {
    let script = "head -c 300000 /dev/zero >&2; echo 'the real error' >&2; exit 2";
    let noisy = check(&config(sh(), &["-c", script]));
    let execution = noisy.execute().await;
    let Execution::Exited { stderr, .. } = &execution else { panic!("{execution:?}") };
    assert_eq!((stderr.total, stderr.bytes.len()), (300_015, MAX_OUTPUT_BYTES));
    let reason = "/bin/sh exited with 2, expected 0 (stderr: the real error)".to_owned();
    assert_eq!(noisy.judge(&execution), CheckOutcome::Failed { reason });
}

#[tokio::test]
async fn runs_as_the_configured_user_without_supplementary_groups() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid_line = status.lines().find(|line| line.starts_with("Uid:")).unwrap();
    assert_eq!(uid_line.split_whitespace().nth(1), Some("0"), "tests run as root (CI too)");
    let id = program("/usr/bin/id", "coreutils");
    let section = ExecSection {
        enabled: true,
        allow: vec![PathBuf::from(id)],
        max_timeout_ms: 5000,
        user: Some("nobody".into()),
    };
    let node = ExecPolicy::from_config(&section).unwrap();
    assert_eq!(node.user.as_ref().map(|user| (user.uid, user.gid)), Some((65_534, 65_534)));
    for (flag, expected) in [("-u", "65534\n"), ("-g", "65534\n"), ("-G", "65534\n")] {
        let as_nobody = ExecuteShellCommandCheck::new(&config(id, &[flag]), &node).unwrap();
        assert_eq!(stdout_of(&as_nobody).await, expected, "id {flag}");
    }
    let as_root = check(&config(id, &["-u"]));
    assert_eq!(stdout_of(&as_root).await, "0\n", "without a user the node's own runs it");
}

#[test]
fn an_unknown_user_fails_the_policy() {
    let section = ExecSection {
        enabled: true,
        allow: vec![PathBuf::from("/usr/bin/id")],
        max_timeout_ms: 5000,
        user: Some("no-such-user-here".into()),
    };
    let error = ExecPolicy::from_config(&section).unwrap_err();
    assert!(error.to_string().contains("checks.exec.user"), "{error}");
    assert!(!ExecPolicy::default().enabled, "the default policy runs nothing");
}

#[tokio::test]
async fn a_program_that_cannot_start_is_unknown() {
    let outcome = run(&config("/nonexistent/program", &[])).await;
    let CheckOutcome::Unknown { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("could not start /nonexistent/program: "), "{reason}");
}

#[tokio::test]
async fn the_registry_parses_defaults_builds_and_runs_it() {
    let printf = program("/usr/bin/printf", "coreutils");
    let spec = json!({"type": "execute-shell-command", "command": printf, "args": ["up"],
                      "expect_output": "up"});
    let Ok(CheckConfig::ExecuteShellCommand(config)) = parse(spec) else {
        panic!("expected an execute-shell-command config");
    };
    assert_eq!((config.expect_exit.as_slice(), config.timeout_ms), ([0].as_slice(), 5000));
    let context =
        CheckContext::new(Egress::loopback_for_tests()).unwrap().with_exec(policy(&[printf]));
    let built = CheckConfig::ExecuteShellCommand(config).build(&context).unwrap().unwrap();
    assert_eq!((built.kind(), built.timeout()), ("execute-shell-command", Duration::from_secs(5)));
    let outcome = built.run().await;
    assert!(matches!(outcome, CheckOutcome::Healthy { .. }), "{outcome:?}");
}

#[test]
fn config_rejections_name_the_field() {
    let many: Vec<String> = (0..65).map(|i| i.to_string()).collect();
    let base = |extra: serde_json::Value| {
        let mut spec = json!({"type": "execute-shell-command", "command": "/usr/bin/printf"});
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        spec
    };
    let cases = [
        (json!({"type": "execute-shell-command"}), "command"),
        (base(json!({"command": ""})), "command"),
        (base(json!({"command": "printf"})), "command"),
        (base(json!({"command": "./printf"})), "command"),
        (base(json!({"command": "/usr/bin/../../tmp/x"})), "command"),
        (base(json!({"command": "/usr/bin/printf\u{0}"})), "command"),
        (base(json!({"command": format!("/{}", "a".repeat(4096))})), "command"),
        (base(json!({"args": many})), "args"),
        (base(json!({"args": "-c"})), "args"),
        (base(json!({"args": ["ok", "x".repeat(4097)]})), "args[1]"),
        (base(json!({"args": ["a\u{0}b"]})), "args[0]"),
        (base(json!({"expect_exit": []})), "expect_exit"),
        (base(json!({"expect_exit": [0, 256]})), "expect_exit[1]"),
        (base(json!({"expect_exit": [-1]})), "expect_exit[0]"),
        (base(json!({"expect_output": ""})), "expect_output"),
        (base(json!({"expect_output": "x".repeat(4097)})), "expect_output"),
        (base(json!({"timeout_ms": 0})), "timeout_ms"),
        (base(json!({"timeout_ms": 120_001})), "timeout_ms"),
        (base(json!({"shell": true})), "shell"),
    ];
    for (value, field) in cases {
        let error = parse(value.clone()).unwrap_err();
        assert_eq!(error.field, field, "{value}: {error}");
        assert_eq!(error.message, error.message.to_lowercase(), "{value}: {error}");
    }
    let at_limits = base(json!({"args": vec!["x".repeat(4096); 64], "expect_exit": [0, 255]}));
    parse(at_limits).unwrap();
}

#[test]
fn schema_lists_every_field() {
    let types = check_types();
    let info = types.iter().find(|t| t.name == "execute-shell-command").unwrap();
    let properties = info.schema["properties"].as_object().unwrap();
    for field in ["command", "args", "expect_exit", "expect_output", "timeout_ms"] {
        assert!(properties.contains_key(field), "{field} missing from {properties:?}");
    }
    assert_eq!(properties["args"]["maxItems"], json!(64));
    assert_eq!(info.schema["required"], json!(["command"]));
}
