//! Tokens, roles, the audit trail, webhook key rotation, body limits and rate limits against
//! a real node.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Auth, Node, assert_error, id_of, send_big_body};

/// Creates a token as the admin; returns (id, secret).
async fn token(node: &Node, name: &str, role: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": name, "role": role});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let (status, created) = node.post("/tokens", body).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    assert!(secret.starts_with("crt_") && secret.len() >= 68, "{secret}");
    (id_of(&created), secret)
}

/// Sends a request with `Bearer secret`.
async fn call_as(
    node: &Node,
    secret: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let header = format!("Bearer {secret}");
    let body = body.map(|b| b.to_string().into_bytes());
    node.call(method, path, body, Auth::Header(&header)).await
}

fn tcp_monitor(name: &str) -> Value {
    json!({"name": name, "check": {"type": "tcp-check", "host": "127.0.0.1", "port": 9}, "interval_secs": 3600})
}

fn reaction(name: &str) -> Value {
    json!({"name": name, "action": {"type": "http-webhook", "url": "http://127.0.0.1:9/"}, "trigger": 1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_allowed_and_denied_per_route_class() {
    let node = Node::start().await;
    let (_, editor) = token(&node, "editor-1", "editor", json!({})).await;
    let (_, viewer) = token(&node, "viewer-1", "viewer", json!({"expires_at": null})).await;
    let monitor = id_of(&node.create_monitor(tcp_monitor("roles")).await);
    let reaction_id = id_of(&node.create_reaction(reaction("roles")).await);
    let m = format!("/monitors/{monitor}");
    let r = format!("/reactions/{reaction_id}");
    // (method, path, body, least role): route classes of API.md.
    let table: Vec<(&str, String, Option<Value>, &str)> = vec![
        ("GET", "/monitors".into(), None, "viewer"),
        ("GET", m.clone(), None, "viewer"),
        ("GET", format!("{m}/events"), None, "viewer"),
        ("GET", "/reactions".into(), None, "viewer"),
        ("GET", r.clone(), None, "viewer"),
        ("GET", "/check-types".into(), None, "viewer"),
        ("GET", "/reaction-types".into(), None, "viewer"),
        ("GET", "/cluster".into(), None, "viewer"),
        ("POST", "/monitors".into(), Some(tcp_monitor("new")), "editor"),
        ("PUT", m.clone(), Some(tcp_monitor("renamed")), "editor"),
        ("POST", format!("{m}/run"), None, "editor"),
        ("POST", format!("{m}/fail"), None, "editor"),
        ("POST", format!("{m}/heal"), None, "editor"),
        ("POST", "/reactions".into(), Some(reaction("new")), "editor"),
        ("PUT", r.clone(), Some(reaction("renamed")), "editor"),
        ("GET", "/tokens".into(), None, "admin"),
        ("POST", "/tokens".into(), Some(json!({"name": "x", "role": "viewer"})), "admin"),
        ("DELETE", "/tokens/nope".into(), None, "admin"),
        ("GET", "/audit".into(), None, "admin"),
        ("POST", "/cluster/nodes/n1/drain".into(), None, "admin"),
    ];
    let rank = |role: &str| ["viewer", "editor", "admin"].iter().position(|r| *r == role).unwrap();
    for (method, path, body, least) in &table {
        for (role, secret) in [("viewer", &viewer), ("editor", &editor)] {
            let answer = call_as(&node, secret, method, path, body.clone()).await;
            if rank(role) >= rank(least) {
                assert!(![401, 403].contains(&answer.0), "{role} {method} {path}: {answer:?}");
            } else {
                assert_error(&answer, 403, "forbidden", None);
                let message = answer.1["error"]["message"].as_str().unwrap();
                let expected = format!("needs the {least} role; this token is a {role}");
                assert!(message.ends_with(&expected), "{role} {method} {path}: {message}");
            }
        }
        let none = node
            .call(method, path, body.as_ref().map(|b| b.to_string().into_bytes()), Auth::Missing)
            .await;
        assert_error(&none, 401, "unauthorized", None);
        let bad = call_as(&node, "crt_0000", method, path, body.clone()).await;
        assert_error(&bad, 401, "unauthorized", None);
    }
    // Deletes last: an editor may delete monitors and reactions, a viewer may not.
    assert_error(&call_as(&node, &viewer, "DELETE", &m, None).await, 403, "forbidden", None);
    assert_eq!(call_as(&node, &editor, "DELETE", &m, None).await.0, 204);
    assert_eq!(call_as(&node, &editor, "DELETE", &r, None).await.0, 204);
    // The secrets were shown once: never in a list, the audit trail or the logs.
    let (_, list) = node.get("/tokens").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    let (_, audit) = node.get("/audit?limit=1000").await;
    for text in [list.to_string(), audit.to_string(), node.logs()] {
        assert!(!text.contains(&editor) && !text.contains(&viewer), "a secret leaked: {text}");
    }
    assert!(list["items"].as_array().unwrap().iter().all(|t| t.get("token").is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_get_401() {
    let node = Node::start().await;
    let (_, short) = token(&node, "short", "viewer", json!({"expires_in_secs": 1})).await;
    assert_eq!(call_as(&node, &short, "GET", "/monitors", None).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let expired = call_as(&node, &short, "GET", "/monitors", None).await;
    assert_error(&expired, 401, "unauthorized", None);
    assert!(expired.1["error"]["message"].as_str().unwrap().contains("expired"), "{expired:?}");

    let (id, revoked) = token(&node, "to-revoke", "editor", json!({})).await;
    assert_eq!(call_as(&node, &revoked, "GET", "/monitors", None).await.0, 200);
    assert_eq!(node.delete(&format!("/tokens/{id}")).await.0, 204);
    assert_error(
        &call_as(&node, &revoked, "GET", "/monitors", None).await,
        401,
        "unauthorized",
        None,
    );
    assert_error(&node.delete(&format!("/tokens/{id}")).await, 404, "not_found", None);
    // Bad token requests name the field.
    let long = "n".repeat(101);
    let answer = node.post("/tokens", json!({"name": long, "role": "viewer"})).await;
    assert_error(&answer, 400, "invalid_field", Some("name"));
    let answer = node.post("/tokens", json!({"name": "x", "role": "root"})).await;
    assert_error(&answer, 400, "invalid_field", Some("role"));
    let answer = node
        .post(
            "/tokens",
            json!({"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(&answer, 400, "invalid_field", Some("expires_at"));
    let answer = node.post("/tokens", json!({"name": "short", "role": "viewer"})).await;
    assert_error(&answer, 409, "conflict", None);
    let answer = node
        .post("/monitors", json!({"name": "m".repeat(201), "check": {"type": "webhook"}}))
        .await;
    assert_error(&answer, 400, "invalid_field", Some("name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_records_who_did_what_and_only_admins_read_it() {
    let node = Node::start().await;
    let (token_id, editor) = token(&node, "ops-editor", "editor", json!({})).await;
    let (_, viewer) = token(&node, "ops-viewer", "viewer", json!({})).await;
    let (status, monitor) =
        call_as(&node, &editor, "POST", "/monitors", Some(tcp_monitor("shop"))).await;
    assert_eq!(status, 201, "{monitor}");
    let m = id_of(&monitor);
    let path = format!("/monitors/{m}");
    assert_eq!(call_as(&node, &editor, "PUT", &path, Some(tcp_monitor("shop2"))).await.0, 200);
    assert_eq!(call_as(&node, &editor, "POST", &format!("{path}/fail"), None).await.0, 200);
    assert_eq!(call_as(&node, &editor, "POST", &format!("{path}/heal"), None).await.0, 200);
    assert_eq!(call_as(&node, &editor, "POST", &format!("{path}/run"), None).await.0, 200);
    let (status, created) =
        call_as(&node, &editor, "POST", "/reactions", Some(reaction("page"))).await;
    assert_eq!(status, 201, "{created}");
    let r = id_of(&created);
    assert_eq!(call_as(&node, &editor, "DELETE", &format!("/reactions/{r}"), None).await.0, 204);
    assert_eq!(call_as(&node, &editor, "DELETE", &path, None).await.0, 204);
    assert_eq!(call_as(&node, &editor, "DELETE", &path, None).await.0, 404);
    assert_eq!(node.delete(&format!("/tokens/{token_id}")).await.0, 204);

    for secret in [&viewer] {
        assert_error(&call_as(&node, secret, "GET", "/audit", None).await, 403, "forbidden", None);
    }
    let (status, page) = node.get("/audit?limit=3").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = node.get(&format!("/audit?limit=100&cursor={cursor}")).await;
    let all: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .cloned()
        .collect();
    // The viewer's refused read of the audit trail is audited too, as a denied call.
    let denied: Vec<&Value> = all.iter().filter(|e| e["action"] == "denied").collect();
    assert_eq!(denied.len(), 1, "{all:?}");
    assert_eq!(denied[0]["actor"], "ops-viewer");
    assert_eq!(denied[0]["resource_name"], "GET /api/v1/audit");
    assert_eq!(denied[0]["outcome"], "forbidden");
    let summary: Vec<(String, String, String, String, String)> = all
        .iter()
        .filter(|e| e["action"] != "denied")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            (s("actor"), s("action"), s("resource_kind"), s("resource_name"), s("outcome"))
        })
        .collect();
    let e = |actor: &str, action: &str, kind: &str, name: &str, outcome: &str| {
        (actor.to_owned(), action.to_owned(), kind.to_owned(), name.to_owned(), outcome.to_owned())
    };
    let expected = vec![
        e("admin", "revoke", "token", "ops-editor", "ok"),
        e("ops-editor", "delete", "monitor", "", "not_found"),
        e("ops-editor", "delete", "monitor", "shop2", "ok"),
        e("ops-editor", "delete", "reaction", "page", "ok"),
        e("ops-editor", "create", "reaction", "page", "ok"),
        e("ops-editor", "run", "monitor", "shop2", "ok"),
        e("ops-editor", "heal", "monitor", "shop2", "ok"),
        e("ops-editor", "fail", "monitor", "shop2", "ok"),
        e("ops-editor", "update", "monitor", "shop2", "ok"),
        e("ops-editor", "create", "monitor", "shop", "ok"),
        e("admin", "create", "token", "ops-viewer", "ok"),
        e("admin", "create", "token", "ops-editor", "ok"),
    ];
    assert_eq!(summary, expected, "newest first: {all:?}");
    assert!(all.iter().all(|e| e["at"].is_string()));
    let changes: Vec<&Value> = all.iter().filter(|e| e["action"] != "denied").collect();
    assert_eq!(changes[1]["role"], "editor");
    assert_eq!(changes[1]["resource_id"], json!(m));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_an_intake_key_retires_the_old_one_at_once() {
    let node = Node::start().await;
    let monitor = node.create_monitor(json!({"name": "hook", "check": {"type": "webhook"}})).await;
    let id = id_of(&monitor);
    let old = monitor["webhook_url"].as_str().unwrap().to_owned();
    let (_, old_key) = old.rsplit_once('/').unwrap();
    assert!(old_key.len() >= 32, "at least 128 bits: {old_key}");
    let post = |url: String| {
        let http = node.http().clone();
        async move {
            http.post(url)
                .json(&json!({"action": "failed"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(old.clone()).await, 200);
    let (_, viewer) = token(&node, "v", "viewer", json!({})).await;
    let path = format!("/monitors/{id}/rotate-key");
    assert_error(&call_as(&node, &viewer, "POST", &path, None).await, 403, "forbidden", None);
    let (status, rotated) = node.post_empty(&path).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["webhook_url"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(post(old).await, 404, "the old key stops working at once");
    assert_eq!(post(new).await, 200);
    assert_error(&node.post_empty("/monitors/nope/rotate-key").await, 404, "not_found", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_get_413_per_route() {
    let node = Node::start().await;
    let hook = node.create_monitor(json!({"name": "hook", "check": {"type": "webhook"}})).await;
    let url = hook["webhook_url"].as_str().unwrap().to_owned();
    let m = id_of(&hook);
    let (_, key) = url.rsplit_once('/').unwrap();
    // (method, path, body size just past the route's limit)
    let cases: Vec<(&str, String, usize)> = vec![
        ("POST", "/monitors".into(), 1024 * 1024 + 1),
        ("PUT", format!("/monitors/{m}"), 1024 * 1024 + 1),
        ("POST", "/reactions".into(), 1024 * 1024 + 1),
        ("POST", "/tokens".into(), 16 * 1024 + 1),
        ("POST", format!("/monitors/{m}/fail"), 8 * 1024 + 1),
        ("POST", format!("/webhooks/{m}/{key}"), 256 * 1024 + 1),
    ];
    for (method, path, size) in cases {
        for chunked in [false, true] {
            let answer = send_big_body(&node, method, &path, size, chunked).await;
            assert_error(&answer, 413, "payload_too_large", None);
        }
    }
    let response = node.http().post(&url).json(&json!({"action": "healthy"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "a normal body still passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_api_budget_gets_429_with_retry_after() {
    let env = [
        ("CLOUDROUTES_LIMITS_API_RATE_PER_SEC", "1".to_owned()),
        ("CLOUDROUTES_LIMITS_API_BURST", "30".to_owned()),
    ];
    let node = Node::start_with_env(&env).await;
    let url = node.api_url("/monitors");
    let mut limited = None;
    for _ in 0..40 {
        let response = node.http().get(&url).bearer_auth(&node.token).send().await.unwrap();
        if response.status().as_u16() == 429 {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status().as_u16(), 200);
    }
    let response = limited.expect("a 429 within 40 requests of a burst of 30");
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Health is not rate limited.
    let health = node.http().get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intake_flood_gets_429_and_does_not_starve_the_api() {
    let env = [
        ("CLOUDROUTES_LIMITS_INTAKE_RATE_PER_SEC", "1".to_owned()),
        ("CLOUDROUTES_LIMITS_INTAKE_BURST", "5".to_owned()),
    ];
    let node = Node::start_with_env(&env).await;
    let hook = node.create_monitor(json!({"name": "hook", "check": {"type": "webhook"}})).await;
    let url = hook["webhook_url"].as_str().unwrap().to_owned();
    let mut codes = Vec::new();
    for _ in 0..50 {
        let response =
            node.http().post(&url).json(&json!({"action": "failed"})).send().await.unwrap();
        codes.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    assert!(codes.iter().filter(|c| **c == 200).count() <= 8, "{codes:?}");
    assert!(codes.iter().filter(|c| **c == 429).count() >= 40, "{codes:?}");
    // Meanwhile the API answers.
    for _ in 0..20 {
        assert_eq!(node.get("/monitors").await.0, 200);
    }
}

/// Runs `cloudroutes ctl ARGS` against `node` with `token`.
fn ctl(node: &Node, token: &str, args: &[&str]) -> Output {
    Command::new(crate::common::binary())
        .arg("ctl")
        .args(args)
        .env("CLOUDROUTES_URL", &node.base)
        .env("CLOUDROUTES_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("run cloudroutes ctl")
}

fn stdout_ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_creates_lists_and_revokes_tokens_and_shows_the_audit_trail() {
    let node = Node::start().await;
    let admin = node.token.clone();
    let args = [
        "tokens",
        "create",
        "ci-bot",
        "--role",
        "viewer",
        "--expires-in",
        "30d",
        "--output",
        "json",
    ];
    let created: Value = serde_json::from_str(&stdout_ok(&ctl(&node, &admin, &args))).unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "viewer");
    assert!(created["expires_at"].is_string(), "{created}");

    let table = stdout_ok(&ctl(&node, &admin, &["tokens", "list"]));
    assert!(table.contains("ci-bot") && table.contains("viewer") && table.contains(&id), "{table}");
    assert!(!table.contains(&secret), "{table}");
    // The viewer token reads but may not write or manage tokens.
    stdout_ok(&ctl(&node, &secret, &["monitors", "list"]));
    let denied = ctl(&node, &secret, &["tokens", "list"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("admin role"), "{denied:?}");
    let bad =
        ctl(&node, &admin, &["tokens", "create", "x", "--role", "viewer", "--expires-in", "3y"]);
    assert!(!bad.status.success());

    let revoked = stdout_ok(&ctl(&node, &admin, &["tokens", "revoke", &id]));
    assert!(revoked.contains(&id), "{revoked}");
    let after = ctl(&node, &secret, &["monitors", "list"]);
    assert_eq!(after.status.code(), Some(1), "a revoked token is refused");

    let audit = stdout_ok(&ctl(&node, &admin, &["audit"]));
    // The refused calls are audited: the viewer's 403 by token name, the revoked token's 401
    // by client address.
    assert!(
        audit.lines().any(|l| l.contains("ci-bot (viewer)")
            && l.contains("denied")
            && l.contains("forbidden")),
        "{audit}"
    );
    assert!(
        audit.lines().any(|l| l.contains("127.0.0.1 (-)") && l.contains("unauthorized")),
        "{audit}"
    );
    let lines: Vec<&str> = audit.lines().filter(|l| !l.contains("denied")).collect();
    assert!(lines.len() >= 3, "{audit}");
    assert!(lines[1].contains("revoke") && lines[1].contains("ci-bot"), "{audit}");
    assert!(lines[2].contains("create") && lines[2].contains("admin (admin)"), "{audit}");
    assert!(!audit.contains(&secret));
}
