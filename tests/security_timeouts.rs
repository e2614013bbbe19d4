//! Header and request timeouts (slow clients are cut off, others still served), the access
//! log naming the client address, and denied calls (403, 401, 429) in the audit trail,
//! bounded per caller and window.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Auth, Node, assert_error, wait_for};

/// Reads from `stream` until the server closes it (or resets it), writing `trickle` one byte
/// every 100 ms meanwhile (while writing still works); returns what was read and when the
/// connection ended. Panics after `give_up`.
async fn read_until_closed(
    stream: &mut TcpStream,
    trickle: &[u8],
    give_up: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let (mut read, mut sent) = (Vec::new(), 0);
    let mut buf = [0u8; 4096];
    loop {
        assert!(started.elapsed() < give_up, "still open after {give_up:?}: {read:?}");
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
            Err(_) => {
                if let Some(byte) = trickle.get(sent) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
            }
        }
    }
    (String::from_utf8_lossy(&read).into_owned(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_headers_is_cut_off_after_the_header_timeout() {
    let env = [("CLOUDROUTES_LIMITS_HEADER_TIMEOUT_MS", "700".to_owned())];
    let node = Node::start_with_env(&env).await;
    let mut slow = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    slow.write_all(b"GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let trickle = vec![b'a'; 200];
    let slow = tokio::spawn(async move {
        read_until_closed(&mut slow, &trickle, Duration::from_secs(10)).await
    });
    // Meanwhile another connection is served.
    assert_eq!(node.get("/monitors").await.0, 200);
    let (answer, closed_after) = slow.await.unwrap();
    assert!(
        closed_after >= Duration::from_millis(500) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
    assert!(!answer.contains("200 OK"), "{answer}");

    // An idle keep-alive connection is closed after the same time.
    let mut idle = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (answer, closed_after) = read_until_closed(&mut idle, b"", Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed_after < Duration::from_secs(4), "idle for {closed_after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_past_the_request_timeout_gets_408_and_a_closed_connection() {
    let env = [("CLOUDROUTES_LIMITS_REQUEST_TIMEOUT_MS", "1000".to_owned())];
    let node = Node::start_with_env(&env).await;
    let mut slow = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    let head = format!(
        "POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 500\r\n\r\n",
        node.token
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let trickle = vec![b' '; 500];
    let (answer, closed_after) =
        read_until_closed(&mut slow, &trickle, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\"") && answer.contains("1000 ms"), "{answer}");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(5),
        "{closed_after:?}"
    );
    // A request that is quick enough passes.
    let monitor = json!({"name": "quick", "check": {"type": "webhook"}});
    assert_eq!(node.post("/monitors", monitor).await.0, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_names_the_client_address_and_masks_webhook_keys() {
    let node = Node::start().await;
    let hook = node.create_monitor(json!({"name": "hook", "check": {"type": "webhook"}})).await;
    let url = hook["webhook_url"].as_str().unwrap().to_owned();
    let key = url.rsplit('/').next().unwrap().to_owned();
    let response = node.http().post(&url).json(&json!({"action": "failed"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(node.get("/monitors").await.0, 200);
    let logs = wait_for(Duration::from_secs(5), "the access log line", || async {
        let logs = node.logs();
        logs.contains("\"GET /api/v1/monitors HTTP/1.1\" 200").then_some(logs)
    })
    .await;
    let line = logs
        .lines()
        .find(|l| l.contains("\"GET /api/v1/monitors HTTP/1.1\" 200"))
        .expect("an access log line");
    assert!(line.contains("cloudroutes::http") && line.contains("127.0.0.1:"), "{line}");
    assert!(logs.contains("/api/v1/webhooks/") && logs.contains("/***"), "{logs}");
    assert!(!logs.contains(&key), "a webhook key in the logs");
}

/// Returns the audit trail's denied entries with `outcome`.
async fn denied(node: &Node, outcome: &str) -> Vec<Value> {
    let (status, page) = node.get("/audit?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    items.into_iter().filter(|e| e["action"] == "denied" && e["outcome"] == outcome).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_and_a_401_are_audited_with_the_token_name_or_client_address() {
    let node = Node::start().await;
    let (status, created) =
        node.post("/tokens", json!({"name": "look-only", "role": "viewer"})).await;
    assert_eq!(status, 201, "{created}");
    let viewer = format!("Bearer {}", created["token"].as_str().unwrap());
    let body = json!({"name": "x", "check": {"type": "webhook"}}).to_string().into_bytes();
    let answer = node.call("POST", "/monitors", Some(body.clone()), Auth::Header(&viewer)).await;
    assert_error(&answer, 403, "forbidden", None);

    let entries = denied(&node, "forbidden").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["actor"], "look-only");
    assert_eq!(entry["role"], "viewer");
    assert_eq!(entry["resource_kind"], "request");
    assert_eq!(entry["resource_name"], "POST /api/v1/monitors");
    assert_eq!(entry["count"], 1);
    assert_eq!(entry["client"], "127.0.0.1");
    // A second denial in the window is folded, not recorded at once.
    let answer = node.call("POST", "/monitors", Some(body), Auth::Header(&viewer)).await;
    assert_error(&answer, 403, "forbidden", None);
    assert_eq!(denied(&node, "forbidden").await.len(), 1);

    assert_eq!(node.call("GET", "/monitors", None, Auth::Missing).await.0, 401);
    let entries = denied(&node, "unauthorized").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], "127.0.0.1");
    assert_eq!(entries[0]["role"], Value::Null);
    assert_eq!(entries[0]["resource_name"], "GET /api/v1/monitors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_rate_limit_is_audited_once_with_its_count_per_window() {
    let env = [
        ("CLOUDROUTES_LIMITS_API_RATE_PER_SEC", "1".to_owned()),
        ("CLOUDROUTES_LIMITS_API_BURST", "5".to_owned()),
        ("CLOUDROUTES_LIMITS_DENIED_AUDIT_WINDOW_MS", "1500".to_owned()),
    ];
    let node = Node::start_with_env(&env).await;
    let (status, created) =
        node.post("/tokens", json!({"name": "flood-bot", "role": "viewer"})).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    // The flood comes from another loopback address, so the admin's own budget (127.0.0.1)
    // stays free to read the audit trail.
    let flooder = reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let mut limited = 0u64;
    for _ in 0..40 {
        let response =
            flooder.get(node.api_url("/monitors")).bearer_auth(&secret).send().await.unwrap();
        if response.status().as_u16() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 30, "{limited} of 40 limited");
    // The first is recorded at once, the rest of the window when it ends: two entries (three
    // if the flood outlasted a window) whose counts add up to every 429.
    // Polled once a second: the admin's own budget here is one request a second.
    let mut entries = Vec::new();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        entries = denied(&node, "rate_limited").await;
        let total: u64 = entries.iter().filter_map(|e| e["count"].as_u64()).sum();
        if total == limited {
            break;
        }
    }
    let total: u64 = entries.iter().filter_map(|e| e["count"].as_u64()).sum();
    assert_eq!(total, limited, "{entries:?}");
    assert!((2..=3).contains(&entries.len()), "{entries:?}");
    for entry in &entries {
        assert_eq!(entry["actor"], "flood-bot", "{entry}");
        assert_eq!(entry["client"], "127.0.0.2", "{entry}");
        assert_eq!(entry["resource_name"], "GET /api/v1/monitors", "{entry}");
    }
    assert!(entries.iter().any(|e| e["count"].as_u64() > Some(1)), "{entries:?}");
}
