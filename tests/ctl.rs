//! `cloudroutes ctl` against a real node: the built binary with `CLOUDROUTES_URL` and
//! `CLOUDROUTES_TOKEN`, its tables, its JSON and its exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::common::{Node, free_port};

/// Runs `cloudroutes ctl ARGS` against `url` with `token` (none when `None`) and `stdin`.
pub(crate) fn ctl_with(url: &str, token: Option<&str>, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(crate::common::binary());
    command
        .arg("ctl")
        .args(args)
        .env("CLOUDROUTES_URL", url)
        .env_remove("CLOUDROUTES_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        command.env("CLOUDROUTES_TOKEN", token);
    }
    let mut child = command.spawn().expect("start cloudroutes ctl");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait for cloudroutes ctl")
}

/// Runs `cloudroutes ctl ARGS` against `node`; panics unless it exits 0. Returns stdout.
pub(crate) fn ctl(node: &Node, args: &[&str]) -> String {
    let output = ctl_with(&node.base, Some(&node.token), args, "");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ctl {args:?} failed: {stderr}\n{stdout}");
    stdout
}

/// Like [`ctl`] with `--output json`, parsed.
pub(crate) fn ctl_json(node: &Node, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    let stdout = ctl(node, &args);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("ctl {args:?}: not JSON ({e}): {stdout}"))
}

/// Runs a command that must fail; returns its exit code and stderr.
pub(crate) fn ctl_fails(url: &str, token: Option<&str>, args: &[&str]) -> (Option<i32>, String) {
    let output = ctl_with(url, token, args, "");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "ctl {args:?} should fail: {stderr}");
    (output.status.code(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_manages_a_monitor_from_create_to_delete() {
    let node = Node::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("monitor.json");
    let definition = json!({
        "name": "ctl tcp probe",
        "check": {"type": "tcp-check", "host": "127.0.0.1", "port": port, "timeout_ms": 2000},
        "interval_secs": 3600,
        "tags": ["ctl-test"],
    });
    std::fs::write(&file, definition.to_string()).expect("write monitor file");
    let file = file.to_str().expect("utf-8 path");

    let created = ctl_json(&node, &["monitors", "create", "-f", file]);
    let id = created["id"].as_str().expect("created monitor has an id").to_owned();
    assert_eq!(created["name"], "ctl tcp probe", "{created}");

    let table = ctl(&node, &["monitors", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("LAST REASON") && table.contains("STREAK"), "{table}");
    let row = table.lines().find(|line| line.starts_with(&id)).expect("a row for the monitor");
    assert!(row.contains("ctl tcp probe") && row.contains("tcp-check"), "{table}");
    let listed = ctl_json(&node, &["monitors", "list", "--tag", "ctl-test"]);
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["id"], id.as_str());
    let other = ctl_json(&node, &["monitors", "list", "--tag", "no-such-tag"]);
    assert_eq!(other["items"], json!([]), "{other}");

    let shown = ctl(&node, &["monitors", "get", &id]);
    assert!(shown.contains("ctl tcp probe") && shown.contains("tcp-check"), "{shown}");
    assert!(shown.contains(&id) && shown.contains("ctl-test"), "{shown}");
    assert_eq!(ctl_json(&node, &["monitors", "get", &id])["id"], id.as_str());

    let ran = ctl_json(&node, &["monitors", "run", &id]);
    assert_eq!(ran["outcome"], "healthy", "{ran}");
    assert_eq!(ran["monitor"]["state"]["status"], "healthy", "{ran}");
    let failed = ctl_json(&node, &["monitors", "fail", &id, "--reason", "maintenance by ctl"]);
    assert_eq!(failed["state"]["status"], "failed", "{failed}");
    let table = ctl(&node, &["monitors", "list", "--status", "failed"]);
    assert!(table.contains(&id) && table.contains("failed"), "{table}");
    let healed = ctl(&node, &["monitors", "heal", &id]);
    assert!(healed.lines().any(|l| l.starts_with("status:") && l.contains("healthy")), "{healed}");

    let events = ctl_json(&node, &["events", &id]);
    let changes: Vec<&Value> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["kind"] == "status_change")
        .collect();
    assert!(changes.len() >= 2, "{events}");
    assert_eq!(changes[0]["status"], "healthy", "newest first: {events}");
    assert_eq!(changes[0]["prev_status"], "failed", "{events}");
    assert_eq!(changes[1]["status"], "failed", "{events}");
    assert_eq!(changes[1]["reason"], "maintenance by ctl", "{events}");
    let table = ctl(&node, &["events", &id]);
    let healed_at = table.find("failed -> healthy").expect("the heal in the table");
    let failed_at = table.find("healthy -> failed").expect("the failure in the table");
    assert!(healed_at < failed_at, "newest first: {table}");
    let one = ctl_json(&node, &["events", &id, "--limit", "1"]);
    assert_eq!(one["items"].as_array().map(Vec::len), Some(1), "{one}");

    let status = ctl(&node, &["status"]);
    assert!(status.contains("monitors: 1 (1 healthy)"), "{status}");
    let summary = ctl_json(&node, &["status"]);
    assert_eq!(summary["monitors_by_status"]["healthy"], 1, "{summary}");
    let nodes = ctl(&node, &["nodes"]);
    assert!(nodes.starts_with("NODE") && nodes.contains("yes"), "{nodes}");
    let partitions = ctl(&node, &["partitions"]);
    assert!(partitions.contains("PARTITIONS"), "{partitions}");

    ctl(&node, &["monitors", "delete", &id]);
    let (code, stderr) = ctl_fails(&node.base, Some(&node.token), &["monitors", "get", &id]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    let listed = ctl_json(&node, &["monitors", "list"]);
    assert_eq!(listed["items"], json!([]), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_manages_reactions_from_standard_input_and_exports() {
    let node = Node::start().await;
    let body = json!({
        "name": "ctl hook",
        "action": {"type": "http-webhook", "url": "http://127.0.0.1:9/hook", "timeout_ms": 1000},
        "trigger": 2,
        "frequency_secs": 60,
        "call_on": "failed",
    });
    let output = ctl_with(
        &node.base,
        Some(&node.token),
        &["reactions", "create", "-f", "-", "--output", "json"],
        &body.to_string(),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let id = created["id"].as_str().expect("id").to_owned();

    let table = ctl(&node, &["reactions", "list"]);
    assert!(table.starts_with("ID") && table.contains("CALL ON"), "{table}");
    assert!(table.contains(&id) && table.contains("http-webhook"), "{table}");
    let shown = ctl(&node, &["reactions", "get", &id]);
    assert!(shown.contains("ctl hook") && shown.contains("failed"), "{shown}");

    let export = ctl_json(&node, &["export"]);
    assert_eq!(export["reactions"][0]["name"], "ctl hook", "{export}");
    assert_eq!(export["reactions"][0]["trigger"], 2, "{export}");
    assert!(export["reactions"][0].get("id").is_none(), "matched by name, no id: {export}");
    assert_eq!(export["monitors"], json!([]), "{export}");

    ctl(&node, &["reactions", "delete", &id]);
    assert_eq!(ctl_json(&node, &["reactions", "list"])["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_reports_refusals_with_exit_1_and_unreachable_nodes_with_exit_2() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.json");
    let bad = json!({
        "name": "bad interval",
        "check": {"type": "tcp-check", "host": "127.0.0.1", "port": 1},
        "interval_secs": 0,
    });
    std::fs::write(&file, bad.to_string()).expect("write");
    let args = ["monitors", "create", "-f", file.to_str().expect("utf-8")];
    let (code, stderr) = ctl_fails(&node.base, Some(&node.token), &args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("interval_secs") && stderr.contains("field"), "{stderr}");

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let (code, stderr) = ctl_fails(&nobody, Some(&node.token), &["monitors", "list"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is a node running there"), "{stderr}");

    let (code, stderr) = ctl_fails(&node.base, None, &["status"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("CLOUDROUTES_TOKEN"), "{stderr}");

    let (code, stderr) = ctl_fails(&node.base, Some("wrong-token-0123456789"), &["nodes"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("check --token"), "{stderr}");
}
