//! Routing between cluster nodes: results and run-now requests for a monitor owned elsewhere
//! go to its owner, definition changes are announced to whoever runs them, and this node's
//! inbox answers its peers. Every caller tolerates a message that never arrives: definitions
//! are in the store first, and reconciliation repairs what a lost notice missed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use cloudroutes_checks::MAX_CHECK_TIMEOUT;
use cloudroutes_engine::{CheckOutcome, Method, Monitor, MonitorId, MonitorState};
use tracing::debug;

use super::{CALL_TIMEOUT, Inner, MonitorView, Node, cluster::Owner};
use crate::cluster::transport::PeerInbox;
use crate::cluster::wire::{PeerNotice, PeerReply, PeerRequest};
use crate::error::NodeError;

/// How long a node waits for a peer to answer a routed result.
const ROUTED_TIMEOUT: Duration = CALL_TIMEOUT;

impl Node {
    /// Returns this node's inbox for the transport (it holds the node weakly).
    pub fn inbox(&self) -> Arc<NodeInbox> {
        Arc::new(NodeInbox { node: Arc::downgrade(&self.inner) })
    }

    /// Installs the node-to-node transport (cluster mode).
    pub fn attach_transport(&self, transport: crate::cluster::transport::Transport) {
        if let Some(cluster) = self.cluster() {
            let _ = cluster.transport.set(transport);
        }
    }

    /// Sends a notice to one peer; a lost notice is repaired by reconciliation.
    pub(crate) fn notify(&self, node: &str, notice: PeerNotice) {
        let Some(transport) = self.cluster().and_then(|c| c.transport.get()) else { return };
        if let Err(err) = transport.notify(node, notice) {
            debug!(peer = node, error = %err, "notice not delivered; reconciliation will repair it");
        }
    }

    /// Sends a notice to every peer.
    pub(crate) fn broadcast(&self, notice: PeerNotice) {
        if let Some(transport) = self.cluster().and_then(|c| c.transport.get()) {
            transport.broadcast(notice);
        }
    }

    async fn ask(
        &self,
        node: &str,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerReply, NodeError> {
        let Some(transport) = self.cluster().and_then(|c| c.transport.get()) else {
            return Err(NodeError::Unavailable(format!(
                "node {node} owns this monitor, and this node has no cluster transport \
                 (set cluster.addr) to reach it"
            )));
        };
        transport.request(node, request, timeout).await.map_err(|err| {
            NodeError::Unavailable(format!(
                "the owner of this monitor, node {node}, did not answer: {err}"
            ))
        })
    }

    pub(crate) async fn run_now_remote(
        &self,
        node: &str,
        monitor: Monitor,
    ) -> Result<(CheckOutcome, MonitorView), NodeError> {
        let request = PeerRequest::RunNow { monitor_id: monitor.id.clone() };
        match self.ask(node, request, ROUTED_TIMEOUT + MAX_CHECK_TIMEOUT).await? {
            PeerReply::Ran { outcome, state } => Ok((outcome, MonitorView { monitor, state })),
            other => Err(unexpected(node, &monitor.id, other)),
        }
    }

    pub(crate) async fn observe_remote(
        &self,
        node: &str,
        id: &MonitorId,
        outcome: CheckOutcome,
        method: Method,
    ) -> Result<MonitorState, NodeError> {
        let request = PeerRequest::Observe { monitor_id: id.clone(), outcome, method };
        match self.ask(node, request, ROUTED_TIMEOUT).await? {
            PeerReply::Observed { state } => Ok(state),
            other => Err(unexpected(node, id, other)),
        }
    }

    pub(crate) async fn deliver_remote(
        &self,
        node: &str,
        id: &MonitorId,
        delivery: cloudroutes_checks::Delivery,
    ) -> Result<MonitorState, NodeError> {
        let request = PeerRequest::Deliver { monitor_id: id.clone(), delivery };
        match self.ask(node, request, ROUTED_TIMEOUT).await? {
            PeerReply::Observed { state } => Ok(state),
            other => Err(unexpected(node, id, other)),
        }
    }

    /// Answers a peer's request for a monitor this node should own.
    async fn answer(&self, request: PeerRequest) -> PeerReply {
        let id = match &request {
            PeerRequest::RunNow { monitor_id }
            | PeerRequest::Observe { monitor_id, .. }
            | PeerRequest::Deliver { monitor_id, .. } => monitor_id.clone(),
        };
        if !matches!(self.owner(&id), Owner::Local) {
            return PeerReply::NotOwner;
        }
        let result = match request {
            PeerRequest::RunNow { monitor_id } => match self.stored_monitor(&monitor_id).await {
                Ok(monitor) => self
                    .run_now_local(&monitor_id, monitor)
                    .await
                    .map(|(outcome, view)| PeerReply::Ran { outcome, state: view.state }),
                Err(err) => Err(err),
            },
            PeerRequest::Observe { monitor_id, outcome, method } => self
                .observe_local(&monitor_id, outcome, method)
                .await
                .map(|state| PeerReply::Observed { state }),
            PeerRequest::Deliver { monitor_id, delivery } => self
                .deliver_local(&monitor_id, delivery)
                .await
                .map(|state| PeerReply::Observed { state }),
        };
        result.unwrap_or_else(|err| match err {
            NodeError::NotFound { .. } => PeerReply::NotFound,
            err => PeerReply::Failed { message: err.to_string() },
        })
    }

    /// Acts on a peer's notice of a definition change.
    async fn take_notice(&self, notice: PeerNotice) {
        match notice {
            PeerNotice::MonitorChanged { monitor_id } => {
                if !matches!(self.owner(&monitor_id), Owner::Local) {
                    return;
                }
                match self.inner.parts.store.get_monitor(&monitor_id).await {
                    Ok(Some(monitor)) => self.apply_monitor(monitor).await,
                    Ok(None) => self.forget_monitor(&monitor_id).await,
                    Err(err) => {
                        debug!(error = %err, "cannot read a changed monitor; reconciliation will")
                    }
                }
            }
            PeerNotice::MonitorDeleted { monitor_id } => self.forget_monitor(&monitor_id).await,
            PeerNotice::ReactionChanged { reaction_id } => {
                match self.inner.parts.store.get_reaction(&reaction_id).await {
                    Ok(Some(reaction)) => {
                        if let Ok(loaded) = self.build_reaction(reaction) {
                            self.inner.parts.book.insert(loaded);
                        }
                    }
                    Ok(None) => {
                        self.inner.parts.book.remove(&reaction_id);
                    }
                    Err(err) => {
                        debug!(error = %err, "cannot read a changed reaction; reconciliation will")
                    }
                }
            }
            PeerNotice::ReactionDeleted { reaction_id } => {
                self.inner.parts.book.remove(&reaction_id);
            }
        }
    }
}

fn unexpected(node: &str, id: &MonitorId, reply: PeerReply) -> NodeError {
    match reply {
        PeerReply::NotFound => NodeError::NotFound { what: "monitor", id: id.to_string() },
        PeerReply::NotOwner => NodeError::Unavailable(format!(
            "monitor `{id}` is being handed over between nodes (node {node} no longer runs it); \
             retry in a few seconds"
        )),
        PeerReply::Failed { message } => NodeError::Unavailable(format!("node {node}: {message}")),
        other => NodeError::Unavailable(format!("node {node} answered out of turn: {other:?}")),
    }
}

/// The node's inbox for peer requests and notices.
pub struct NodeInbox {
    node: Weak<Inner>,
}

impl NodeInbox {
    fn node(&self) -> Option<Node> {
        self.node.upgrade().map(|inner| Node { inner })
    }
}

#[async_trait]
impl PeerInbox for NodeInbox {
    async fn request(&self, _from: &str, request: PeerRequest) -> PeerReply {
        match self.node() {
            Some(node) => node.answer(request).await,
            None => PeerReply::Failed { message: "node is stopping".into() },
        }
    }

    async fn notice(&self, _from: &str, notice: PeerNotice) {
        if let Some(node) = self.node() {
            node.take_notice(notice).await;
        }
    }
}
