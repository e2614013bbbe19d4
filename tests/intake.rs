//! Webhook intake end to end, one sender format per test, each in the sender's documented
//! payload: heartbeat pings (GET from a crontab, /start, /fail), Alertmanager's per-alert
//! status, Datadog, Slack's slash command with its token, Papertrail's form, Grafana, and the
//! original product's URL shape.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Node, Receiver, assert_error, id_of, secs, webhook_reaction};

/// Creates a webhook-driven monitor and returns its id and webhook URL.
async fn hook_monitor(node: &Node, check: Value, reactions: &[&str]) -> (String, String) {
    let monitor = node
        .create_monitor(json!({"name": check["type"], "check": check, "reactions": reactions}))
        .await;
    let url = monitor["webhook_url"].as_str().unwrap_or_else(|| panic!("{monitor}")).to_owned();
    (id_of(&monitor), url)
}

async fn post_json(node: &Node, url: &str, body: &Value) -> (u16, Value) {
    let response = node.http().post(url).json(body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn post_form(node: &Node, url: &str, form: &[(&str, String)]) -> (u16, Value) {
    let response = node.http().post(url).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn get(node: &Node, url: &str) -> (u16, Value) {
    let response = node.http().get(url).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn success(status: &str, streak: u64) -> Value {
    json!({"result": "success", "status": status, "streak": streak})
}

fn status_changes(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "status_change")
        .map(|e| e["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_fails_when_its_job_stops_pinging_and_its_reaction_runs() {
    let node = Node::start().await;
    let receiver = Receiver::start().await;
    let reaction = webhook_reaction(&node, &receiver, "/late", 1, 0, "failed").await;
    let check = json!({"type": "heartbeat", "period_secs": 2, "grace_secs": 1});
    let (id, url) = hook_monitor(&node, check, &[&reaction]).await;

    // A crontab's `curl URL`: a GET ping.
    assert_eq!(get(&node, &url).await, (200, success("healthy", 1)));
    let state = node.state(&id).await;
    assert!(state["last_reason"].as_str().unwrap().starts_with("ping received"), "{state}");
    // Pinging in time keeps it healthy.
    for streak in 2..=3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(node.http().post(&url).body("ok").send().await.unwrap().status(), 200);
        assert_eq!(node.state(&id).await["streak"], streak);
    }
    // Silence: failed after period + grace (3 s), and the reaction is called once.
    let failed = node
        .wait_state(&id, secs(8), "the overdue heartbeat to fail", |s| s["status"] == "failed")
        .await;
    assert!(failed["last_reason"].as_str().unwrap().starts_with("no ping for 3 s"), "{failed}");
    receiver.wait_count_to("/late", 1, secs(5)).await;

    // /start then /fail: the job says it failed; a ping heals.
    assert_eq!(get(&node, &format!("{url}/0")).await, (200, success("healthy", 1)));
    assert_eq!(get(&node, &format!("{url}/start")).await.0, 200);
    let (code, answer) = post_json(&node, &format!("{url}/fail"), &json!("disk full")).await;
    assert_eq!((code, answer["status"].clone()), (200, json!("failed")));
    let state = node.state(&id).await;
    assert_eq!(state["last_reason"], "job reported failure: \"disk full\"", "{state}");
    assert_error(&get(&node, &format!("{url}/reboot")).await, 400, "invalid_field", Some("action"));
    assert_eq!(post_json(&node, &url, &json!({})).await.1["status"], "healthy");
    let changes = status_changes(&node.events(&id).await);
    assert_eq!(changes, ["healthy", "failed", "healthy", "failed", "healthy"], "newest first");
}

/// An alert as Alertmanager's webhook payload (version 4) carries it.
fn alert(status: &str, instance: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "InstanceDown", "instance": instance, "job": "node"},
        "annotations": {"summary": format!("{instance} is down")},
        "startsAt": "2026-11-24T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph", "fingerprint": format!("fp-{instance}")
    })
}

fn alertmanager(group_status: &str, alerts: Value) -> Value {
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"InstanceDown\"}", "truncatedAlerts": 0,
        "status": group_status, "receiver": "cloudroutes",
        "groupLabels": {"alertname": "InstanceDown"}, "commonLabels": {"alertname": "InstanceDown"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": alerts
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_alerts_each_drive_their_own_status_and_resends_change_nothing() {
    let node = Node::start().await;
    let receiver = Receiver::start().await;
    let reaction = webhook_reaction(&node, &receiver, "/page", 1, 0, "failed").await;
    let (id, url) =
        hook_monitor(&node, json!({"type": "alertmanager-webhook"}), &[&reaction]).await;

    let both = alertmanager("firing", json!([alert("firing", "web-1"), alert("firing", "web-2")]));
    assert_eq!(post_json(&node, &url, &both).await, (200, success("failed", 1)));
    receiver.wait_count_to("/page", 1, secs(5)).await;
    // Alertmanager's repeat and an HA peer's duplicate: nothing recorded, nothing fired.
    for _ in 0..2 {
        assert_eq!(post_json(&node, &url, &both).await, (200, success("failed", 1)));
    }
    // The group still says firing; web-1's own status says resolved: still failed for web-2.
    let one = alertmanager("firing", json!([alert("resolved", "web-1"), alert("firing", "web-2")]));
    assert_eq!(post_json(&node, &url, &one).await, (200, success("failed", 2)));
    let state = node.state(&id).await;
    assert_eq!(state["last_reason"], "1 alert firing: InstanceDown: web-2 is down", "{state}");
    let none = alertmanager("resolved", json!([alert("resolved", "web-2")]));
    assert_eq!(post_json(&node, &url, &none).await, (200, success("healthy", 1)));
    assert_eq!(receiver.count_to("/page"), 1, "one episode, one page");
    assert_eq!(status_changes(&node.events(&id).await), ["healthy", "failed"]);

    let bad = alertmanager("firing", json!([{"status": "pending", "labels": {}}]));
    assert_error(
        &post_json(&node, &url, &bad).await,
        400,
        "invalid_field",
        Some("alerts[0].status"),
    );
    // Bodies beyond the intake's limit are refused before parsing.
    let huge = json!({"alerts": [], "pad": "x".repeat(300 * 1024)});
    assert_eq!(post_json(&node, &url, &huge).await.0, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_grafana_and_papertrail_payloads_set_the_status() {
    let node = Node::start().await;
    let (_, datadog) = hook_monitor(&node, json!({"type": "datadog-webhook"}), &[]).await;
    let payload = |title: &str| {
        json!({"body": "%%%\nCPU at 97%\n%%%", "last_updated": "1700000000000",
               "event_type": "query_alert_monitor", "title": title, "date": "1700000000000",
               "org": {"id": "1", "name": "shop"}, "id": "7088329938273598251"})
    };
    let triggered = payload("[Triggered] CPU load is high on web-1");
    assert_eq!(post_json(&node, &datadog, &triggered).await, (200, success("failed", 1)));
    let warn = post_json(&node, &datadog, &payload("[Warn] CPU load at 80%")).await;
    assert_eq!((warn.0, warn.1["result"].clone()), (200, json!("ignored")));
    let recovered = payload("[Recovered] CPU load is high on web-1");
    assert_eq!(post_json(&node, &datadog, &recovered).await, (200, success("healthy", 1)));

    let (_, grafana) = hook_monitor(&node, json!({"type": "grafana-webhook"}), &[]).await;
    let grafana_alert = |status: &str| {
        json!({"receiver": "cloudroutes", "status": status, "orgId": 1, "version": "1",
               "alerts": [{"status": status, "labels": {"alertname": "HighLatency"},
                           "annotations": {}, "fingerprint": "57c6d9296de2ad39"}],
               "title": "[FIRING:1] HighLatency", "state": "alerting"})
    };
    assert_eq!(
        post_json(&node, &grafana, &grafana_alert("firing")).await,
        (200, success("failed", 1))
    );
    assert_eq!(
        post_json(&node, &grafana, &grafana_alert("resolved")).await,
        (200, success("healthy", 1))
    );

    let (_, papertrail) = hook_monitor(&node, json!({"type": "papertrail-webhook"}), &[]).await;
    let search = json!({"events": [{"source_name": "web-1", "message": "upstream timed out"}],
                        "saved_search": {"id": 42, "name": "Errors", "query": "error"}});
    let form = [("payload", search.to_string())];
    assert_eq!(post_form(&node, &papertrail, &form).await, (200, success("failed", 1)));
    let healthy = format!("{papertrail}/healthy");
    assert_eq!(post_form(&node, &healthy, &form).await, (200, success("healthy", 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_command_needs_its_token_which_the_api_never_shows() {
    let node = Node::start().await;
    let token = "gIkuvaNzQIHg97ATvDxqgjtO";
    let (id, url) =
        hook_monitor(&node, json!({"type": "slack-webhook", "token": token}), &[]).await;
    let command = |token: &str, text: &str| {
        vec![
            ("token", token.to_owned()),
            ("team_domain", "example".to_owned()),
            ("user_name", "steve".to_owned()),
            ("command", "/cloudroutes".to_owned()),
            ("text", text.to_owned()),
        ]
    };
    assert_error(&post_form(&node, &url, &command("wrong", "false")).await, 403, "forbidden", None);
    let (code, reply) = post_form(&node, &url, &command(token, "false db-1 is down")).await;
    assert_eq!(code, 200);
    assert_eq!(reply["response_type"], "ephemeral");
    assert_eq!(reply["text"], "CloudRoutes: monitor is failed (streak 1)");
    assert_eq!(node.state(&id).await["last_reason"], "slack: steve: false db-1 is down");

    // The token is write-only, and a definition read back can be written back unchanged.
    let shown = node.monitor(&id).await;
    assert_eq!(shown["check"]["token"], "***", "{shown}");
    assert!(!shown.to_string().contains(token));
    let mut edited = shown.clone();
    edited["name"] = json!("slack, renamed");
    assert_eq!(node.put(&format!("/monitors/{id}"), edited).await.0, 200);
    let (code, reply) = post_form(&node, &url, &command(token, "all good")).await;
    assert_eq!(
        (code, reply["text"].clone()),
        (200, json!("CloudRoutes: monitor is healthy (streak 1)"))
    );
    // Creating one with the placeholder is refused: there is no stored token to keep.
    let stars = json!({"name": "s", "check": {"type": "slack-webhook", "token": "***"}});
    assert_error(&node.post("/monitors", stars).await, 400, "invalid_field", Some("check.token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_command_with_a_signing_secret_needs_slacks_signature_of_now() {
    use hmac::{Hmac, KeyInit, Mac};
    let node = Node::start().await;
    let (token, secret) = ("xyzz0WbapA4vBCDEFasx0q6G", "8f742231b10e8888abcd99yyyzzz85a5");
    let check = json!({"type": "slack-webhook", "token": token, "signing_secret": secret});
    let (id, url) = hook_monitor(&node, check, &[]).await;
    let body = format!("token={token}&user_name=steve&command=%2Fcloudroutes&text=false+db-2");
    let sign = |timestamp: i64| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{timestamp}:{body}").as_bytes());
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        format!("v0={hex}")
    };
    let send = async |signed: Option<(i64, String)>| {
        let mut request = node
            .http()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        if let Some((timestamp, signature)) = signed {
            request = request
                .header("x-slack-request-timestamp", timestamp.to_string())
                .header("x-slack-signature", signature);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
    };
    let since_epoch = std::time::UNIX_EPOCH.elapsed().expect("a clock after 1970");
    let now = i64::try_from(since_epoch.as_secs()).expect("seconds fit");
    assert_error(&send(None).await, 403, "forbidden", None);
    let replayed = now - 600;
    assert_error(&send(Some((replayed, sign(replayed)))).await, 403, "forbidden", None);
    assert_error(&send(Some((now, sign(now + 1)))).await, 403, "forbidden", None);
    assert_eq!(node.state(&id).await["status"], "unknown", "nothing was recorded");
    let (code, reply) = send(Some((now, sign(now)))).await;
    assert_eq!(
        (code, reply["text"].clone()),
        (200, json!("CloudRoutes: monitor is failed (streak 1)"))
    );
    let shown = node.monitor(&id).await;
    assert_eq!(shown["check"]["signing_secret"], "***", "{shown}");
    assert!(!shown.to_string().contains(secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_url_shape_still_works_and_types_are_kept_apart() {
    let node = Node::start().await;
    let (id, url) = hook_monitor(&node, json!({"type": "webhook"}), &[]).await;
    let (_, key) = url.rsplit_once('/').unwrap();
    let original = format!("{}/api/cr-api/{id}/{key}", node.base);
    let (code, answer) =
        post_json(&node, &format!("{original}/failed"), &json!({"check_key": key})).await;
    assert_eq!((code, answer), (200, success("failed", 1)));
    let (code, answer) = post_json(&node, &format!("{original}/status"), &json!({})).await;
    assert_eq!((code, answer), (200, success("failed", 1)));
    let other_type = format!("{}/api/datadog-webhook/{id}/{key}/failed", node.base);
    assert_error(&post_json(&node, &other_type, &json!({})).await, 404, "not_found", None);
    // A plain webhook monitor takes no GET pings; only heartbeats do.
    let (code, _) = get(&node, &url).await;
    assert_eq!(code, 405);
    // An active monitor takes no webhook results at all.
    let tcp = node
        .create_monitor(json!({"name": "tcp", "check": {"type": "tcp-check", "host": "127.0.0.1", "port": 9}, "interval_secs": 60}))
        .await;
    let monitor = node.monitor(&id_of(&tcp)).await;
    assert!(monitor["webhook_url"].is_null(), "{monitor}");
}
