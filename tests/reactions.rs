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

    // The provider answered both; each outcome is recorded just after its answer.
    let outcomes = crate::common::wait_for(secs(10), "both outcomes in the history", || async {
        let events = node.events(&monitor).await;
        let outcomes: Vec<serde_json::Value> =
            events.into_iter().filter(|e| e["kind"] == "reaction").collect();
        (outcomes.len() == 2).then_some(outcomes)
    })
    .await;
    assert!(outcomes.iter().all(|e| e["outcome"] == "executed"), "{outcomes:?}");
    let (_, shown) = node.get(&format!("/reactions/{}", id_of(&reaction))).await;
    let (_, history) = node.get(&format!("/monitors/{monitor}/events")).await;
    for text in [shown.to_string(), history.to_string(), node.logs()] {
        assert!(!text.contains(routing_key), "the routing key leaked: {text}");
    }
}

/// A plain SMTP server (Debian's `python3-aiosmtpd`) on 127.0.0.1 that saves each message's
/// envelope and body as one JSON line; stopped by its pid.
struct SmtpServer {
    port: u16,
    spool: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    async fn start() -> SmtpServer {
        const SCRIPT: &str = r#"
import email, json, sys, time
from email import policy
from aiosmtpd.controller import Controller
port, spool = int(sys.argv[1]), sys.argv[2]
class Saver:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(("plain",))
        record = {"from": envelope.mail_from, "to": envelope.rcpt_tos,
                  "subject": str(message["subject"]), "text": body.get_content() if body else ""}
        with open(spool, "a") as out:
            out.write(json.dumps(record) + "\n")
        return "250 OK"
Controller(Saver(), hostname="127.0.0.1", port=port).start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("smtp.py");
        std::fs::write(&script, SCRIPT).expect("write script");
        let spool = dir.path().join("spool.jsonl");
        let port = crate::common::free_port();
        let python = "/usr/bin/python3";
        assert!(
            std::process::Command::new(python)
                .args(["-c", "import aiosmtpd"])
                .status()
                .is_ok_and(|s| s.success()),
            "{python} cannot import aiosmtpd: install the Debian package python3-aiosmtpd"
        );
        let child = std::process::Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&spool)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        crate::common::wait_until(secs(20), "aiosmtpd to listen", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        SmtpServer { port, spool, child, _dir: dir }
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.spool)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("json line"))
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_through_the_nodes_smtp_relay_and_links_the_dashboard() {
    let smtp = SmtpServer::start().await;
    let node = Node::start_with_env(&[
        ("CLOUDROUTES_SMTP_HOST", "127.0.0.1".to_owned()),
        ("CLOUDROUTES_SMTP_PORT", smtp.port.to_string()),
        ("CLOUDROUTES_SMTP_SECURITY", "none".to_owned()),
        ("CLOUDROUTES_SMTP_FROM", "CloudRoutes <alerts@example.com>".to_owned()),
        ("CLOUDROUTES_HTTP_PUBLIC_URL", "https://cr.example.com".to_owned()),
    ])
    .await;
    let reaction = node
        .create_reaction(json!({
            "name": "mail ops", "trigger": 1, "call_on": "failed",
            "action": {"type": "email-notification", "to": ["ops@example.com"]},
        }))
        .await;
    let monitor = id_of(
        &node
            .create_monitor(json!({"name": "shop front page", "check": {"type": "webhook"},
                                   "reactions": [id_of(&reaction)]}))
            .await,
    );
    let (status, _) =
        node.post(&format!("/monitors/{monitor}/fail"), json!({"reason": "HTTP 503"})).await;
    assert_eq!(status, 200);
    let messages = crate::common::wait_for(secs(15), "the mail to arrive", || async {
        let messages = smtp.messages();
        (!messages.is_empty()).then_some(messages)
    })
    .await;
    let mail = &messages[0];
    assert_eq!(mail["from"], "alerts@example.com", "{mail}");
    assert_eq!(mail["to"], json!(["ops@example.com"]), "{mail}");
    assert_eq!(mail["subject"], "[CloudRoutes] FAILED: shop front page (episode 1)", "{mail}");
    let text = mail["text"].as_str().expect("text");
    assert!(text.contains("HTTP 503"), "{text}");
    assert!(text.contains(&format!("https://cr.example.com/#/monitors/{monitor}")), "{text}");
}
