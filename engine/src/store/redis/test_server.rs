//! A real `redis-server` per test, on a free loopback port, stopped by its process id.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{RedisOptions, RedisStore};
use crate::cluster::{Acquired, Coordinator, Fences, Lease};
use crate::store::conformance::HISTORY_MAX_EVENTS;

/// Partitions the tests use: few, so that "every partition" stays cheap.
pub(super) const PARTITIONS: u32 = 8;

/// A `redis-server` child process with no persistence, in its own temporary directory.
pub(super) struct RedisServer {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    ///
    /// # Panics
    /// Panics when `redis-server` is not installed or does not answer within 10 s.
    pub(super) async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("its address").port()
        };
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: install the Debian package `redis-server` \
                 (apt-get install redis-server) to run the Redis backend's tests"
            ),
            Err(error) => panic!("cannot start redis-server: {error}"),
        };
        let server = Self { child: Some(child), port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.answers_ping().await {
            assert!(Instant::now() < deadline, "redis-server on port {port} did not answer PING");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    async fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").await.is_ok()
            && stream.read_exact(&mut answer).await.is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// Returns the server's URL.
    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (by its process id) and waits for it to exit.
    pub(super) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `SIG<name>` (`STOP`, `CONT`) to the server, by its process id.
    pub(super) fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("a running server");
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Returns a plain client connection, to inspect or tamper with keys.
    pub(super) async fn raw(&self) -> ::redis::aio::MultiplexedConnection {
        let client = ::redis::Client::open(self.url()).expect("a valid url");
        client.get_multiplexed_async_connection().await.expect("a raw connection")
    }

    /// Connects a store for `node` with [`PARTITIONS`] partitions and its own fences.
    pub(super) async fn store(&self, node: &str) -> (RedisStore, Arc<Fences>) {
        let fences = Arc::new(Fences::new(Duration::from_secs(60)));
        let options = options(node, PARTITIONS);
        let store = RedisStore::connect(&self.url(), options, Arc::clone(&fences)).await.unwrap();
        (store, fences)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Returns the options the tests use.
pub(super) fn options(node: &str, partitions: u32) -> RedisOptions {
    RedisOptions {
        node_id: node.to_owned(),
        partitions,
        history_max_events: HISTORY_MAX_EVENTS,
        response_timeout: Duration::from_millis(500),
    }
}

/// Acquires `partitions` for the store's node for `ttl` and records them in `fences`;
/// returns the leases.
pub(super) async fn hold(
    store: &RedisStore,
    fences: &Fences,
    partitions: &[u32],
    ttl: Duration,
) -> Vec<Lease> {
    let sent = Instant::now();
    let mut leases = Vec::new();
    for (partition, acquired) in store.acquire(store.node_id(), partitions, ttl).await.unwrap() {
        let Acquired::Granted { epoch, .. } = acquired else {
            panic!("partition {partition} is held elsewhere: {acquired:?}");
        };
        let lease = Lease { partition, epoch };
        fences.hold(lease, sent);
        leases.push(lease);
    }
    leases
}

/// Returns every partition.
pub(super) fn all_partitions() -> Vec<u32> {
    (0..PARTITIONS).collect()
}
