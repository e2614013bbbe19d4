//! Monitor operations of the node facade: create, replace, read, list, delete, run now,
//! results from outside (manual, webhook) and history. In a cluster, what must happen on a
//! monitor's owner happens there: locally, or by a message to the owner.

use std::sync::Arc;

use cloudroutes_checks::{CheckConfig, MAX_CHECK_TIMEOUT};
use cloudroutes_engine::gate::Observation;
use cloudroutes_engine::{
    CheckOutcome, Event, Method, Monitor, MonitorId, MonitorState, ReactionId, Status,
};
use time::OffsetDateTime;
use tracing::warn;

use super::{
    CALL_TIMEOUT, MonitorFilter, MonitorView, Node, call, cluster, new_webhook_key, not_found,
};
use crate::board::Listing;
use crate::cluster::wire::PeerNotice;
use crate::error::NodeError;
use crate::monitor::{MonitorMsg, run_check};
use crate::root::start_of;
use crate::router::RouterMsg;
use crate::supervisor::SupervisorMsg;
use crate::validate::{self, MonitorDraft};

impl Node {
    async fn reactions_exist(&self, ids: &[ReactionId]) -> Result<(), NodeError> {
        for (i, id) in ids.iter().enumerate() {
            if self.inner.parts.store.get_reaction(id).await?.is_none() {
                return Err(NodeError::invalid(
                    format!("reactions[{i}]"),
                    format!("reaction `{id}` does not exist"),
                ));
            }
        }
        Ok(())
    }

    /// Creates a monitor and starts it.
    ///
    /// # Errors
    /// `Invalid` naming the field; `Store` when nothing could be written.
    pub async fn create_monitor(&self, draft: MonitorDraft) -> Result<MonitorView, NodeError> {
        self.save_monitor(draft, MonitorId::generate(), new_webhook_key()).await
    }

    /// Replaces a monitor's definition (its state and webhook key are kept) and reconfigures it.
    ///
    /// # Errors
    /// `NotFound`, `Invalid` naming the field, or `Store`.
    pub async fn replace_monitor(
        &self,
        id: &MonitorId,
        mut draft: MonitorDraft,
    ) -> Result<MonitorView, NodeError> {
        let existing = self.stored_monitor(id).await?;
        cloudroutes_checks::restore_secrets(&mut draft.check, &existing.check);
        self.save_monitor(draft, existing.id, existing.webhook_key).await
    }

    /// Validates `draft`, writes it as monitor `id` (keeping `webhook_key`), then starts,
    /// reconfigures or stops its actor.
    pub(super) async fn save_monitor(
        &self,
        draft: MonitorDraft,
        id: MonitorId,
        webhook_key: String,
    ) -> Result<MonitorView, NodeError> {
        let check = validate::monitor(&draft)?;
        let monitor = Monitor {
            id,
            name: draft.name,
            check: draft.check,
            interval_secs: draft.interval_secs,
            reactions: draft.reactions,
            enabled: draft.enabled,
            tags: draft.tags,
            webhook_key,
        };
        let built = check
            .build(&self.inner.parts.check_context)
            .map_err(|e| NodeError::invalid(format!("check.{}", e.field), e.message))?;
        self.reactions_exist(&monitor.reactions).await?;
        self.inner.parts.store.put_monitor(&monitor).await?;
        match self.owner(&monitor.id) {
            cluster::Owner::Local => self.start_monitor(monitor, built).await,
            owner => {
                // The owner hears of it now; its reconciliation repairs a lost message.
                if let cluster::Owner::Remote(node) = owner {
                    self.notify(
                        &node,
                        PeerNotice::MonitorChanged { monitor_id: monitor.id.clone() },
                    );
                }
                let state = self.state_of(&monitor.id).await?;
                Ok(MonitorView { monitor, state })
            }
        }
    }

    /// Puts a stored definition on the board and starts, reconfigures or stops its actor
    /// (this node runs its partition).
    pub(crate) async fn apply_monitor(&self, monitor: Monitor) {
        let built = CheckConfig::parse(&monitor.check)
            .and_then(|config| config.build(&self.inner.parts.check_context));
        match built {
            Ok(check) => {
                if let Err(err) = self.start_monitor(monitor, check).await {
                    warn!(error = %err, "could not start a changed monitor");
                }
            }
            Err(err) => {
                warn!(monitor_id = %monitor.id, error = %err, "stored check does not build; not running it");
                let _ = self.start_monitor(monitor, None).await;
            }
        }
    }

    /// Stops a monitor's actor and forgets its live state (deleted, or no longer ours).
    pub(crate) async fn forget_monitor(&self, id: &MonitorId) {
        let parts = &self.inner.parts;
        if let Ok(supervisor) = self.supervisor() {
            let _ = call(&supervisor, |port| SupervisorMsg::Remove(id.clone(), port)).await;
        }
        parts.board.remove(id);
        if let Ok(router) = self.router(id) {
            let _ = call(&router, |port| RouterMsg::Forget(id.clone(), port)).await;
        }
    }

    async fn start_monitor(
        &self,
        monitor: Monitor,
        built: Option<Box<dyn cloudroutes_checks::Check>>,
    ) -> Result<MonitorView, NodeError> {
        let parts = &self.inner.parts;
        let previous = parts.board.get(&monitor.id).map(|entry| entry.monitor);
        let attached: Vec<ReactionId> = monitor
            .reactions
            .iter()
            .filter(|id| previous.as_ref().is_none_or(|p| !p.reactions.contains(id)))
            .cloned()
            .collect();
        parts.board.upsert(Arc::new(Listing::of(&monitor)), MonitorState::default());
        if !attached.is_empty() {
            let id = monitor.id.clone();
            call(&self.router(&id)?, |port| RouterMsg::Attach(id.clone(), attached, port)).await?;
        }
        let supervisor = self.supervisor()?;
        match start_of(&monitor, built) {
            Some(start) => {
                let _ = supervisor.cast(SupervisorMsg::Upsert(vec![start]));
            }
            None => {
                let _ =
                    call(&supervisor, |port| SupervisorMsg::Remove(monitor.id.clone(), port)).await;
            }
        }
        let state = parts.board.state(&monitor.id).unwrap_or_default();
        Ok(MonitorView { monitor, state })
    }

    pub(crate) async fn stored_monitor(&self, id: &MonitorId) -> Result<Monitor, NodeError> {
        self.inner
            .parts
            .store
            .get_monitor(id)
            .await?
            .ok_or_else(|| not_found("monitor", id.as_str()))
    }

    /// Returns one monitor with its live state.
    ///
    /// # Errors
    /// `NotFound` or `Store`.
    pub async fn get_monitor(&self, id: &MonitorId) -> Result<MonitorView, NodeError> {
        let monitor = self.stored_monitor(id).await?;
        let state = self.state_of(id).await?;
        Ok(MonitorView { monitor, state })
    }

    pub(crate) async fn state_of(&self, id: &MonitorId) -> Result<MonitorState, NodeError> {
        match self.inner.parts.board.state(id) {
            Some(state) => Ok(state),
            None => Ok(self.inner.parts.store.get_state(id).await?.unwrap_or_default()),
        }
    }

    /// Lists monitors ordered by id after `after`, filtered; returns the page and the cursor
    /// of the next page.
    ///
    /// # Errors
    /// `Store`.
    pub async fn list_monitors(
        &self,
        filter: &MonitorFilter,
        after: Option<MonitorId>,
        limit: usize,
    ) -> Result<(Vec<MonitorView>, Option<String>), NodeError> {
        let mut items = Vec::new();
        let mut cursor = after;
        loop {
            let page = self.inner.parts.store.list_monitors(cursor.as_ref(), limit).await?;
            let exhausted = page.len() < limit;
            for monitor in page {
                cursor = Some(monitor.id.clone());
                if filter.tag.as_ref().is_some_and(|tag| !monitor.tags.contains(tag)) {
                    continue;
                }
                if filter
                    .name_contains
                    .as_ref()
                    .is_some_and(|text| !monitor.name.to_lowercase().contains(text.as_str()))
                {
                    continue;
                }
                let state = self.state_of(&monitor.id).await?;
                if filter.status.is_some_and(|status| status != state.status) {
                    continue;
                }
                items.push(MonitorView { monitor, state });
                if items.len() == limit {
                    let next = cursor.map(|c| c.0.to_string());
                    return Ok((items, next));
                }
            }
            if exhausted {
                return Ok((items, None));
            }
        }
    }

    /// Deletes a monitor: its actor stops, its state and history go.
    ///
    /// # Errors
    /// `NotFound` or `Store`.
    pub async fn delete_monitor(&self, id: &MonitorId) -> Result<(), NodeError> {
        self.stored_monitor(id).await?;
        match self.owner(id) {
            cluster::Owner::Local => {
                call(&self.supervisor()?, |port| SupervisorMsg::Remove(id.clone(), port)).await?;
                self.forget_monitor(id).await;
                self.inner.parts.store.delete_monitor(id).await?;
            }
            owner => {
                self.inner.parts.store.delete_monitor(id).await?;
                if let cluster::Owner::Remote(node) = owner {
                    self.notify(&node, PeerNotice::MonitorDeleted { monitor_id: id.clone() });
                }
            }
        }
        Ok(())
    }

    /// Runs a monitor's check now, records the result like any other, and returns it.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` for webhook-driven monitors.
    pub async fn run_now(&self, id: &MonitorId) -> Result<(CheckOutcome, MonitorView), NodeError> {
        let monitor = self.stored_monitor(id).await?;
        match self.owner(id) {
            cluster::Owner::Local => self.run_now_local(id, monitor).await,
            cluster::Owner::Remote(node) => self.run_now_remote(&node, monitor).await,
            cluster::Owner::Moving(message) => Err(NodeError::Unavailable(message)),
        }
    }

    /// Runs a monitor this node owns now.
    pub(crate) async fn run_now_local(
        &self,
        id: &MonitorId,
        monitor: Monitor,
    ) -> Result<(CheckOutcome, MonitorView), NodeError> {
        let parts = &self.inner.parts;
        let actor =
            call(&self.supervisor()?, |port| SupervisorMsg::Lookup(id.clone(), port)).await?;
        let outcome = match actor {
            Some(actor) => {
                // The actor answers within the check's own deadline, at most this long.
                let timeout = CALL_TIMEOUT + MAX_CHECK_TIMEOUT;
                match actor.call(MonitorMsg::RunNow, Some(timeout)).await {
                    Ok(ractor::rpc::CallResult::Success(outcome)) => outcome,
                    _ => return Err(NodeError::Unavailable("monitor did not answer".into())),
                }
            }
            None => {
                let config = CheckConfig::parse(&monitor.check)
                    .map_err(|e| NodeError::invalid(format!("check.{}", e.field), e.message))?;
                let Some(check) = config
                    .build(&parts.check_context)
                    .map_err(|e| NodeError::invalid(format!("check.{}", e.field), e.message))?
                else {
                    return Err(NodeError::Conflict(format!(
                        "a `{}` monitor gets its results from outside and has no check to run",
                        monitor.check.kind()
                    )));
                };
                let outcome = run_check(check.as_ref(), &parts.monitor_shared).await;
                self.observe(id, outcome.clone(), Method::Automatic).await?;
                outcome
            }
        };
        // The actor reported to the router by cast; a flush round trip orders us after it.
        call(&self.router(id)?, RouterMsg::Flush).await?;
        let state = self.state_of(id).await?;
        Ok((outcome, MonitorView { monitor, state }))
    }

    /// Records a result that did not come from a scheduled check (manual or webhook) and
    /// returns the new state. Reactions run as for any result.
    ///
    /// # Errors
    /// `NotFound`, or `Unavailable` when the router does not answer.
    pub async fn observe(
        &self,
        id: &MonitorId,
        outcome: CheckOutcome,
        method: Method,
    ) -> Result<MonitorState, NodeError> {
        match self.owner(id) {
            cluster::Owner::Local => self.observe_local(id, outcome, method).await,
            cluster::Owner::Remote(node) => self.observe_remote(&node, id, outcome, method).await,
            cluster::Owner::Moving(message) => Err(NodeError::Unavailable(message)),
        }
    }

    /// Records a result for a monitor this node owns.
    pub(crate) async fn observe_local(
        &self,
        id: &MonitorId,
        outcome: CheckOutcome,
        method: Method,
    ) -> Result<MonitorState, NodeError> {
        let observation = Observation {
            outcome,
            method,
            at: OffsetDateTime::now_utc(),
            node: Arc::clone(&self.inner.node_id),
        };
        let router = self.router(id)?;
        let state = call(&router, |port| RouterMsg::Observe {
            id: id.clone(),
            observation,
            took: None,
            reply: Some(port),
        })
        .await?;
        state.ok_or_else(|| not_found("monitor", id.as_str()))
    }

    /// Marks a monitor failed or healthy by hand.
    ///
    /// # Errors
    /// `NotFound` or `Unavailable`.
    pub async fn set_manual(
        &self,
        id: &MonitorId,
        status: Status,
        reason: Option<String>,
    ) -> Result<MonitorView, NodeError> {
        let monitor = self.stored_monitor(id).await?;
        let reason = reason.unwrap_or_else(|| format!("marked {} by hand", status.as_str()));
        let outcome = match status {
            Status::Failed => CheckOutcome::Failed { reason },
            _ => CheckOutcome::Healthy { reason },
        };
        let state = self.observe(id, outcome, Method::Manual).await?;
        Ok(MonitorView { monitor, state })
    }

    /// Returns a monitor's history, newest first, and the cursor of the next page.
    ///
    /// # Errors
    /// `NotFound` or `Store`.
    pub async fn events(
        &self,
        id: &MonitorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Event>, Option<String>), NodeError> {
        self.stored_monitor(id).await?;
        let events = self.inner.parts.store.list_events(id, before, limit).await?;
        let next = if events.len() == limit { events.last().map(|e| e.id.clone()) } else { None };
        Ok((events, next))
    }
}
