//! Two or more real transports in this process, on loopback ports. pg groups are process-wide,
//! so every test uses its own node ids.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cloudroutes_engine::model::{CheckOutcome, Method, MonitorId, MonitorState, ReactionId};
use tokio::sync::mpsc;

use super::*;

/// The frame limit of the nodes these tests start (the default of `cluster.max_frame_bytes`).
pub(super) const FRAME_LIMIT: u64 = cloudroutes_engine::config::DEFAULT_MAX_FRAME_BYTES;

/// Records what arrives; answers requests at once, or never when `hang`.
pub(super) struct Recorder {
    name: String,
    hang: bool,
    pub(super) requests: Mutex<Vec<(String, PeerRequest)>>,
    notices: mpsc::UnboundedSender<(String, PeerNotice)>,
}

#[async_trait]
impl PeerInbox for Recorder {
    async fn request(&self, from: &str, request: PeerRequest) -> PeerReply {
        self.requests.lock().unwrap().push((from.to_owned(), request.clone()));
        if self.hang {
            std::future::pending::<()>().await;
        }
        let state =
            MonitorState { owner: Some(self.name.as_str().into()), ..MonitorState::default() };
        match request {
            PeerRequest::RunNow { monitor_id } => PeerReply::Ran {
                outcome: CheckOutcome::Healthy { reason: format!("ran {monitor_id}") },
                state,
            },
            PeerRequest::Observe { .. } | PeerRequest::Deliver { .. } => {
                PeerReply::Observed { state }
            }
        }
    }

    async fn notice(&self, from: &str, notice: PeerNotice) {
        let _ = self.notices.send((from.to_owned(), notice));
    }
}

pub(super) struct Node {
    pub(super) transport: Transport,
    pub(super) inbox: Arc<Recorder>,
    notices: mpsc::UnboundedReceiver<(String, PeerNotice)>,
}

pub(super) async fn node(id: &str, cookie: &str, tls: Option<TlsFiles>, hang: bool) -> Node {
    node_limited(id, cookie, tls, hang, FRAME_LIMIT).await
}

/// Starts a node whose peers may send frames of at most `max_frame_bytes`.
pub(super) async fn node_limited(
    id: &str,
    cookie: &str,
    tls: Option<TlsFiles>,
    hang: bool,
    max_frame_bytes: u64,
) -> Node {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (tx, notices) = mpsc::unbounded_channel();
    let inbox = Arc::new(Recorder {
        name: id.to_owned(),
        hang,
        requests: Mutex::new(Vec::new()),
        notices: tx,
    });
    let config = TransportConfig {
        node_id: id.to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        cookie: cookie.to_owned(),
        tls,
        max_frame_bytes,
    };
    let transport = Transport::start(config, inbox.clone()).await.unwrap();
    Node { transport, inbox, notices }
}

pub(super) fn member(id: &str, node: &Node) -> (String, String) {
    (id.to_owned(), format!("127.0.0.1:{}", node.transport.local_addr().port()))
}

/// Calls `connect_peers` like the ownership loop would, until `from` sees `to` (or gives up).
pub(super) async fn connect(
    from: &Node,
    peers: &[(String, String)],
    to: &str,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        from.transport.connect_peers(peers).await;
        if from.transport.connected().iter().any(|peer| peer == to) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn next_notice(node: &mut Node) -> (String, PeerNotice) {
    tokio::time::timeout(Duration::from_secs(2), node.notices.recv()).await.unwrap().unwrap()
}

pub(super) fn run_now(id: &str) -> PeerRequest {
    PeerRequest::RunNow { monitor_id: MonitorId::from(id) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_notices_cross_the_wire_both_ways() {
    let mut a = node("a", "secret", None, false).await;
    let mut b = node("b", "secret", None, false).await;
    // Dedup: "b" sorts higher, so within the grace period it leaves dialing to "a".
    b.transport.connect_peers(&[member("a", &a)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(b.transport.connected().is_empty(), "the higher id dialed early");

    assert!(connect(&a, &[member("b", &b)], "b", Duration::from_secs(5)).await);
    assert!(connect(&b, &[member("a", &a)], "a", Duration::from_secs(5)).await);
    assert_eq!(a.transport.connected(), vec!["b".to_owned()]);
    // The member we call is the session's mirror of b's agent, not b's agent itself.
    let mirror = a.transport.peer_agent("b").unwrap();
    assert!(!mirror.get_id().is_local());

    let reply = a.transport.request("b", run_now("m1"), Duration::from_secs(2)).await.unwrap();
    let PeerReply::Ran { outcome, state } = reply else { panic!("unexpected reply {reply:?}") };
    assert_eq!(outcome, CheckOutcome::Healthy { reason: "ran m1".into() });
    assert_eq!(state.owner.as_deref(), Some("b"));
    assert_eq!(b.inbox.requests.lock().unwrap().clone(), vec![("a".to_owned(), run_now("m1"))]);

    let observe = PeerRequest::Observe {
        monitor_id: MonitorId::from("m2"),
        outcome: CheckOutcome::Failed { reason: "HTTP 503".into() },
        method: Method::Webhook,
    };
    let reply = b.transport.request("a", observe.clone(), Duration::from_secs(2)).await.unwrap();
    assert!(matches!(reply, PeerReply::Observed { state } if state.owner.as_deref() == Some("a")));
    assert_eq!(a.inbox.requests.lock().unwrap().clone(), vec![("b".to_owned(), observe)]);

    // Notices arrive, in order.
    for n in 0..20 {
        let notice = PeerNotice::MonitorChanged { monitor_id: MonitorId::from(format!("m{n}")) };
        a.transport.notify("b", notice).unwrap();
    }
    for n in 0..20 {
        let expected = PeerNotice::MonitorChanged { monitor_id: MonitorId::from(format!("m{n}")) };
        assert_eq!(next_notice(&mut b).await, ("a".to_owned(), expected));
    }
    let deleted = PeerNotice::ReactionDeleted { reaction_id: ReactionId::from("r1") };
    b.transport.broadcast(deleted.clone());
    assert_eq!(next_notice(&mut a).await, ("b".to_owned(), deleted));

    // Latency of a remote round trip (loopback, debug build).
    let mut samples = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        a.transport.request("b", run_now("m1"), Duration::from_secs(2)).await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    eprintln!("remote request p50 {:?} p99 {:?}", samples[100], samples[198]);

    // Unknown peers fail fast.
    let started = Instant::now();
    let err = a.transport.request("nobody", run_now("m1"), Duration::from_secs(5)).await;
    assert!(matches!(err, Err(TransportError::NotConnected { node }) if node == "nobody"));
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(matches!(
        a.transport.notify("nobody", PeerNotice::MonitorDeleted { monitor_id: "m".into() }),
        Err(TransportError::NotConnected { .. })
    ));

    // b goes away: a notices; a new "b" on another port is dialed by the same loop.
    b.transport.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.transport.connected().contains(&"b".to_owned()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.transport.connected().is_empty());
    let err = a.transport.request("b", run_now("m1"), Duration::from_secs(1)).await;
    assert!(matches!(err, Err(TransportError::NotConnected { .. })), "{err:?}");
    let b2 = node("b", "secret", None, false).await;
    assert!(connect(&a, &[member("b", &b2)], "b", Duration::from_secs(10)).await);
    let reply = a.transport.request("b", run_now("m3"), Duration::from_secs(2)).await.unwrap();
    assert!(matches!(reply, PeerReply::Ran { .. }));
    assert_eq!(b2.inbox.requests.lock().unwrap().len(), 1);
    a.transport.shutdown().await;
    b2.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_to_a_silent_inbox_times_out_in_time() {
    let a = node("slow-a", "secret", None, false).await;
    let b = node("slow-b", "secret", None, true).await;
    assert!(connect(&a, &[member("slow-b", &b)], "slow-b", Duration::from_secs(5)).await);
    let started = Instant::now();
    let err = a.transport.request("slow-b", run_now("m1"), Duration::from_millis(300)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(err, Err(TransportError::Timeout { ref node, timeout_ms: 300 }) if node == "slow-b")
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(600),
        "{elapsed:?}"
    );
    assert_eq!(b.inbox.requests.lock().unwrap().len(), 1, "the request reached the inbox");
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cookie_never_connects() {
    let a = node("ck-a", "right", None, false).await;
    let b = node("ck-b", "wrong", None, false).await;
    let c = node("ck-c", "right", None, false).await;
    // "ck-a" sorts lower, so it dials (again every REDIAL_AFTER) and the handshake fails.
    assert!(!connect(&a, &[member("ck-b", &b)], "ck-b", Duration::from_secs(4)).await);
    let attempts = a.transport.inner.dials.lock().unwrap()["ck-b"].last_attempt;
    assert!(attempts.is_some(), "a never dialed b");
    assert!(a.transport.connected().is_empty() && b.transport.connected().is_empty());
    let err = a.transport.request("ck-b", run_now("m1"), Duration::from_secs(1)).await;
    assert!(matches!(err, Err(TransportError::NotConnected { .. })));
    assert!(b.inbox.requests.lock().unwrap().is_empty());
    // Control: the right cookie does connect from the same node.
    assert!(connect(&a, &[member("ck-c", &c)], "ck-c", Duration::from_secs(5)).await);
    for node in [a, b, c] {
        node.transport.shutdown().await;
    }
}

/// Writes a self-signed certificate for 127.0.0.1 and returns its files.
fn self_signed(dir: &std::path::Path, name: &str) -> TlsFiles {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    TlsFiles { cert, key, ca: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_peers_talk_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared = self_signed(dir.path(), "cluster");
    let a = node("tls-a", "secret", Some(shared.clone()), false).await;
    let b = node("tls-b", "secret", Some(shared.clone()), false).await;
    assert!(connect(&a, &[member("tls-b", &b)], "tls-b", Duration::from_secs(5)).await);
    let reply = a.transport.request("tls-b", run_now("m1"), Duration::from_secs(2)).await.unwrap();
    assert!(matches!(reply, PeerReply::Ran { .. }));

    // Same cookie, but plain TCP, or TLS with another certificate: never connected. (Their ids
    // sort lower than "tls-b", so they dial at once.)
    let plain = node("tls-0-plain", "secret", None, false).await;
    let other = node("tls-0-other", "secret", Some(self_signed(dir.path(), "other")), false).await;
    for stranger in [&plain, &other] {
        assert!(!connect(stranger, &[member("tls-b", &b)], "tls-b", Duration::from_secs(2)).await);
    }
    assert_eq!(b.transport.connected(), vec!["tls-a".to_owned()]);
    assert_eq!(b.inbox.requests.lock().unwrap().len(), 1);

    // A missing key file is a start error that names the file.
    let broken = TlsFiles { key: dir.path().join("missing.key"), ..shared };
    let config = TransportConfig {
        node_id: "tls-broken".into(),
        listen: "127.0.0.1:0".into(),
        cookie: "secret".into(),
        tls: Some(broken),
        max_frame_bytes: FRAME_LIMIT,
    };
    let err = Transport::start(config, a.inbox.clone()).await.err().unwrap();
    assert!(err.to_string().contains("missing.key"), "{err}");
    for node in [a, b, plain, other] {
        node.transport.shutdown().await;
    }
}

#[tokio::test]
async fn malformed_listen_address_is_a_start_error() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let inbox = Arc::new(Recorder {
        name: "x".into(),
        hang: false,
        requests: Mutex::default(),
        notices: tx,
    });
    for listen in ["localhost", "127.0.0.1:http", ":7000"] {
        let config = TransportConfig {
            node_id: "bad-addr".into(),
            listen: listen.into(),
            cookie: "c".into(),
            tls: None,
            max_frame_bytes: FRAME_LIMIT,
        };
        let err = Transport::start(config, inbox.clone()).await.err().unwrap();
        assert!(err.to_string().contains(listen), "{err}");
    }
}
