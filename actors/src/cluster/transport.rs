//! The node-to-node transport: a ractor_cluster `NodeServer` (cookie-authenticated, mutual TLS
//! when configured) and this node's agent, the only remotable actor, which hands peers'
//! requests and notices to a [`PeerInbox`].
//!
//! Liveness and ownership come from Redis, not from here: every message may be lost, and a
//! caller treats any error as "not delivered". There is no automatic reconnect in
//! ractor_cluster; [`Transport::connect_peers`], called every couple of seconds with the live
//! members, is the reconnect loop. Of two peers, the one whose id sorts lower dials; the other
//! dials too only when the peer is still unreachable after [`HIGHER_ID_GRACE`], so a one-way
//! reachability problem still heals.
//!
//! Each node's agent is named `cloudroutes.agent.<node id>`. After the cookie handshake a session
//! mirrors every remotable actor of the peer as a `RemoteActor` child carrying its name, so the
//! peer's agent is the child of this node's session *to that peer* with the peer's agent name.
//! (pg groups are not used: they key members by `ActorId`, and the mirrors made by two node
//! servers in one process, as in tests, get equal ids because each server numbers its sessions
//! from 0, so they overwrite each other.)

mod agent;
mod frames;
mod net;
mod tls;

#[cfg(test)]
mod rejection_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ractor::{Actor, ActorRef, rpc::CallResult};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{IncomingEncryptionMode, NodeServer, NodeServerMessage};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tracing::{debug, warn};

use self::agent::{Agent, AgentMsg, agent_name};
use self::net::{Dial, Sessions};
use crate::cluster::wire::{self, PeerNotice, PeerReply, PeerRequest, WireError};

/// Minimum time between two dials of one unreachable peer.
pub const REDIAL_AFTER: Duration = Duration::from_secs(3);
/// How long the node whose id sorts higher waits for the lower one to dial before dialing.
pub const HIGHER_ID_GRACE: Duration = Duration::from_secs(6);
/// Extra time ractor gets on a call, so the caller's own deadline always fires first.
const CALL_GRACE: Duration = Duration::from_secs(1);

/// Receives what peers send to this node. Implemented by the node.
#[async_trait]
pub trait PeerInbox: Send + Sync + 'static {
    /// Answers a request from node `from`.
    async fn request(&self, from: &str, request: PeerRequest) -> PeerReply;
    /// Takes a notice from node `from`; notices arrive one at a time, in order.
    async fn notice(&self, from: &str, notice: PeerNotice);
}

/// PEM files for mutual TLS on the cluster port.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// This node's certificate chain. It must name the host of the node's cluster address, and
    /// (if it lists extended key usages) allow both server and client authentication.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
    /// The CA that signs peers' certificates; without it, peers must present this node's
    /// own certificate (one self-signed certificate shared by all nodes).
    pub ca: Option<PathBuf>,
}

/// How to start the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// This node's id, as registered in Redis.
    pub node_id: String,
    /// `host:port` to listen on, also the address peers dial (port 0 picks a free port).
    pub listen: String,
    /// Shared secret every node of the cluster must present.
    pub cookie: String,
    /// Mutual TLS; `None` is plain TCP.
    pub tls: Option<TlsFiles>,
    /// Largest frame a peer may announce, in bytes (`cluster.max_frame_bytes`); a peer that
    /// announces a larger one, before or after the cookie handshake, is disconnected.
    pub max_frame_bytes: u64,
}

/// Why a message to a peer was not delivered, or the transport did not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No session to the peer's agent.
    #[error("cluster peer `{node}` is not connected")]
    NotConnected {
        /// The peer.
        node: String,
    },
    /// The peer did not answer in time.
    #[error("cluster peer `{node}` did not answer within {timeout_ms} ms")]
    Timeout {
        /// The peer.
        node: String,
        /// The time allowed.
        timeout_ms: u64,
    },
    /// The request was sent but no answer can come back.
    #[error("request to cluster peer `{node}` failed: {message}")]
    Failed {
        /// The peer.
        node: String,
        /// What went wrong.
        message: String,
    },
    /// The message could not be encoded.
    #[error("cannot encode a message for cluster peer `{node}`: {source}")]
    Encode {
        /// The peer.
        node: String,
        /// The encoding error.
        source: WireError,
    },
    /// The peer's answer could not be decoded.
    #[error("cannot decode the answer of cluster peer `{node}`: {source}")]
    Decode {
        /// The peer.
        node: String,
        /// The decoding error.
        source: WireError,
    },
    /// The transport could not start.
    #[error("cannot start the cluster transport: {message}")]
    Start {
        /// What went wrong.
        message: String,
    },
}

/// The cluster transport of one node. Cheap to clone; [`Transport::shutdown`] stops it.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: String,
    local_addr: SocketAddr,
    server: ActorRef<NodeServerMessage>,
    agent: ActorRef<AgentMsg>,
    connector: Option<TlsConnector>,
    max_frame_bytes: u64,
    sessions: Sessions,
    dials: Mutex<HashMap<String, Dial>>,
    accept_task: JoinHandle<()>,
    stopped: AtomicBool,
}

impl Transport {
    /// Starts listening on `config.listen`, registers this node's agent and returns the running
    /// transport.
    ///
    /// # Errors
    /// [`TransportError::Start`] when the address is malformed, the port cannot be bound, the
    /// TLS files are unreadable or do not fit, or the actors fail to start.
    pub async fn start(
        config: TransportConfig,
        inbox: Arc<dyn PeerInbox>,
    ) -> Result<Self, TransportError> {
        let failed = |message: String| TransportError::Start { message };
        if config.node_id.is_empty() {
            return Err(failed("the node id is empty".into()));
        }
        if config.max_frame_bytes == 0 {
            return Err(failed("the maximum frame size is 0".into()));
        }
        if config.cookie.is_empty() {
            warn!("the cluster cookie is empty: any host that reaches the cluster port can join");
        }
        let (host, _) = net::split_host_port(&config.listen)?;
        let tls = config.tls.as_ref().map(tls::Tls::load).transpose()?;
        let listener = net::bind(&config.listen).await?;
        let local_addr = listener.local_addr().map_err(|err| failed(err.to_string()))?;

        let node_id = config.node_id.clone();
        let name = Some(agent_name(&node_id));
        let (agent, _) = Actor::spawn(name, Agent { node_id: node_id.clone() }, inbox)
            .await
            .map_err(|err| failed(format!("cannot start the agent: {err}")))?;

        // The server's own listener is unused (we accept on `listener`): keep it on loopback,
        // with the same encryption. Isolated: only Redis members are dialed, by us. Its own
        // frame limit matches ours, which applies first (and logs the peer).
        let encryption = match &tls {
            Some(tls) => IncomingEncryptionMode::Tls(tls.acceptor.clone()),
            None => IncomingEncryptionMode::Raw,
        };
        let server = NodeServer::new(
            0,
            config.cookie,
            node_id.clone(),
            host.to_owned(),
            Some(encryption),
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(Ipv4Addr::LOCALHOST.into())
        .with_max_inbound_frame_size(config.max_frame_bytes);
        let server = match Actor::spawn(None, server, ()).await {
            Ok((server, _)) => server,
            Err(err) => {
                agent.stop(None);
                return Err(failed(format!("cannot start the node server: {err}")));
            }
        };
        let sessions = Sessions::default();
        let subscribe = NodeServerMessage::SubscribeToEvents {
            id: "cloudroutes-transport".into(),
            subscription: Box::new(sessions.clone()),
        };
        if let Err(err) = server.cast(subscribe) {
            agent.stop(None);
            server.stop(None);
            return Err(failed(format!("the node server stopped at once: {err}")));
        }
        let acceptor = tls.as_ref().map(|tls| tls.acceptor.clone());
        let max_frame_bytes = config.max_frame_bytes;
        let accept_task =
            tokio::spawn(net::accept_forever(listener, server.clone(), acceptor, max_frame_bytes));
        let inner = Inner {
            node_id,
            local_addr,
            server,
            agent,
            connector: tls.map(|tls| tls.connector),
            max_frame_bytes,
            sessions,
            dials: Mutex::new(HashMap::new()),
            accept_task,
            stopped: AtomicBool::new(false),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Returns the address the cluster port is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Dials every listed peer (node id, cluster address) that has no session yet, in background
    /// tasks bounded by a few seconds; returns at once. Idempotent: a peer is dialed at most
    /// every [`REDIAL_AFTER`], and by the node whose id sorts higher only after
    /// [`HIGHER_ID_GRACE`]. Peers that are not listed are left alone.
    pub async fn connect_peers(&self, peers: &[(String, String)]) {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut dials = self.inner.dials.lock().unwrap_or_else(PoisonError::into_inner);
            dials.retain(|node, _| peers.iter().any(|(listed, _)| listed == node));
            for (node, addr) in peers {
                if *node == self.inner.node_id || self.peer_agent(node).is_some() {
                    dials.remove(node);
                    continue;
                }
                let dial = dials.entry(node.clone()).or_insert_with(|| Dial::new(now));
                if dial.is_due(now, self.inner.node_id < *node) {
                    due.push((node.clone(), addr.clone(), dial.begin(now)));
                }
            }
        }
        for (node, addr, progress) in due {
            let (server, connector) = (self.inner.server.clone(), self.inner.connector.clone());
            let limit = self.inner.max_frame_bytes;
            tokio::spawn(net::dial_and_log(server, connector, limit, node, addr, progress));
        }
    }

    /// Returns the peers (node ids) whose agent is currently reachable, sorted.
    pub fn connected(&self) -> Vec<String> {
        let peers = self.inner.sessions.peers();
        peers.into_iter().filter(|peer| self.peer_agent(peer).is_some()).collect()
    }

    /// Asks `node` and waits at most `timeout` for its answer.
    ///
    /// # Errors
    /// [`TransportError::NotConnected`] at once when there is no session to `node`,
    /// [`TransportError::Timeout`] when no answer came in time, [`TransportError::Failed`] when
    /// the session closed first; in every case the request may or may not have been handled.
    pub async fn request(
        &self,
        node: &str,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerReply, TransportError> {
        let agent = self.peer_agent(node).ok_or_else(|| not_connected(node))?;
        let bytes = wire::encode(&self.inner.node_id, &request)
            .map_err(|source| TransportError::Encode { node: node.to_owned(), source })?;
        let call = agent.call(|port| AgentMsg::Request(bytes, port), Some(timeout + CALL_GRACE));
        let timed_out = || TransportError::Timeout {
            node: node.to_owned(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let answer = match tokio::time::timeout(timeout, call).await {
            Err(_) | Ok(Ok(CallResult::Timeout)) => return Err(timed_out()),
            Ok(Err(_)) => return Err(not_connected(node)),
            Ok(Ok(CallResult::SenderError)) => {
                return Err(TransportError::Failed {
                    node: node.to_owned(),
                    message: "the session closed before the answer came".into(),
                });
            }
            Ok(Ok(CallResult::Success(answer))) => answer,
        };
        let (_, reply) = wire::decode::<PeerReply>(&answer)
            .map_err(|source| TransportError::Decode { node: node.to_owned(), source })?;
        Ok(reply)
    }

    /// Sends a notice to `node` without waiting; delivery is not confirmed.
    ///
    /// # Errors
    /// [`TransportError::NotConnected`] when there is no session to `node`.
    pub fn notify(&self, node: &str, notice: PeerNotice) -> Result<(), TransportError> {
        let agent = self.peer_agent(node).ok_or_else(|| not_connected(node))?;
        let bytes = wire::encode(&self.inner.node_id, &notice)
            .map_err(|source| TransportError::Encode { node: node.to_owned(), source })?;
        agent.cast(AgentMsg::Notice(bytes)).map_err(|_| not_connected(node))
    }

    /// Sends a notice to every connected peer; peers that cannot take it are skipped.
    pub fn broadcast(&self, notice: PeerNotice) {
        for peer in self.connected() {
            if let Err(err) = self.notify(&peer, notice.clone()) {
                debug!(peer = %peer, error = %err, "notice not delivered");
            }
        }
    }

    /// Closes every session and stops listening; later calls find no peer. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner.accept_task.abort();
        let wait = Some(Duration::from_secs(2));
        let _ = self.inner.agent.stop_and_wait(Some("shutdown".into()), wait).await;
        let _ = self.inner.server.stop_and_wait(Some("shutdown".into()), wait).await;
        self.inner.sessions.clear();
    }

    /// Returns the agent of `node` as mirrored by this node's own session to `node`.
    fn peer_agent(&self, node: &str) -> Option<ActorRef<AgentMsg>> {
        if node == self.inner.node_id || self.inner.stopped.load(Ordering::SeqCst) {
            return None;
        }
        let name = agent_name(node);
        self.inner
            .sessions
            .to(node)
            .into_iter()
            .flat_map(|session| session.get_children())
            .find(|cell| !cell.get_id().is_local() && cell.get_name().as_deref() == Some(&*name))
            .map(ActorRef::from)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A transport dropped without `shutdown` must not leave its actors running.
        self.accept_task.abort();
        self.agent.stop(None);
        self.server.stop(None);
    }
}

fn not_connected(node: &str) -> TransportError {
    TransportError::NotConnected { node: node.to_owned() }
}
