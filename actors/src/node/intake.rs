//! Webhook deliveries for checks that keep their own memory (heartbeat pings, alert updates):
//! they go to the monitor's actor on its owner node, which folds them in and reports what
//! they mean.

use cloudroutes_checks::Delivery;
use cloudroutes_engine::{MonitorId, MonitorState};

use super::{CALL_TIMEOUT, Node, call, cluster};
use crate::error::NodeError;
use crate::monitor::MonitorMsg;
use crate::router::RouterMsg;
use crate::supervisor::SupervisorMsg;

impl Node {
    /// Hands a webhook delivery to the monitor's own check on its owner node and returns the
    /// monitor's state afterwards.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when the monitor is not running (disabled); `Unavailable` when
    /// its owner does not answer.
    pub async fn deliver(
        &self,
        id: &MonitorId,
        delivery: Delivery,
    ) -> Result<MonitorState, NodeError> {
        match self.owner(id) {
            cluster::Owner::Local => self.deliver_local(id, delivery).await,
            cluster::Owner::Remote(node) => self.deliver_remote(&node, id, delivery).await,
            cluster::Owner::Moving(message) => Err(NodeError::Unavailable(message)),
        }
    }

    /// Delivers to a monitor this node owns.
    pub(crate) async fn deliver_local(
        &self,
        id: &MonitorId,
        delivery: Delivery,
    ) -> Result<MonitorState, NodeError> {
        let actor =
            call(&self.supervisor()?, |port| SupervisorMsg::Lookup(id.clone(), port)).await?;
        let Some(actor) = actor else {
            self.stored_monitor(id).await?;
            return Err(NodeError::Conflict(format!(
                "monitor `{id}` is not running (it is disabled), so it takes no deliveries"
            )));
        };
        match actor.call(|port| MonitorMsg::Deliver(delivery, port), Some(CALL_TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success(_)) => {}
            _ => return Err(NodeError::Unavailable("monitor did not answer".into())),
        }
        // The actor reported to the router by cast; a flush round trip orders us after it.
        call(&self.router(id)?, RouterMsg::Flush).await?;
        self.state_of(id).await
    }
}
