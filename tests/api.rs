//! API behaviour: CRUD, paging, filters, reconfiguration, delete, secrets, run-now, webhook
//! intake, type catalogs, health and metrics, the generated admin token.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    Auth, Node, Receiver, Target, assert_error, free_port, http_monitor, id_of, is, secs, streak,
    wait_until,
};

fn ids(items: &Value) -> BTreeSet<String> {
    items.as_array().unwrap().iter().map(id_of).collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

async fn listed(node: &Node, query: &str) -> BTreeSet<String> {
    let (status, page) = node.get(&format!("/monitors?{query}")).await;
    assert_eq!(status, 200, "{query}: {page}");
    assert!(page["next_cursor"].is_null(), "{page}");
    ids(&page["items"])
}

/// Posts a generic webhook body to a webhook URL (no token) and returns status and JSON.
async fn intake(node: &Node, url: &str, action: &str) -> (u16, Value) {
    let response = node.http().post(url).json(&json!({"action": action})).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_create_get_list_page_and_filter() {
    let node = Node::start().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let colour = if i < 2 { "blue" } else { "green" };
        let monitor = node
            .create_monitor(json!({
                "name": format!("hook {i}"),
                "check": {"type": "webhook"},
                "tags": [colour, "e2e"],
            }))
            .await;
        assert_eq!(monitor["name"], format!("hook {i}"));
        assert_eq!(monitor["tags"], json!([colour, "e2e"]));
        assert_eq!(monitor["enabled"], true);
        assert_eq!(monitor["reactions"], json!([]));
        assert!(monitor["interval_secs"].is_null(), "{monitor}");
        assert_eq!(monitor["state"]["status"], "unknown");
        assert_eq!(monitor["state"]["streak"], 0);
        assert_eq!(monitor["state"]["episode"], 0);
        assert_eq!(monitor["state"]["manual_hold"], false);
        assert!(monitor["state"]["last_check_at"].is_null());
        assert_eq!(node.monitor(&id_of(&monitor)).await, monitor, "GET differs from create");
        created.push(monitor);
    }
    let all: BTreeSet<String> = created.iter().map(id_of).collect();
    assert_eq!(all.len(), 5, "ids must be unique");

    // Paging: 5 monitors, 2 a page, 3 pages.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let path = match &cursor {
            None => "/monitors?limit=2".to_owned(),
            Some(c) => format!("/monitors?limit=2&cursor={c}"),
        };
        let (status, page) = node.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(items.iter().map(id_of));
        assert!(items.iter().all(|m| m["state"].is_object()), "items carry state: {page}");
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen.len(), 5, "a monitor came twice: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);

    // Give them statuses through their webhooks: 0 healthy, 1 failed, 2 failed, 3 healthy.
    for (i, action) in [(0, "healthy"), (1, "failed"), (2, "failed"), (3, "healthy")] {
        let (status, answer) =
            intake(&node, created[i]["webhook_url"].as_str().unwrap(), action).await;
        assert_eq!(status, 200, "{answer}");
    }
    let id = |i: usize| id_of(&created[i]);
    let (m0, m1, m2, m3, m4) = (id(0), id(1), id(2), id(3), id(4));
    assert_eq!(listed(&node, "status=failed").await, set(&[&m1, &m2]));
    assert_eq!(listed(&node, "status=healthy").await, set(&[&m0, &m3]));
    assert_eq!(listed(&node, "status=unknown").await, set(&[&m4]));
    assert_eq!(listed(&node, "tag=blue").await, set(&[&m0, &m1]));
    assert_eq!(listed(&node, "tag=green&status=failed").await, set(&[&m2]));
    assert_eq!(listed(&node, "tag=e2e").await, all);
    assert_eq!(listed(&node, "tag=nosuchtag").await, BTreeSet::new());
    let (_, page) = node.get("/monitors?status=failed").await;
    assert!(page["items"].as_array().unwrap().iter().all(|m| m["state"]["status"] == "failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_reconfigures_the_running_monitor_at_once() {
    let node = Node::start().await;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_port = open.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = open.accept().await {
            drop(socket);
        }
    });
    let closed_port = free_port();
    let monitor = node
        .create_monitor(json!({
            "name": "database port",
            "check": {"type": "tcp-check", "host": "127.0.0.1", "port": open_port, "timeout_ms": 2000},
            "interval_secs": 1,
            "tags": ["db"],
        }))
        .await;
    let id = id_of(&monitor);
    let before = node.wait_state(&id, secs(15), "healthy streak 2", |s| is(s, "healthy", 2)).await;

    let mut changed = monitor.clone();
    changed["name"] = json!("database port (moved)");
    changed["check"]["port"] = json!(closed_port);
    changed["tags"] = json!(["db", "moved"]);
    let (status, replaced) = node.put(&format!("/monitors/{id}"), changed.clone()).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(replaced["name"], "database port (moved)");
    assert_eq!(replaced["check"]["port"], closed_port);
    assert_eq!(replaced["tags"], json!(["db", "moved"]));
    // The state is kept, not reset.
    assert_eq!(replaced["state"]["status"], "healthy", "{replaced}");
    assert!(streak(&replaced["state"]) >= streak(&before), "{replaced}");

    // The running actor uses the new port within a few seconds.
    let failed = node
        .wait_state(&id, secs(6), "failed on the closed port", |s| s["status"] == "failed")
        .await;
    assert_eq!(failed["episode"], 1, "{failed}");
    let got = node.monitor(&id).await;
    assert_eq!(got["check"]["port"], closed_port);
    assert_eq!(got["name"], "database port (moved)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_stops_checks_and_removes_history() {
    let node = Node::start().await;
    let target = Target::start(200).await;
    let monitor = http_monitor(&node, "to delete", &target, &[]).await;
    let keep = node.create_monitor(json!({"name": "kept", "check": {"type": "webhook"}})).await;
    wait_until(secs(15), "checks and history", || async {
        target.hits() >= 2 && !node.events(&monitor).await.is_empty()
    })
    .await;

    let (status, body) = node.delete(&format!("/monitors/{monitor}")).await;
    assert_eq!(status, 204, "{body}");
    assert!(body.is_null(), "204 with a body: {body}");
    assert_error(&node.get(&format!("/monitors/{monitor}")).await, 404, "not_found", None);
    assert_error(&node.get(&format!("/monitors/{monitor}/events")).await, 404, "not_found", None);
    assert_error(
        &node.post_empty(&format!("/monitors/{monitor}/run")).await,
        404,
        "not_found",
        None,
    );
    assert_error(&node.delete(&format!("/monitors/{monitor}")).await, 404, "not_found", None);
    assert_eq!(listed(&node, "").await, set(&[&id_of(&keep)]));

    // A check already under way may still land; after that, no more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hits = target.hits();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(target.hits(), hits, "the deleted monitor still checks its target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_in_use_cannot_be_deleted_until_detached() {
    let node = Node::start().await;
    let receiver = Receiver::start().await;
    let reaction = crate::common::webhook_reaction(&node, &receiver, "/r", 1, 0, "failed").await;
    let monitor = node
        .create_monitor(
            json!({"name": "uses it", "check": {"type": "webhook"}, "reactions": [reaction]}),
        )
        .await;
    let id = id_of(&monitor);
    assert_eq!(monitor["reactions"], json!([reaction]));

    assert_error(&node.delete(&format!("/reactions/{reaction}")).await, 409, "conflict", None);
    let (status, still) = node.get(&format!("/reactions/{reaction}")).await;
    assert_eq!(status, 200, "{still}");

    let mut detached = monitor.clone();
    detached["reactions"] = json!([]);
    let (status, replaced) = node.put(&format!("/monitors/{id}"), detached).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["reactions"], json!([]));
    let (status, body) = node.delete(&format!("/reactions/{reaction}")).await;
    assert_eq!(status, 204, "{body}");
    assert_error(&node.get(&format!("/reactions/{reaction}")).await, 404, "not_found", None);
    let (_, page) = node.get("/reactions").await;
    assert_eq!(page["items"], json!([]), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_secrets_are_write_only_and_kept_on_put() {
    let node = Node::start().await;
    let receiver = Receiver::start().await;
    let (status, created) = node
        .post(
            "/reactions",
            json!({
                "name": "downstream",
                "action": {"type": "http-webhook", "url": receiver.url("/s"),
                           "headers": {"Authorization": "Bearer downstream-secret", "X-Api-Key": "k-123"}},
                "trigger": 1,
                "call_on": "failed",
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let reaction = id_of(&created);
    let redacted = json!({"Authorization": "***", "X-Api-Key": "***"});
    assert_eq!(created["action"]["headers"], redacted, "{created}");
    assert_eq!(created["action"]["url"], receiver.url("/s"));
    let (_, got) = node.get(&format!("/reactions/{reaction}")).await;
    assert_eq!(got["action"]["headers"], redacted, "{got}");
    let (_, page) = node.get("/reactions").await;
    assert_eq!(page["items"][0]["action"]["headers"], redacted, "{page}");
    for text in [created.to_string(), got.to_string(), page.to_string()] {
        assert!(!text.contains("downstream-secret") && !text.contains("k-123"), "{text}");
    }

    let monitor = id_of(
        &node
            .create_monitor(
                json!({"name": "switch", "check": {"type": "webhook"}, "reactions": [reaction]}),
            )
            .await,
    );
    let fail = format!("/monitors/{monitor}/fail");
    let heal = format!("/monitors/{monitor}/heal");
    assert_eq!(node.post_empty(&fail).await.0, 200);
    let got1 = receiver.wait_count_to("/s", 1, secs(10)).await;
    assert_eq!(got1[0].header("authorization"), Some("Bearer downstream-secret"));
    assert_eq!(got1[0].header("x-api-key"), Some("k-123"));
    assert_eq!(got1[0].method, "POST", "the method defaults to POST");

    // Writing "***" back keeps the stored value.
    let mut renamed = got.clone();
    renamed["name"] = json!("downstream (renamed)");
    let (status, replaced) = node.put(&format!("/reactions/{reaction}"), renamed).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["name"], "downstream (renamed)");
    assert_eq!(replaced["action"]["headers"], redacted);
    assert_eq!(node.post_empty(&heal).await.0, 200);
    assert_eq!(node.post_empty(&fail).await.0, 200);
    let got2 = receiver.wait_count_to("/s", 2, secs(10)).await;
    assert_eq!(got2[1].header("authorization"), Some("Bearer downstream-secret"));
    assert_eq!(got2[1].header("x-api-key"), Some("k-123"));
    assert_eq!(got2[1].body["reaction"]["name"], "downstream (renamed)");

    // A new value replaces only that header.
    let mut rekeyed = got.clone();
    rekeyed["action"]["headers"]["X-Api-Key"] = json!("k-456");
    let (status, replaced) = node.put(&format!("/reactions/{reaction}"), rekeyed).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(node.post_empty(&heal).await.0, 200);
    assert_eq!(node.post_empty(&fail).await.0, 200);
    let got3 = receiver.wait_count_to("/s", 3, secs(10)).await;
    assert_eq!(got3[2].header("authorization"), Some("Bearer downstream-secret"));
    assert_eq!(got3[2].header("x-api-key"), Some("k-456"));
    assert_eq!(got3[2].body["episode"], 3);

    let logs = node.logs();
    assert!(!logs.contains("downstream-secret") && !logs.contains("k-456"), "secret in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_returns_the_outcome() {
    let node = Node::start().await;
    let target = Target::start(200).await;
    let status_monitor = id_of(
        &node
            .create_monitor(json!({
                "name": "status code",
                "check": {"type": "http-get-statuscode", "url": target.url("/"), "codes": [200, 204]},
                "interval_secs": 3600,
            }))
            .await,
    );
    let run = format!("/monitors/{status_monitor}/run");
    let (status, answer) = node.post_empty(&run).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "healthy", "{answer}");
    assert!(answer["reason"].as_str().is_some_and(|r| !r.is_empty()), "{answer}");
    assert_eq!(answer["monitor"]["id"], status_monitor.as_str());
    assert_eq!(answer["monitor"]["state"]["status"], "healthy", "{answer}");
    assert!(answer["monitor"]["state"]["last_check_at"].is_string(), "{answer}");

    target.set_status(503);
    let (status, answer) = node.post_empty(&run).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "failed", "{answer}");
    assert!(answer["reason"].as_str().is_some_and(|r| r.contains("503")), "{answer}");
    assert_eq!(answer["monitor"]["state"]["status"], "failed", "{answer}");
    assert_eq!(answer["monitor"]["state"]["episode"], 1, "{answer}");
    target.set_status(204);
    let (_, answer) = node.post_empty(&run).await;
    assert_eq!(answer["outcome"], "healthy", "204 is listed in codes: {answer}");

    // http-keyword: present, absent, and the status code rule.
    target.set_status(200);
    target.set_body("<html>all systems go</html>");
    let keyword = json!({
        "name": "keyword",
        "check": {"type": "http-keyword", "url": target.url("/"), "keyword": "systems go"},
        "interval_secs": 3600,
    });
    let keyword_monitor = id_of(&node.create_monitor(keyword.clone()).await);
    let run = format!("/monitors/{keyword_monitor}/run");
    assert_eq!(node.post_empty(&run).await.1["outcome"], "healthy");
    let mut missing = keyword.clone();
    missing["check"]["keyword"] = json!("MISSING");
    assert_eq!(node.put(&format!("/monitors/{keyword_monitor}"), missing.clone()).await.0, 200);
    assert_eq!(node.post_empty(&run).await.1["outcome"], "failed");
    missing["check"]["present"] = json!(false);
    assert_eq!(node.put(&format!("/monitors/{keyword_monitor}"), missing).await.0, 200);
    assert_eq!(node.post_empty(&run).await.1["outcome"], "healthy");
    let mut regex = keyword.clone();
    regex["check"]["keyword"] = json!("systems\\s+go");
    regex["check"]["regex"] = json!(true);
    regex["check"]["codes"] = json!([200]);
    assert_eq!(node.put(&format!("/monitors/{keyword_monitor}"), regex).await.0, 200);
    assert_eq!(node.post_empty(&run).await.1["outcome"], "healthy");
    target.set_status(500);
    assert_eq!(node.post_empty(&run).await.1["outcome"], "failed", "codes [200] and HTTP 500");

    // A webhook monitor has no check to run.
    let hook =
        id_of(&node.create_monitor(json!({"name": "hook", "check": {"type": "webhook"}})).await);
    assert_error(&node.post_empty(&format!("/monitors/{hook}/run")).await, 409, "conflict", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_monitor_takes_results_from_its_url() {
    let node = Node::start().await;
    let monitor =
        node.create_monitor(json!({"name": "backup job", "check": {"type": "webhook"}})).await;
    let id = id_of(&monitor);
    let url = monitor["webhook_url"].as_str().unwrap_or_else(|| panic!("{monitor}")).to_owned();
    let prefix = format!("{}/api/v1/webhooks/{id}/", node.base);
    assert!(url.starts_with(&prefix), "{url} does not start with {prefix}");
    let key = &url[prefix.len()..];
    assert!(key.len() >= 16 && !key.contains('/'), "weak or odd key in {url}");
    assert_eq!(node.monitor(&id).await["webhook_url"], url.as_str(), "GET shows the same URL");

    let answers = [
        ("status", "unknown", 0),
        ("healthy", "healthy", 1),
        ("healthy", "healthy", 2),
        ("failed", "failed", 1),
        ("status", "failed", 1),
        ("failed", "failed", 2),
        ("healthy", "healthy", 1),
    ];
    for (action, status, streak) in answers {
        let (code, answer) = intake(&node, &url, action).await;
        assert_eq!(code, 200, "{action}: {answer}");
        assert_eq!(answer, json!({"result": "success", "status": status, "streak": streak}));
    }
    let state = node.state(&id).await;
    assert!(is(&state, "healthy", 1) && state["episode"] == 1, "{state}");

    // Wrong key, unknown id: 404, and nothing changes.
    let wrong_key = format!("{prefix}{}", "0".repeat(key.len()));
    assert_error(&intake(&node, &wrong_key, "failed").await, 404, "not_found", None);
    let unknown_id = url.replace(&id, "01nosuchmonitor0000000000");
    assert_error(&intake(&node, &unknown_id, "failed").await, 404, "not_found", None);
    assert_error(&intake(&node, &url, "explode").await, 400, "invalid_field", Some("action"));
    assert_eq!(node.state(&id).await, state);

    let events = node.events(&id).await;
    let changes: Vec<&Value> = events.iter().filter(|e| e["kind"] == "status_change").collect();
    assert_eq!(changes.len(), 3, "{}", json!(events));
    assert!(changes.iter().all(|e| e["method"] == "webhook"), "{}", json!(events));
    assert_eq!(
        changes.iter().map(|e| e["status"].as_str().unwrap()).collect::<Vec<_>>(),
        ["healthy", "failed", "healthy"],
        "newest first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_catalogs_list_each_type_with_a_schema() {
    let node = Node::start().await;
    let (status, checks) = node.get("/check-types").await;
    assert_eq!(status, 200, "{checks}");
    let checks = checks["items"].as_array().unwrap_or_else(|| panic!("{checks}"));
    let find = |name: &str| {
        checks
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no check type {name} in {}", json!(checks)))
            .clone()
    };
    let names: Vec<&str> = checks.iter().filter_map(|t| t["name"].as_str()).collect();
    let catalog = [
        "alertmanager-webhook",
        "datadog-webhook",
        "dns",
        "execute-shell-command",
        "grafana-webhook",
        "heartbeat",
        "http-get-statuscode",
        "http-keyword",
        "http-post",
        "logentries-webhook",
        "mysql",
        "papertrail-webhook",
        "ping",
        "postgres",
        "redis",
        "slack-webhook",
        "ssl-certificate-expiry",
        "ssl-common-name",
        "tcp-check",
        "udp",
        "webhook",
    ];
    assert_eq!(names, catalog, "every check type, sorted by name");
    for name in catalog {
        assert!(find(name)["schema"]["properties"].is_object(), "{name} has no schema");
    }
    let slack = find("slack-webhook");
    assert_eq!(slack["secret_fields"], json!(["token", "signing_secret"]), "{slack}");
    assert_eq!(find("heartbeat")["passive"], true);
    let required = |t: &Value| -> BTreeSet<String> {
        t["schema"]["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let tcp = find("tcp-check");
    assert_eq!(required(&tcp), ["host", "port"].map(String::from).into_iter().collect());
    assert!(tcp["schema"]["properties"]["timeout_ms"].is_object(), "{tcp}");
    let keyword = find("http-keyword");
    assert!(required(&keyword).is_superset(&["url", "keyword"].map(String::from).into()));
    for field in ["regex", "present", "codes"] {
        assert!(keyword["schema"]["properties"][field].is_object(), "{field}: {keyword}");
    }
    assert!(find("http-get-statuscode")["schema"]["properties"]["codes"].is_object());

    let (status, reactions) = node.get("/reaction-types").await;
    assert_eq!(status, 200, "{reactions}");
    let webhook = reactions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "http-webhook")
        .unwrap_or_else(|| panic!("no http-webhook in {reactions}"))
        .clone();
    assert_eq!(required(&webhook), ["url".to_owned()].into_iter().collect());
    for field in ["url", "method", "headers", "timeout_ms"] {
        assert!(webhook["schema"]["properties"][field].is_object(), "{field}: {webhook}");
    }

    for path in ["/check-types", "/reaction-types"] {
        assert_error(&node.call("GET", path, None, Auth::Missing).await, 401, "unauthorized", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_need_no_token() {
    let node = Node::start().await;
    let http = node.http();
    let healthz = http.get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status().as_u16(), 200);
    let readyz = http.get(node.url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status().as_u16(), 200);
    assert_eq!(readyz.json::<Value>().await.unwrap()["status"], "ready");

    let target = Target::start(200).await;
    let monitor = http_monitor(&node, "metered", &target, &[]).await;
    node.wait_state(&monitor, secs(15), "a check", |s| is(s, "healthy", 1)).await;
    let response = http.get(node.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    let samples: Vec<&str> =
        text.lines().filter(|l| l.starts_with("cloudroutes_checks_total")).collect();
    assert!(!samples.is_empty(), "no cloudroutes_checks_total in:\n{text}");
    let total: f64 = samples
        .iter()
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum();
    assert!(total >= 1.0, "a check ran but cloudroutes_checks_total is {total}:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_without_a_token_generates_and_keeps_one() {
    let mut node = Node::start_without_token().await;
    let stdout = node.stdout_of_run(1);
    let line = stdout
        .lines()
        .find(|l| l.contains("admin token (shown once"))
        .unwrap_or_else(|| panic!("no generated token on stdout:\n{stdout}"));
    let token = line.rsplit(' ').next().unwrap().trim().to_owned();
    assert!(token.len() >= 16, "token too short: {line}");
    let path = node.data_dir().join("admin.token");
    let stored = std::fs::read_to_string(&path).expect("admin.token");
    assert_eq!(stored.trim(), token);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin.token mode {mode:o}");

    assert_error(&node.get("/monitors").await, 401, "unauthorized", None);
    node.token = token.clone();
    assert_eq!(node.get("/monitors").await.0, 200);

    node.restart().await;
    let again = node.stdout_of_run(2);
    assert!(
        !again.contains("shown once") && !again.contains(&token),
        "token shown again:\n{again}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token, "token changed");
    assert_eq!(node.get("/monitors").await.0, 200, "the stored token no longer works");
    let wrong = format!("Bearer {}x", token);
    assert_error(
        &node.call("GET", "/monitors", None, Auth::Header(&wrong)).await,
        401,
        "unauthorized",
        None,
    );
    node.stop().await;
}
