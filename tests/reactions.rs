//! Catalog reactions end to end through a real node: the exact request reaches the provider's
//! (fake) API, the outcome lands in the history, and the secret never comes back out of the
//! API or the node's log.

use serde_json::json;

use crate::common::{Node, Receiver, id_of, secs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_triggers_then_resolves_one_incident_per_episode_and_keeps_its_key_secret() {
    let node = Node::start().await;
    let pagerduty = Receiver::start().await;
    pagerduty.set_status(202);
    let routing_key = "R0UTINGKEYCANARY0123456789abcdef";
    let (status, reaction) = node
        .post(
            "/reactions",
            json!({
                "name": "page on-call",
                "action": {"type": "pagerduty-notification", "routing_key": routing_key,
                           "severity": "critical", "api_base_url": pagerduty.url("")},
                "trigger": 1, "call_on": "both",
            }),
        )
        .await;
    assert_eq!(status, 201, "{reaction}");
    assert_eq!(reaction["action"]["routing_key"], "***", "{reaction}");
    let monitor = id_of(
        &node
            .create_monitor(json!({"name": "checkout", "check": {"type": "webhook"},
                                   "reactions": [id_of(&reaction)]}))
            .await,
    );
    assert_eq!(node.post_empty(&format!("/monitors/{monitor}/fail")).await.0, 200);
    pagerduty.wait_count_to("/v2/enqueue", 1, secs(10)).await;
    assert_eq!(node.post_empty(&format!("/monitors/{monitor}/heal")).await.0, 200);
    let sent = pagerduty.wait_count_to("/v2/enqueue", 2, secs(10)).await;
    let bodies: Vec<serde_json::Value> = sent.into_iter().map(|r| r.body).collect();
    assert_eq!(bodies[0]["event_action"], "trigger", "{}", bodies[0]);
    assert_eq!(bodies[1]["event_action"], "resolve", "{}", bodies[1]);
    assert_eq!(bodies[0]["routing_key"], routing_key, "the provider gets the key");
    assert_eq!(bodies[0]["dedup_key"], bodies[1]["dedup_key"], "one incident per episode");
    assert_eq!(bodies[0]["payload"]["severity"], "critical");
    assert_eq!(bodies[0]["payload"]["source"], "checkout");

    let events = node.events(&monitor).await;
    let outcomes: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["kind"] == "reaction").collect();
    assert_eq!(outcomes.len(), 2, "{events:?}");
    assert!(outcomes.iter().all(|e| e["outcome"] == "executed"), "{outcomes:?}");
    let (_, shown) = node.get(&format!("/reactions/{}", id_of(&reaction))).await;
    let (_, history) = node.get(&format!("/monitors/{monitor}/events")).await;
    for text in [shown.to_string(), history.to_string(), node.logs()] {
        assert!(!text.contains(routing_key), "the routing key leaked: {text}");
    }
}
