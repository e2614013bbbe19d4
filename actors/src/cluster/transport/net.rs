//! Sockets of the cluster port: the listener, dialing, TCP options, and which ractor_cluster
//! sessions are authenticated (and to which peer).
//!
//! We open the sockets ourselves and hand them to the `NodeServer` as `ConnectionOpenedExternal`,
//! rather than let its listener and `client_connect_enc` do it, for four reasons: a TLS handshake
//! that never finishes would block its single accept loop; we can set TCP keepalive and
//! `TCP_USER_TIMEOUT` so a silently dead peer's session closes in seconds instead of ~15 minutes;
//! a failed handshake can be logged with the peer's address; and every stream is wrapped in a
//! [`FrameLimited`] that refuses oversized frames (see `frames.rs`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorId, ActorRef};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{ClusterBidiStream, NodeEventSubscription, NodeServerMessage};
use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use super::frames::FrameLimited;
use super::{HIGHER_ID_GRACE, REDIAL_AFTER, TransportError};

/// Bound on TCP connect plus TLS handshake when dialing.
pub(super) const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on an incoming TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Unacknowledged data older than this kills the connection (sessions ping every 1–5 s).
#[cfg(target_os = "linux")]
const USER_TIMEOUT: Duration = Duration::from_secs(8);

/// Splits `host:port` (or `[v6]:port`) into host and port.
pub(super) fn split_host_port(addr: &str) -> Result<(&str, u16), TransportError> {
    let bad = |why: &str| TransportError::Start {
        message: format!("cluster address `{addr}` is not host:port: {why}"),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port = port.parse().map_err(|_| bad("bad port"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host, port))
}

/// Binds the cluster port: exactly the given IP, or every IPv4 interface for a host name.
pub(super) async fn bind(listen: &str) -> Result<TcpListener, TransportError> {
    let (host, port) = split_host_port(listen)?;
    let ip = host.parse::<IpAddr>().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).await.map_err(|err| TransportError::Start {
        message: format!("cannot listen on {addr} (cluster address {listen}): {err}"),
    })
}

/// Accepts peers forever, each handshake in its own task, and hands them to the node server
/// with frames above `max_frame_bytes` refused.
pub(super) async fn accept_forever(
    listener: TcpListener,
    server: ActorRef<NodeServerMessage>,
    tls: Option<TlsAcceptor>,
    max_frame_bytes: u64,
) {
    loop {
        let (stream, peer_addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(error = %err, "cannot accept a cluster connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (server, tls) = (server.clone(), tls.clone());
        tokio::spawn(async move {
            let Ok(local_addr) = stream.local_addr() else { return };
            configure_socket(&stream);
            let network: Box<dyn ClusterBidiStream> = match tls {
                None => Box::new(FrameLimited::new(stream, peer_addr, local_addr, max_frame_bytes)),
                Some(acceptor) => match timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        Box::new(FrameLimited::new(stream, peer_addr, local_addr, max_frame_bytes))
                    }
                    Ok(Err(err)) => {
                        warn!(%peer_addr, error = %err, "rejected a cluster connection: tls failed");
                        return;
                    }
                    Err(_) => {
                        warn!(%peer_addr, "rejected a cluster connection: tls handshake timed out");
                        return;
                    }
                },
            };
            let opened =
                NodeServerMessage::ConnectionOpenedExternal { stream: network, is_server: true };
            if server.cast(opened).is_err() {
                debug!(%peer_addr, "node server stopped; dropping a cluster connection");
            }
        });
    }
}

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("{0}")]
    Address(String),
    #[error("tcp connect failed: {0}")]
    Connect(std::io::Error),
    #[error("tls handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("no connection within {DIAL_TIMEOUT:?}")]
    Timeout,
    #[error("the node server stopped")]
    Stopped,
}

/// Opens a session to the peer at `addr`; returns once TCP (and TLS) is up. The cookie
/// handshake continues inside the node server. The peer's frames are limited like an accepted
/// peer's.
async fn dial(
    server: &ActorRef<NodeServerMessage>,
    addr: &str,
    tls: Option<&TlsConnector>,
    max_frame_bytes: u64,
) -> Result<(), DialError> {
    let (host, _) = split_host_port(addr).map_err(|err| DialError::Address(err.to_string()))?;
    let open = async {
        let stream = TcpStream::connect(addr).await.map_err(DialError::Connect)?;
        configure_socket(&stream);
        let peer_addr = stream.peer_addr().map_err(DialError::Connect)?;
        let local_addr = stream.local_addr().map_err(DialError::Connect)?;
        let network: Box<dyn ClusterBidiStream> = match tls {
            None => Box::new(FrameLimited::new(stream, peer_addr, local_addr, max_frame_bytes)),
            Some(connector) => {
                let name = super::tls::server_name(host).map_err(DialError::Address)?;
                let stream = connector.connect(name, stream).await.map_err(DialError::Tls)?;
                Box::new(FrameLimited::new(stream, peer_addr, local_addr, max_frame_bytes))
            }
        };
        Ok(network)
    };
    let network = timeout(DIAL_TIMEOUT, open).await.map_err(|_| DialError::Timeout)??;
    let opened = NodeServerMessage::ConnectionOpenedExternal { stream: network, is_server: false };
    server.cast(opened).map_err(|_| DialError::Stopped)
}

/// Dialing progress towards one listed, unconnected peer.
pub(super) struct Dial {
    listed_since: Instant,
    pub(super) last_attempt: Option<Instant>,
    progress: Arc<DialProgress>,
}

/// What a running dial reports back.
#[derive(Default)]
pub(super) struct DialProgress {
    in_flight: AtomicBool,
    failures: AtomicU32,
}

impl Dial {
    /// Starts tracking a peer first listed at `now`.
    pub(super) fn new(now: Instant) -> Self {
        Self { listed_since: now, last_attempt: None, progress: Arc::default() }
    }

    /// True when no dial is running, the last one is old enough, and this node may dial: the
    /// lower id at once, the higher one only after [`HIGHER_ID_GRACE`].
    pub(super) fn is_due(&self, now: Instant, this_id_sorts_lower: bool) -> bool {
        !self.progress.in_flight.load(Ordering::SeqCst)
            && self.last_attempt.is_none_or(|last| now - last >= REDIAL_AFTER)
            && (this_id_sorts_lower || now - self.listed_since >= HIGHER_ID_GRACE)
    }

    /// Marks a dial as started at `now`; the returned progress goes to [`dial_and_log`].
    pub(super) fn begin(&mut self, now: Instant) -> Arc<DialProgress> {
        self.last_attempt = Some(now);
        self.progress.in_flight.store(true, Ordering::SeqCst);
        Arc::clone(&self.progress)
    }
}

/// Dials `node` at `addr` and logs the outcome: TLS failures, and a peer still unreachable
/// after 4, 8, 16, … tries, as warnings.
pub(super) async fn dial_and_log(
    server: ActorRef<NodeServerMessage>,
    tls: Option<TlsConnector>,
    max_frame_bytes: u64,
    node: String,
    addr: String,
    progress: Arc<DialProgress>,
) {
    match dial(&server, &addr, tls.as_ref(), max_frame_bytes).await {
        Ok(()) => debug!(peer = %node, %addr, "dialed cluster peer"),
        Err(err) => {
            let failures = progress.failures.fetch_add(1, Ordering::SeqCst) + 1;
            if matches!(err, DialError::Tls(_)) || (failures >= 4 && failures.is_power_of_two()) {
                warn!(peer = %node, %addr, failures, error = %err, "cannot connect to cluster peer");
            } else {
                debug!(peer = %node, %addr, error = %err, "cannot connect to cluster peer");
            }
        }
    }
    progress.in_flight.store(false, Ordering::SeqCst);
}

/// Sets no-delay, TCP keepalive and (Linux) `TCP_USER_TIMEOUT`; failures only cost liveness.
fn configure_socket(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let socket = SockRef::from(stream);
    let keepalive = TcpKeepalive::new().with_time(Duration::from_secs(5));
    #[cfg(target_os = "linux")]
    let keepalive = keepalive.with_interval(Duration::from_secs(2)).with_retries(3);
    if let Err(err) = socket.set_tcp_keepalive(&keepalive) {
        debug!(error = %err, "cannot set tcp keepalive on a cluster socket");
    }
    #[cfg(target_os = "linux")]
    if let Err(err) = socket.set_tcp_user_timeout(Some(USER_TIMEOUT)) {
        debug!(error = %err, "cannot set tcp user timeout on a cluster socket");
    }
}

/// Authenticated sessions of one node server: session actor id → (peer node id, session).
#[derive(Clone, Default)]
pub(super) struct Sessions(Arc<Mutex<HashMap<ActorId, (String, ActorCell)>>>);

impl Sessions {
    /// Returns the authenticated sessions to node `peer` (more than one only briefly).
    pub(super) fn to(&self, peer: &str) -> Vec<ActorCell> {
        let sessions = self.lock();
        sessions.values().filter(|(node, _)| node == peer).map(|(_, cell)| cell.clone()).collect()
    }

    /// Returns the peer node ids with an authenticated session.
    pub(super) fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self.lock().values().map(|(node, _)| node.clone()).collect();
        peers.sort();
        peers.dedup();
        peers
    }

    /// Forgets every session (the server stopped).
    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ActorId, (String, ActorCell)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Returns the node id part of a ractor_cluster node name (`node_id@hostname`).
fn node_id_of(name: &str) -> &str {
    name.rsplit_once('@').map_or(name, |(node_id, _)| node_id)
}

impl NodeEventSubscription for Sessions {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        debug!(peer_addr = %ses.peer_addr, incoming = ses.is_server, "cluster session opened");
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let Some(name) = ses.peer_name else { return };
        let peer = node_id_of(&name.name).to_owned();
        info!(peer = %peer, peer_addr = %ses.peer_addr, "cluster peer connected");
        self.lock().insert(ses.actor.get_id(), (peer, ses.actor.get_cell()));
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        match self.lock().remove(&ses.actor.get_id()) {
            Some((peer, _)) => {
                info!(peer = %peer, peer_addr = %ses.peer_addr, "cluster peer disconnected")
            }
            None => warn!(
                peer_addr = %ses.peer_addr,
                peer = ses.peer_name.as_ref().map_or("unknown", |name| node_id_of(&name.name)),
                "cluster session closed before authenticating: wrong cookie, a duplicate \
                 connection or an incompatible peer"
            ),
        }
    }
}
