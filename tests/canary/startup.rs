//! A node refuses to start with a secrets key it must not use: a key file others can read, a
//! key that does not open what the store holds, or no key on a shared (Redis) store.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::common::{Node, RedisServer, binary, free_port};

const OTHER_KEY: &str = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

/// Runs `cloudroutes node` on `data_dir` with `env`; asserts it exits non-zero within 30 s and
/// returns its stderr.
async fn refused(data_dir: &Path, env: &[(&str, &str)]) -> String {
    let mut command = tokio::process::Command::new(binary());
    command
        .arg("node")
        .arg("--http")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().to_ascii_uppercase().starts_with("CLOUDROUTES_") {
            command.env_remove(&key);
        }
    }
    command.env("CLOUDROUTES_ADMIN_TOKEN", "startup-refusal-token-0123456789");
    command.envs(env.iter().copied());
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("the node should refuse to start, not run")
        .expect("run the node");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "the node started: {stderr}");
    stderr
}

#[tokio::test]
async fn a_key_file_others_can_read_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("secrets.key");
    std::fs::write(&key_file, OTHER_KEY).expect("write key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let path = key_file.display().to_string();
    let data = dir.path().join("data");
    let stderr = refused(&data, &[("CLOUDROUTES_SECRETS_KEY_FILE", &path)]).await;
    assert!(stderr.contains(&path) && stderr.contains("0644"), "{stderr}");
    assert!(stderr.contains(&format!("chmod 600 {path}")), "{stderr}");
}

#[tokio::test]
async fn a_wrong_key_is_refused_naming_its_source() {
    let mut node = Node::start().await;
    let key_file = node.data_dir().join("secrets.key");
    let mode = std::fs::metadata(&key_file).expect("a generated key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the generated key is private");
    let check = json!({"type": "mysql", "host": "127.0.0.1", "user": "u", "password": "pw"});
    node.create_monitor(json!({"name": "db", "check": check, "interval_secs": 60})).await;
    node.stop().await;
    let stderr = refused(&node.data_dir(), &[("CLOUDROUTES_SECRETS_KEY", OTHER_KEY)]).await;
    assert!(stderr.contains("does not open the secrets already in the store"), "{stderr}");
    assert!(stderr.contains("secrets.key (CLOUDROUTES_SECRETS_KEY)"), "{stderr}");
    assert!(!stderr.contains("pw\""), "{stderr}");
    // The right key (the generated file) still opens it.
    node.start_again().await;
    let (status, list) = node.get("/monitors").await;
    assert_eq!((status, list["items"][0]["check"]["password"].as_str()), (200, Some("***")));
}

#[tokio::test]
async fn a_redis_store_without_a_key_is_refused() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = redis.url();
    let stderr = refused(dir.path(), &[("CLOUDROUTES_STORE", &url)]).await;
    assert!(stderr.contains("every node needs the same secrets key"), "{stderr}");
}

#[tokio::test]
async fn a_cookie_file_others_can_read_is_refused() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cookie_file = dir.path().join("cluster.cookie");
    std::fs::write(&cookie_file, "a-cluster-cookie-0123456789").expect("write cookie");
    std::fs::set_permissions(&cookie_file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let path = cookie_file.display().to_string();
    let url = redis.url();
    let addr = format!("127.0.0.1:{}", free_port());
    let env = [
        ("CLOUDROUTES_STORE", url.as_str()),
        ("CLOUDROUTES_SECRETS_KEY", OTHER_KEY),
        ("CLOUDROUTES_CLUSTER_ADDR", addr.as_str()),
        ("CLOUDROUTES_CLUSTER_COOKIE_FILE", path.as_str()),
    ];
    let stderr = refused(&dir.path().join("data"), &env).await;
    assert!(stderr.contains("cluster.cookie_file") && stderr.contains(&path), "{stderr}");
    assert!(stderr.contains("0640") && stderr.contains("chmod 600"), "{stderr}");
}
