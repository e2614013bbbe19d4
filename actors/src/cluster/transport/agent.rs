//! The agent: this node's only remotable actor, registered as [`agent_name`] of the node id.
//! Peers send it requests and notices as wire envelopes.
//!
//! The agent never waits on the inbox: each request runs in its own task (a run-now can take
//! seconds) and answers through the RPC port; notices go, in arrival order, to one worker task.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::PeerInbox;
use crate::cluster::wire::{self, PeerNotice, PeerReply, PeerRequest};

/// Prefix of each node's agent name; the node id follows.
const NAME_PREFIX: &str = "cloudroutes.agent.";

/// Requests answered at once; beyond this a request is refused as busy.
const MAX_REQUESTS_IN_FLIGHT: usize = 256;

/// Returns the name of a node's agent; sessions advertise it with the agent, so a peer's
/// mirror of the agent carries it too.
pub(super) fn agent_name(node_id: &str) -> String {
    format!("{NAME_PREFIX}{node_id}")
}

/// The agent's messages; payloads are [`wire`] envelopes. Variant names travel on the wire:
/// never rename one.
#[derive(RactorClusterMessage)]
pub(super) enum AgentMsg {
    /// A [`PeerNotice`] envelope.
    Notice(Vec<u8>),
    /// A [`PeerRequest`] envelope, answered with a [`PeerReply`] envelope.
    #[rpc]
    Request(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// The agent actor of node `node_id`.
pub(super) struct Agent {
    pub(super) node_id: String,
}

/// The agent's state.
pub(super) struct AgentState {
    inbox: Arc<dyn PeerInbox>,
    permits: Arc<Semaphore>,
    notices: mpsc::UnboundedSender<Vec<u8>>,
    notice_worker: JoinHandle<()>,
}

impl Actor for Agent {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = Arc<dyn PeerInbox>;

    async fn pre_start(
        &self,
        _myself: ActorRef<AgentMsg>,
        inbox: Arc<dyn PeerInbox>,
    ) -> Result<AgentState, ActorProcessingErr> {
        let (notices, queue) = mpsc::unbounded_channel();
        let notice_worker = tokio::spawn(deliver_notices(Arc::clone(&inbox), queue));
        let permits = Arc::new(Semaphore::new(MAX_REQUESTS_IN_FLIGHT));
        Ok(AgentState { inbox, permits, notices, notice_worker })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<AgentMsg>,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        state.notice_worker.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<AgentMsg>,
        message: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AgentMsg::Notice(bytes) => {
                // The worker only stops with the agent, so a failed send loses nothing new.
                let _ = state.notices.send(bytes);
            }
            AgentMsg::Request(bytes, reply) => self.start_answering(state, bytes, reply),
        }
        Ok(())
    }
}

impl Agent {
    /// Answers one request in its own task, or refuses it at once when too many are running.
    fn start_answering(&self, state: &AgentState, bytes: Vec<u8>, reply: RpcReplyPort<Vec<u8>>) {
        let node_id = self.node_id.clone();
        let Ok(permit) = Arc::clone(&state.permits).try_acquire_owned() else {
            let busy = PeerReply::Failed {
                message: format!("node {node_id} is busy: too many peer requests in flight"),
            };
            send_reply(&node_id, reply, &busy);
            return;
        };
        let inbox = Arc::clone(&state.inbox);
        tokio::spawn(async move {
            let _permit = permit;
            let answer = match wire::decode::<PeerRequest>(&bytes) {
                Ok((from, request)) => inbox.request(&from, request).await,
                Err(err) => {
                    warn!(error = %err, "cannot decode a peer request");
                    PeerReply::Failed { message: format!("node {node_id}: {err}") }
                }
            };
            send_reply(&node_id, reply, &answer);
        });
    }
}

/// Sends `answer` through the RPC port; a caller that gave up is not an error.
fn send_reply(node_id: &str, reply: RpcReplyPort<Vec<u8>>, answer: &PeerReply) {
    match wire::encode(node_id, answer) {
        Ok(bytes) => {
            if reply.send(bytes).is_err() {
                debug!("peer request answered after the caller gave up");
            }
        }
        Err(err) => warn!(error = %err, "cannot encode a peer reply"),
    }
}

/// Hands notices to the inbox one at a time, in arrival order.
async fn deliver_notices(inbox: Arc<dyn PeerInbox>, mut queue: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(bytes) = queue.recv().await {
        match wire::decode::<PeerNotice>(&bytes) {
            Ok((from, notice)) => inbox.notice(&from, notice).await,
            Err(err) => warn!(error = %err, "cannot decode a peer notice"),
        }
    }
}
