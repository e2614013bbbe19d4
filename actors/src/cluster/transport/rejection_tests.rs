//! Peers the transport must refuse: a wrong cookie, a certificate from another CA, a frame
//! above the limit. Each is refused (no session, nothing delivered) and leaves a warning that
//! names the peer. Logs are captured per test with a thread-local subscriber, so these tests
//! run on a current-thread runtime (every task, and so every log line, stays on this thread).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing_subscriber::fmt::MakeWriter;

use super::tests::{FRAME_LIMIT, connect, member, node, node_limited, run_now};
use super::*;

/// Log lines written while [`Logs::install`]'s guard lives on this thread.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures this thread's INFO and higher events until the guard drops.
    pub(crate) fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Returns everything captured so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Returns the WARN lines that contain every one of `parts`.
    fn warnings(&self, parts: &[&str]) -> Vec<String> {
        let text = self.text();
        let matching =
            |line: &&str| line.contains("WARN") && parts.iter().all(|p| line.contains(p));
        text.lines().filter(matching).map(str::to_owned).collect()
    }
}

/// Appends to the shared buffer.
pub(crate) struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(Arc::clone(&self.0))
    }
}

/// Waits until `what` holds, up to 5 s.
async fn eventually(what: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if what() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    what()
}

/// Reads until the peer closes the connection; false if it is still open after 5 s.
async fn closed_by_peer(stream: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut buf = [0; 256];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.is_ok()
}

#[tokio::test]
async fn a_peer_with_a_wrong_cookie_is_refused_and_logged() {
    let logs = Logs::default();
    let _guard = logs.install();
    let a = node("wc-a", "right", None, false).await;
    let b = node("wc-b", "wrong", None, false).await;
    // "wc-a" sorts lower, so it dials b (again every REDIAL_AFTER); every handshake fails.
    assert!(!connect(&a, &[member("wc-b", &b)], "wc-b", Duration::from_secs(4)).await);
    assert!(a.transport.connected().is_empty() && b.transport.connected().is_empty());
    let notice = PeerNotice::MonitorChanged { monitor_id: "m1".into() };
    assert!(matches!(a.transport.notify("wc-b", notice), Err(TransportError::NotConnected { .. })));
    let err = a.transport.request("wc-b", run_now("m1"), Duration::from_secs(1)).await;
    assert!(matches!(err, Err(TransportError::NotConnected { .. })), "{err:?}");
    assert!(
        b.inbox.requests.lock().unwrap().is_empty() && a.inbox.requests.lock().unwrap().is_empty()
    );

    // The dialer logs the session to b's address; b logs the one from a's ephemeral port.
    let b_addr = format!("peer_addr={}", b.transport.local_addr());
    let refused = "cluster session closed before authenticating: wrong cookie";
    assert!(!logs.warnings(&[refused, &b_addr]).is_empty(), "{}", logs.text());
    assert!(logs.warnings(&[refused]).len() >= 2, "both sides log it: {}", logs.text());
    assert!(!logs.text().contains("cluster peer connected"), "{}", logs.text());
    for node in [a, b] {
        node.transport.shutdown().await;
    }
}

/// A CA certificate and its key.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(dir: &Path, name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    Ca { cert, key }
}

/// Writes a certificate for 127.0.0.1 signed by `issuer`, trusting `trusted`'s file.
fn signed(dir: &Path, name: &str, issuer: &Ca, trusted: &str) -> TlsFiles {
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    TlsFiles { cert: cert_path, key: key_path, ca: Some(dir.join(format!("{trusted}.pem"))) }
}

#[tokio::test]
async fn a_certificate_not_signed_by_the_ca_is_refused_and_logged() {
    let logs = Logs::default();
    let _guard = logs.install();
    let dir = tempfile::tempdir().unwrap();
    let (cluster_ca, rogue_ca) = (ca(dir.path(), "cluster-ca"), ca(dir.path(), "rogue-ca"));
    let a_files = signed(dir.path(), "a", &cluster_ca, "cluster-ca");
    let b_files = signed(dir.path(), "b", &cluster_ca, "cluster-ca");
    let a = node("ca-a", "secret", Some(a_files), false).await;
    let b = node("ca-b", "secret", Some(b_files), false).await;
    // Control: two certificates from the cluster CA talk.
    assert!(connect(&a, &[member("ca-b", &b)], "ca-b", Duration::from_secs(5)).await);
    let reply = a.transport.request("ca-b", run_now("m1"), Duration::from_secs(2)).await.unwrap();
    assert!(matches!(reply, PeerReply::Ran { .. }));

    // The stranger knows the cookie and trusts the cluster CA, but its own certificate comes
    // from another CA. Its id sorts lower than "ca-b", so it dials at once.
    let files = signed(dir.path(), "stranger", &rogue_ca, "cluster-ca");
    let stranger = node("ca-0-stranger", "secret", Some(files), false).await;
    let to_b = [member("ca-b", &b)];
    assert!(!connect(&stranger, &to_b, "ca-b", Duration::from_secs(3)).await);
    assert_eq!(b.transport.connected(), vec!["ca-a".to_owned()]);
    assert_eq!(b.inbox.requests.lock().unwrap().len(), 1, "only a's request arrived");
    let err = stranger.transport.request("ca-b", run_now("m2"), Duration::from_secs(1)).await;
    assert!(matches!(err, Err(TransportError::NotConnected { .. })), "{err:?}");

    let refused = logs.warnings(&["rejected a cluster connection: tls failed"]);
    assert!(!refused.is_empty(), "{}", logs.text());
    assert!(refused.iter().all(|line| line.contains("peer_addr=127.0.0.1:")), "{refused:?}");
    let unknown = "invalid peer certificate: UnknownIssuer";
    assert!(refused.iter().any(|line| line.contains(unknown)), "{refused:?}");
    let connected = logs.text().lines().filter(|l| l.contains("cluster peer connected")).count();
    assert_eq!(connected, 2, "only a and b, one line each: {}", logs.text());
    for node in [a, b, stranger] {
        node.transport.shutdown().await;
    }
}

/// The length prefix of a frame one byte above the limit.
fn oversize_prefix() -> [u8; 8] {
    (FRAME_LIMIT + 1).to_be_bytes()
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection_is_logged_and_good_peers_still_connect() {
    let logs = Logs::default();
    let _guard = logs.install();
    let a = node("of-a", "secret", None, false).await;
    let b = node("of-b", "secret", None, false).await;

    // A raw client announces a frame one byte too large, before any handshake.
    let mut raw = TcpStream::connect(b.transport.local_addr()).await.unwrap();
    let raw_addr = raw.local_addr().unwrap().to_string();
    raw.write_all(&oversize_prefix()).await.unwrap();
    assert!(closed_by_peer(&mut raw).await, "b kept the connection open");
    let announced = format!("announced={}", FRAME_LIMIT + 1);
    let limit = format!("limit={FRAME_LIMIT}");
    let parts = [raw_addr.as_str(), &announced, &limit, "cluster.max_frame_bytes"];
    assert!(eventually(|| !logs.warnings(&parts).is_empty()).await, "{}", logs.text());

    // A real peer still connects and talks to b afterwards.
    assert!(connect(&a, &[member("of-b", &b)], "of-b", Duration::from_secs(5)).await);
    let reply = a.transport.request("of-b", run_now("m1"), Duration::from_secs(2)).await.unwrap();
    assert!(matches!(reply, PeerReply::Ran { .. }));

    // The limit also guards what a dialed peer sends: "of-a" sorts lower than "of-z", so it
    // dials the fake peer at once, which answers with an oversized frame.
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake.local_addr().unwrap().to_string();
    a.transport.connect_peers(&[("of-z".to_owned(), fake_addr.clone())]).await;
    let (mut dialed, _) = tokio::time::timeout(Duration::from_secs(5), fake.accept())
        .await
        .expect("a dialed the fake peer")
        .unwrap();
    dialed.write_all(&oversize_prefix()).await.unwrap();
    assert!(closed_by_peer(&mut dialed).await, "a kept the dialed connection open");
    let parts = [fake_addr.as_str(), &announced, "cluster.max_frame_bytes"];
    assert!(eventually(|| !logs.warnings(&parts).is_empty()).await, "{}", logs.text());
    assert_eq!(a.transport.connected(), vec!["of-b".to_owned()]);
    for node in [a, b] {
        node.transport.shutdown().await;
    }
}

/// A webhook delivery of about `bytes` bytes, as forwarded to a monitor's owner.
fn delivery(bytes: usize) -> PeerRequest {
    let alert = |n: usize| cloudroutes_checks::intake::AlertUpdate {
        key: format!("fp-{n}"),
        firing: true,
        summary: "x".repeat(1000),
    };
    let alerts = (0..bytes / 1000).map(alert).collect();
    let delivery = cloudroutes_checks::Delivery::Alerts(alerts);
    PeerRequest::Deliver { monitor_id: "m1".into(), delivery }
}

#[tokio::test]
async fn the_configured_limit_applies_and_the_default_carries_large_legitimate_messages() {
    let logs = Logs::default();
    let _guard = logs.install();
    let a = node("lim-a", "secret", None, false).await;
    let small = node_limited("lim-b", "secret", None, false, 64 * 1024).await;
    let roomy = node("lim-c", "secret", None, false).await;
    let peers = [member("lim-b", &small), member("lim-c", &roomy)];
    assert!(connect(&a, &peers, "lim-b", Duration::from_secs(5)).await);
    assert!(connect(&a, &peers, "lim-c", Duration::from_secs(5)).await);
    let timeout = Duration::from_secs(5);

    // A megabyte-sized delivery, many reads long, reaches a peer with the default limit.
    let reply = a.transport.request("lim-c", delivery(1_000_000), timeout).await.unwrap();
    assert!(matches!(reply, PeerReply::Observed { .. }), "{reply:?}");
    assert_eq!(roomy.inbox.requests.lock().unwrap().len(), 1);

    // Small messages reach the 64 KiB peer; a 100 KB one closes the session instead.
    let reply = a.transport.request("lim-b", run_now("m1"), timeout).await.unwrap();
    assert!(matches!(reply, PeerReply::Ran { .. }), "{reply:?}");
    assert!(a.transport.request("lim-b", delivery(100_000), timeout).await.is_err());
    assert_eq!(small.inbox.requests.lock().unwrap().len(), 1, "the large request never arrived");
    let parts = ["limit=65536", "cluster.max_frame_bytes"];
    assert!(eventually(|| !logs.warnings(&parts).is_empty()).await, "{}", logs.text());
    assert!(eventually(|| small.transport.connected().is_empty()).await);
    for node in [a, small, roomy] {
        node.transport.shutdown().await;
    }
}

#[tokio::test]
async fn an_oversized_frame_inside_tls_is_refused_too() {
    let logs = Logs::default();
    let _guard = logs.install();
    let dir = tempfile::tempdir().unwrap();
    let cluster_ca = ca(dir.path(), "cluster-ca");
    let files = signed(dir.path(), "b", &cluster_ca, "cluster-ca");
    let b = node("otls-b", "secret", Some(files.clone()), false).await;

    // A client with a good certificate passes TLS, then announces a frame that is too large.
    let tls = tls::Tls::load(&files).unwrap();
    let tcp = TcpStream::connect(b.transport.local_addr()).await.unwrap();
    let client_addr = tcp.local_addr().unwrap().to_string();
    let name = tls::server_name("127.0.0.1").unwrap();
    let mut stream = tls.connector.connect(name, tcp).await.unwrap();
    stream.write_all(&oversize_prefix()).await.unwrap();
    stream.flush().await.unwrap();
    assert!(closed_by_peer(&mut stream).await, "b kept the tls connection open");
    let announced = format!("announced={}", FRAME_LIMIT + 1);
    let parts = [client_addr.as_str(), &announced, "cluster.max_frame_bytes"];
    assert!(eventually(|| !logs.warnings(&parts).is_empty()).await, "{}", logs.text());
    assert!(b.transport.connected().is_empty());
    b.transport.shutdown().await;
}
