//! The end-to-end harness: real node processes, real HTTP servers on 127.0.0.1, polling helpers.
//!
//! - [`Node`]: one `cloudroutes node` process on its own data dir and port, with API helpers.
//!   It is killed when dropped, and its logs are printed when the test is failing.
//! - [`Target`]: an HTTP server for checks to probe; its status and body can be changed at run
//!   time and it counts hits.
//! - [`Receiver`]: an HTTP server that records every request a reaction sends.
//! - [`wait_for`], [`wait_until`]: poll with a deadline instead of sleeping.
//! - [`send_big_body`]: raw requests with oversized bodies.
//! - [`RedisServer`]: a real `redis-server` on loopback; [`cluster`]: a Redis and several
//!   nodes sharing it, and servers that record what each monitor checked.
//! - [`parse_time`], [`seconds_between`]: the node's timestamps against the test's clock.

#![allow(dead_code)]

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod browser;
pub mod cluster;
mod node;
mod raw;
mod redis;
mod servers;
mod time;

pub(crate) use node::binary;
pub use node::{Auth, Node};
pub use raw::send_big_body;
pub use redis::RedisServer;
pub use servers::{Receiver, Recorded, Target};
pub use time::{parse_time, seconds_between};

/// The admin token the harness gives nodes (at least 16 characters).
pub const TOKEN: &str = "e2e-admin-token-0123456789abcdef";

/// How long a node may take to become ready or to stop.
const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

/// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`) to process `pid`. The workspace forbids
/// `unsafe`, so it goes through kill(1), by pid, never by name.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// Returns a port that was free a moment ago (bound to 127.0.0.1:0 and released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `probe` every 100 ms until it returns `Some`, and returns that value; panics naming
/// `what` when `timeout` passes first.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `probe` every 100 ms until it returns true; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let fut = probe();
        async move { fut.await.then_some(()) }
    })
    .await;
}

/// Seconds as a `Duration`.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// Asserts an API error: status, `error.code` and `error.field` (`None` means JSON null).
#[track_caller]
pub fn assert_error(answer: &(u16, Value), status: u16, code: &str, field: Option<&str>) {
    let (got, body) = answer;
    assert_eq!(*got, status, "status; body {body}");
    assert_eq!(body["error"]["code"], json!(code), "error code; body {body}");
    assert_eq!(body["error"]["field"], json!(field), "error field; body {body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error message; body {body}"
    );
}

/// Creates an `http-webhook` reaction that calls `receiver` at `path`; returns its id.
pub async fn webhook_reaction(
    node: &Node,
    receiver: &Receiver,
    path: &str,
    trigger: u32,
    frequency_secs: u64,
    call_on: &str,
) -> String {
    let reaction = node
        .create_reaction(json!({
            "name": format!("call {path}"),
            "action": {"type": "http-webhook", "url": receiver.url(path), "timeout_ms": 5000},
            "trigger": trigger,
            "frequency_secs": frequency_secs,
            "call_on": call_on,
        }))
        .await;
    id_of(&reaction)
}

/// Creates an `http-get-statuscode` monitor on `target` every second; returns its id.
pub async fn http_monitor(node: &Node, name: &str, target: &Target, reactions: &[&str]) -> String {
    let monitor = node
        .create_monitor(json!({
            "name": name,
            "check": {"type": "http-get-statuscode", "url": target.url("/health"), "timeout_ms": 3000},
            "interval_secs": 1,
            "reactions": reactions,
        }))
        .await;
    id_of(&monitor)
}

/// The `id` of a created resource.
#[track_caller]
pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap_or_else(|| panic!("no id in {resource}")).to_owned()
}

/// A state's streak.
pub fn streak(state: &Value) -> u64 {
    state["streak"].as_u64().unwrap_or_else(|| panic!("no streak in {state}"))
}

/// Whether a state has `status` and a streak of at least `n`.
pub fn is(state: &Value, status: &str, n: u64) -> bool {
    state["status"] == status && state["streak"].as_u64().is_some_and(|s| s >= n)
}
