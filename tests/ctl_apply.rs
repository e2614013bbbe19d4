//! `cloudroutes ctl apply` and `export` against a real node: monitors and reactions as code,
//! matched by name, with a dry-run diff, pruning, and an export that applies back unchanged.

use serde_json::{Value, json};

use crate::common::Node;
use crate::ctl::{ctl, ctl_fails, ctl_json, ctl_with};

const FIRST: &str = r#"
[[reactions]]
name = "page ops"
trigger = 2
[reactions.action]
type = "http-webhook"
url = "http://127.0.0.1:9/hook"
timeout_ms = 1000

[[monitors]]
name = "shop"
interval_secs = 60
reactions = ["page ops"]
tags = ["shop"]
[monitors.check]
type = "tcp-check"
host = "127.0.0.1"
port = 9

[[monitors]]
name = "backup"
[monitors.check]
type = "heartbeat"
period_secs = 86400
"#;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write manifest");
    path.to_str().expect("utf-8").to_owned()
}

async fn by_name(node: &Node, collection: &str) -> std::collections::BTreeMap<String, Value> {
    let (status, page) = node.get(&format!("/{collection}?limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().expect("items").iter();
    items.map(|item| (item["name"].as_str().expect("name").to_owned(), item.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_diffs_changes_and_prunes_by_name() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let first = write(&dir, "monitors.toml", FIRST);

    // A dry run shows the plan and changes nothing.
    let dry = ctl(&node, &["apply", "-f", &first, "--dry-run"]);
    assert!(dry.contains("+ reaction \"page ops\" (create)"), "{dry}");
    assert!(dry.contains("+ monitor \"shop\" (create)"), "{dry}");
    assert!(dry.contains("dry run: 3 to create, 0 to change, 0 to delete"), "{dry}");
    assert!(by_name(&node, "monitors").await.is_empty());

    let applied = ctl_json(&node, &["apply", "-f", &first]);
    assert_eq!(
        applied["summary"],
        json!({"create": 3, "update": 0, "delete": 0, "unchanged": 0, "kept": 0})
    );
    let reactions = by_name(&node, "reactions").await;
    let monitors = by_name(&node, "monitors").await;
    let hook_id = reactions["page ops"]["id"].as_str().expect("id").to_owned();
    assert_eq!(monitors["shop"]["reactions"], json!([hook_id]), "reactions are linked by id");
    assert_eq!(monitors["shop"]["tags"], json!(["shop"]));
    assert!(monitors["backup"]["webhook_url"].is_string());

    // Applying the same file again changes nothing.
    let again = ctl(&node, &["apply", "-f", &first]);
    assert!(
        again.contains("applied: 0 to create, 0 to change, 0 to delete, 3 unchanged"),
        "{again}"
    );

    // A YAML edit: the dry run names each changed field; --prune deletes what is gone.
    let second = write(
        &dir,
        "monitors.yaml",
        "monitors:\n  - name: shop\n    interval_secs: 30\n    reactions: [page ops]\n    tags: [shop, eu]\n    check: {type: tcp-check, host: 127.0.0.1, port: 10}\nreactions:\n  - name: page ops\n    trigger: 2\n    action: {type: http-webhook, url: 'http://127.0.0.1:9/hook', timeout_ms: 1000}\n",
    );
    let dry = ctl(&node, &["apply", "-f", &second, "--dry-run", "--prune"]);
    for line in [
        "~ monitor \"shop\" (update)",
        "check.port: 9 -> 10",
        "interval_secs: 60 -> 30",
        "- monitor \"backup\" (delete)",
        "dry run: 0 to create, 1 to change, 1 to delete, 1 unchanged",
    ] {
        assert!(dry.contains(line), "{line} in:\n{dry}");
    }
    assert_eq!(by_name(&node, "monitors").await["shop"]["interval_secs"], 60, "dry run wrote");
    let without_prune = ctl(&node, &["apply", "-f", &second]);
    assert!(without_prune.contains("1 on the node not in the file (kept"), "{without_prune}");
    ctl(&node, &["apply", "-f", &second, "--prune"]);
    let monitors = by_name(&node, "monitors").await;
    assert_eq!(monitors.keys().collect::<Vec<_>>(), ["shop"]);
    assert_eq!(monitors["shop"]["interval_secs"], 30);
    assert_eq!(monitors["shop"]["check"]["port"], 10);
    assert!(monitors["shop"]["state"]["status"].is_string(), "state is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_applies_back_unchanged_and_secrets_come_from_the_environment() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = "reactions:\n  - name: stats\n    action: {type: stathat, ezkey: '${APPLY_TEST_EZKEY}', stat: failures}\nmonitors:\n  - name: web\n    interval_secs: 60\n    reactions: [stats]\n    check: {type: tcp-check, host: 127.0.0.1, port: 9}\n";
    let file = write(&dir, "m.yml", manifest);
    let args = ["apply", "-f", file.as_str()];
    let (code, stderr) = ctl_fails(&node.base, Some(&node.token), &args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("APPLY_TEST_EZKEY is not set"), "{stderr}");
    let with_key = |extra: &[&str]| {
        let output = std::process::Command::new(crate::common::binary())
            .args(["ctl", "apply", "-f", &file])
            .args(extra)
            .env("CLOUDROUTES_URL", &node.base)
            .env("CLOUDROUTES_TOKEN", &node.token)
            .env("APPLY_TEST_EZKEY", "canary-ezkey-7731")
            .output()
            .expect("run ctl");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(!stdout.contains("canary-ezkey-7731"), "{stdout}");
        stdout
    };
    with_key(&[]);
    // Secrets read back as ***: equal unless asked to send them again.
    assert!(with_key(&[]).contains("2 unchanged"));
    assert!(with_key(&["--update-secrets"]).contains("secret fields sent again"));

    for format in ["toml", "yaml", "json"] {
        let exported = ctl(&node, &["export", "--format", format]);
        assert!(!exported.contains("canary-ezkey-7731"), "secret in export: {exported}");
        assert!(exported.contains("***") && exported.contains("stats"), "{exported}");
        let path = write(&dir, &format!("export.{format}"), &exported);
        let plan = ctl(&node, &["apply", "-f", &path, "--prune"]);
        assert!(
            plan.contains("0 to create, 0 to change, 0 to delete, 2 unchanged"),
            "{format}: {plan}"
        );
    }
    // Standard input needs --format; secrets given as *** keep the node's values.
    let exported = ctl(&node, &["export"]);
    let (code, stderr) = ctl_fails(&node.base, Some(&node.token), &["apply", "-f", "-"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("pass --format"), "{stderr}");
    let args = ["apply", "-f", "-", "--format", "toml", "--update-secrets"];
    let output = ctl_with(&node.base, Some(&node.token), &args, &exported);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 unchanged"));

    // A reference to a reaction that exists nowhere is refused before anything is written.
    let bad = write(
        &dir,
        "bad.toml",
        "[[monitors]]\nname = \"x\"\nreactions = [\"nope\"]\n[monitors.check]\ntype = \"heartbeat\"\nperiod_secs = 60\n",
    );
    let (code, stderr) = ctl_fails(&node.base, Some(&node.token), &["apply", "-f", &bad]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("names reaction \"nope\", which is neither in the file nor on the node"),
        "{stderr}"
    );
    assert!(!by_name(&node, "monitors").await.contains_key("x"));
}
