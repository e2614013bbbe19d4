//! The canary test: a unique string in every secret field of every check and reaction type
//! never comes back out of the node — not from the API (one, lists, history, metrics, the
//! OpenAPI document), not in its logs, and not in the raw bytes of its store file, which
//! proves secrets are sealed at rest. A definition written back with `"***"` keeps its secret.

#[path = "canary/examples.rs"]
mod examples;
#[path = "canary/startup.rs"]
mod startup;
#[path = "canary/webhook_keys.rs"]
mod webhook_keys;

use serde_json::{Value, json};

use crate::common::{Node, Receiver, free_port, id_of, secs, wait_until};
use examples::Canaries;

/// Types listed by `path` with at least one secret field, with whether they are passive.
async fn secret_types(node: &Node, path: &str) -> Vec<(String, bool)> {
    let (status, types) = node.get(path).await;
    assert_eq!(status, 200, "{types}");
    let items = types.as_array().or_else(|| types["items"].as_array()).expect("a type list");
    let secret =
        items.iter().filter(|t| t["secret_fields"].as_array().is_some_and(|f| !f.is_empty()));
    let named =
        secret.map(|t| (t["name"].as_str().expect("a type name").to_owned(), t["passive"] == true));
    named.collect()
}

/// Fails a monitor by hand and waits until a reaction event exists for each of `reactions`.
async fn fire(node: &Node, monitor: &str, reactions: &[String]) {
    let (status, answer) =
        node.post(&format!("/monitors/{monitor}/fail"), json!({"reason": "canary"})).await;
    assert_eq!(status, 200, "{answer}");
    wait_until(secs(60), "every reaction to record an outcome", || async {
        let events = node.events(monitor).await;
        reactions
            .iter()
            .all(|id| events.iter().any(|e| e["kind"] == "reaction" && e["reaction_id"] == *id))
    })
    .await;
}

/// Asserts no canary occurs in `text`, naming where it was found.
#[track_caller]
fn assert_clean(canaries: &Canaries, source: &str, text: &str) {
    for canary in &canaries.all {
        assert!(!text.contains(canary.as_str()), "a secret ({canary}) came back out in {source}");
    }
}

#[tokio::test]
async fn no_secret_comes_back_out_of_the_api_the_logs_or_the_store() {
    // Every reaction type fires at once, destructive ones too: more than the blast-radius
    // brake's default budget lets start in ten minutes.
    let node =
        Node::start_with_env(&[("CLOUDROUTES_ENGINE_DESTRUCTIVE_BUDGET", "1000".into())]).await;
    let receiver = Receiver::start().await;
    let closed = free_port();
    let mut canaries = Canaries::new();

    let mut missing = Vec::new();
    let mut reactions = Vec::new();
    for (kind, _) in secret_types(&node, "/reaction-types").await {
        let Some(action) = examples::action(&kind, &mut canaries, closed) else {
            missing.push(format!("reaction {kind}"));
            continue;
        };
        let body = json!({"name": kind, "action": action, "trigger": 1, "call_on": "failed"});
        reactions.push(id_of(&node.create_reaction(body).await));
    }
    let mut monitors = Vec::new();
    let mut scheduled = Vec::new();
    for (kind, passive) in secret_types(&node, "/check-types").await {
        let Some(check) = examples::check(&kind, &mut canaries, closed) else {
            missing.push(format!("check {kind}"));
            continue;
        };
        let mut body = json!({"name": kind, "check": check});
        if !passive {
            body["interval_secs"] = json!(1);
        }
        let id = id_of(&node.create_monitor(body).await);
        if !passive {
            scheduled.push(id.clone());
        }
        monitors.push(id);
    }
    assert!(missing.is_empty(), "types with secret fields and no example: {missing:?}");
    assert!(reactions.len() >= 30 && monitors.len() >= 4, "{reactions:?} {monitors:?}");

    // A monitor that is healthy until failed by hand, with every reaction: each one fires
    // against a closed port and fails, and its outcome is recorded.
    // (The node's own port is off limits to checks, so it listens on a port of its own.)
    let target = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = target.local_addr().expect("address").port();
    let check = json!({"type": "tcp-check", "host": "127.0.0.1", "port": port});
    let body =
        json!({"name": "fires all", "check": check, "interval_secs": 60, "reactions": reactions});
    let firing = id_of(&node.create_monitor(body).await);
    fire(&node, &firing, &reactions).await;
    monitors.push(firing);

    // A secret written back as "***" is kept: the header still reaches the receiver.
    let header = canaries.next();
    let action = json!({
        "type": "http-webhook", "url": receiver.url("/kept"), "headers": {"X-Canary": header},
        "timeout_ms": 5000,
    });
    let body = json!({"name": "kept", "action": action, "trigger": 1, "call_on": "failed"});
    let kept = id_of(&node.create_reaction(body).await);
    let (status, shown) = node.get(&format!("/reactions/{kept}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["action"]["headers"]["X-Canary"], "***", "{shown}");
    let (status, put) = node.put(&format!("/reactions/{kept}"), shown.clone()).await;
    assert_eq!(status, 200, "{put}");
    let body = json!({"name": "kept", "check": check, "interval_secs": 60, "reactions": [kept]});
    let keeper = id_of(&node.create_monitor(body).await);
    fire(&node, &keeper, std::slice::from_ref(&kept)).await;
    let got = receiver.wait_count_to("/kept", 1, secs(10)).await;
    assert_eq!(got[0].header("x-canary"), Some(header.as_str()), "the stored secret was kept");
    monitors.push(keeper);
    reactions.push(kept);

    // Every check has run at least once (errors against closed ports are logged).
    for id in &scheduled {
        node.wait_state(id, secs(20), "a first result", |s| !s["last_check_at"].is_null()).await;
    }

    let mut answers = Vec::new();
    for id in &monitors {
        answers.push((format!("GET /monitors/{id}"), node.get(&format!("/monitors/{id}")).await.1));
        let events = Value::Array(node.events(id).await);
        answers.push((format!("events of {id}"), events));
    }
    for id in &reactions {
        answers
            .push((format!("GET /reactions/{id}"), node.get(&format!("/reactions/{id}")).await.1));
    }
    for path in ["/monitors?limit=1000", "/reactions?limit=1000", "/check-types", "/reaction-types"]
    {
        answers.push((path.to_owned(), node.get(path).await.1));
    }
    for (source, answer) in &answers {
        assert_clean(&canaries, source, &answer.to_string());
    }
    let reaction_events =
        answers.iter().filter(|(s, _)| s.starts_with("events")).map(|(_, a)| a.to_string());
    assert!(reaction_events.collect::<String>().contains("\"outcome\""), "reactions ran");
    for path in ["/metrics", "/api/v1/openapi.json"] {
        let text = node.http().get(node.url(path)).bearer_auth(&node.token).send().await;
        let text = text.expect(path).text().await.expect(path);
        assert_clean(&canaries, path, &text);
    }
    assert_clean(&canaries, "the node's logs", &node.logs());

    let store = std::fs::read(node.data_dir().join("cloudroutes.redb")).expect("the store file");
    let store = String::from_utf8_lossy(&store);
    assert!(store.contains("sealed:v1:"), "the store holds sealed values");
    assert_clean(&canaries, "the raw store file", &store);
}

fn spec(value: Value) -> cloudroutes_engine::PluginSpec {
    match value {
        Value::Object(map) => cloudroutes_engine::PluginSpec(map),
        other => panic!("not an object: {other}"),
    }
}

#[tokio::test]
async fn no_parsed_config_or_built_runnable_prints_a_secret() {
    let mut canaries = Canaries::new();
    let closed = free_port();
    let reaction_context = cloudroutes_reactions::ReactionContext::new(
        cloudroutes_engine::egress::Egress::loopback_for_tests(),
    )
    .expect("context");
    for info in
        cloudroutes_reactions::reaction_types().iter().filter(|t| !t.secret_fields.is_empty())
    {
        let action = examples::action(info.name, &mut canaries, closed)
            .unwrap_or_else(|| panic!("no example for reaction type {}", info.name));
        let config = cloudroutes_reactions::ReactionConfig::parse(&spec(action))
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        assert_clean(
            &canaries,
            &format!("Debug of the {} config", info.name),
            &format!("{config:?}"),
        );
        let built =
            config.build(&reaction_context).unwrap_or_else(|e| panic!("{}: {e}", info.name));
        assert_clean(
            &canaries,
            &format!("Debug of the {} reaction", info.name),
            &format!("{built:?}"),
        );
    }
    let check_context = cloudroutes_checks::CheckContext::new(
        cloudroutes_engine::egress::Egress::loopback_for_tests(),
    )
    .expect("context");
    for info in cloudroutes_checks::check_types().iter().filter(|t| !t.secret_fields.is_empty()) {
        let check = examples::check(info.name, &mut canaries, closed)
            .unwrap_or_else(|| panic!("no example for check type {}", info.name));
        let config = cloudroutes_checks::CheckConfig::parse(&spec(check))
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        assert_clean(
            &canaries,
            &format!("Debug of the {} config", info.name),
            &format!("{config:?}"),
        );
        let built = config.build(&check_context).unwrap_or_else(|e| panic!("{}: {e}", info.name));
        assert_clean(
            &canaries,
            &format!("Debug of the {} check", info.name),
            &format!("{built:?}"),
        );
    }
}

#[tokio::test]
async fn secrets_are_sealed_in_redis() {
    let cluster = crate::common::cluster::TestCluster::start(1).await;
    let node = &cluster.nodes[0];
    let mut canaries = Canaries::new();
    let closed = free_port();
    let check = examples::check("mysql", &mut canaries, closed).expect("a mysql example");
    let monitor = id_of(
        &node.create_monitor(json!({"name": "db", "check": check, "interval_secs": 60})).await,
    );
    let action = examples::action("http-webhook", &mut canaries, closed).expect("an example");
    let body = json!({"name": "hook", "action": action, "trigger": 1, "call_on": "failed"});
    let reaction = id_of(&node.create_reaction(body).await);
    for key in ["cr:{defs}:monitors", "cr:{defs}:reactions"] {
        let raw = cluster.redis.command(&["HGETALL", key]);
        assert!(raw.contains("sealed:v1:"), "{key}: {raw}");
        assert_clean(&canaries, &format!("Redis {key}"), &raw);
    }
    let (_, shown) = node.get(&format!("/monitors/{monitor}")).await;
    assert_eq!(shown["check"]["password"], "***", "{shown}");
    let (_, shown) = node.get(&format!("/reactions/{reaction}")).await;
    assert_eq!(shown["action"]["headers"]["Authorization"], "***", "{shown}");
    assert_clean(&canaries, "the node's logs", &node.logs());
}
