//! The [`RedisServer`] harness itself: a real `redis-server` keeps what it acknowledged across a
//! graceful restart and across SIGKILL (append-only file, fsynced on every write), and is gone
//! once killed.

use std::net::TcpStream;
use std::time::Duration;

use crate::common::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_server_keeps_acknowledged_writes_across_restart_and_kill() {
    let mut redis = RedisServer::start().await;
    assert!(redis.is_running());
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/0", redis.port()));
    assert!(redis.command(&["INFO", "persistence"]).contains("aof_enabled:1"));
    let run_id = |redis: &RedisServer| {
        let info = redis.command(&["INFO", "server"]);
        let line = info.lines().find(|l| l.starts_with("run_id:")).map(str::to_owned);
        line.unwrap_or_else(|| panic!("no run_id in {info}"))
    };
    let first_run = run_id(&redis);

    assert_eq!(redis.command(&["SET", "cr:harness:graceful", "value with spaces"]), "+OK\r\n");
    redis.restart().await;
    assert_ne!(run_id(&redis), first_run, "restart must start a new process");
    assert_eq!(redis.command(&["GET", "cr:harness:graceful"]), "$17\r\nvalue with spaces\r\n");

    // SIGKILL gives the server no chance to flush: only `appendfsync always` keeps this.
    assert_eq!(redis.command(&["RPUSH", "cr:harness:killed", "a", "b"]), ":2\r\n");
    redis.kill().await;
    assert!(!redis.is_running());
    redis.restart().await;
    assert_eq!(
        redis.command(&["LRANGE", "cr:harness:killed", "0", "-1"]),
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(redis.command(&["DBSIZE"]), ":2\r\n");
    assert_eq!(redis.command(&["GET", "cr:harness:missing"]), "$-1\r\n");

    redis.kill().await;
    assert!(!redis.is_running());
    assert!(!redis.answers_ping());
    let refused = TcpStream::connect_timeout(
        &([127, 0, 0, 1], redis.port()).into(),
        Duration::from_millis(500),
    );
    assert!(refused.is_err(), "port {} still accepts connections after kill", redis.port());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_server_restart_waits_for_its_port_to_be_free() {
    let mut redis = RedisServer::start().await;
    assert_eq!(redis.command(&["SET", "k", "v"]), "+OK\r\n");
    redis.kill().await;
    // Something else holds the port for a moment: the restart retries until it is free.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", redis.port())).expect("bind");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        drop(squatter);
    });
    redis.restart().await;
    release.await.expect("squatter task");
    assert!(redis.is_running());
    assert_eq!(redis.command(&["GET", "k"]), "$1\r\nv\r\n");
}
