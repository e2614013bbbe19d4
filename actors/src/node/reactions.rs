//! Reaction operations of the node facade: create, replace (keeping write-only secrets),
//! read, list and delete (refused while a monitor uses the reaction).

use std::sync::Arc;

use cloudroutes_engine::{MonitorId, Reaction, ReactionId};
use cloudroutes_reactions::restore_secrets;

use super::{LOAD_PAGE, Node, ReactionView, not_found};
use crate::cluster::wire::PeerNotice;
use crate::error::NodeError;
use crate::firing::LoadedReaction;
use crate::validate::{self, ReactionDraft};

impl Node {
    pub(super) fn build_reaction(&self, reaction: Reaction) -> Result<LoadedReaction, NodeError> {
        let config = cloudroutes_reactions::ReactionConfig::parse(&reaction.action)
            .map_err(|e| NodeError::invalid(format!("action.{}", e.field), e.message))?;
        let runner = config
            .build(&self.inner.reaction_context)
            .map_err(|e| NodeError::invalid(format!("action.{}", e.field), e.message))?;
        Ok(LoadedReaction::new(reaction, Arc::from(runner)))
    }

    /// Creates a reaction.
    ///
    /// # Errors
    /// `Invalid` naming the field, or `Store`.
    pub async fn create_reaction(&self, draft: ReactionDraft) -> Result<ReactionView, NodeError> {
        self.save_reaction(ReactionId::generate(), draft).await
    }

    /// Replaces a reaction; `"***"` secret values keep what is stored.
    ///
    /// # Errors
    /// `NotFound`, `Invalid` naming the field, or `Store`.
    pub async fn replace_reaction(
        &self,
        id: &ReactionId,
        mut draft: ReactionDraft,
    ) -> Result<ReactionView, NodeError> {
        let existing = self.stored_reaction(id).await?;
        restore_secrets(&mut draft.action, &existing.action);
        self.save_reaction(id.clone(), draft).await
    }

    async fn save_reaction(
        &self,
        id: ReactionId,
        draft: ReactionDraft,
    ) -> Result<ReactionView, NodeError> {
        validate::reaction(&draft)?;
        let reaction = Reaction {
            id,
            name: draft.name,
            action: draft.action,
            trigger: draft.trigger,
            frequency_secs: draft.frequency_secs,
            call_on: draft.call_on,
        };
        let loaded = self.build_reaction(reaction.clone())?;
        self.inner.parts.store.put_reaction(&reaction).await?;
        self.inner.parts.book.insert(loaded);
        self.broadcast(PeerNotice::ReactionChanged { reaction_id: reaction.id.clone() });
        let last_run_at = self.inner.parts.book.get(&reaction.id).and_then(|r| r.last_run_at());
        Ok(ReactionView { reaction, last_run_at })
    }

    async fn stored_reaction(&self, id: &ReactionId) -> Result<Reaction, NodeError> {
        self.inner
            .parts
            .store
            .get_reaction(id)
            .await?
            .ok_or_else(|| not_found("reaction", id.as_str()))
    }

    /// Returns one reaction.
    ///
    /// # Errors
    /// `NotFound` or `Store`.
    pub async fn get_reaction(&self, id: &ReactionId) -> Result<ReactionView, NodeError> {
        let reaction = self.stored_reaction(id).await?;
        let last_run_at = self.inner.parts.book.get(id).and_then(|r| r.last_run_at());
        Ok(ReactionView { reaction, last_run_at })
    }

    /// Lists reactions ordered by id after `after`; returns the page and the next cursor.
    ///
    /// # Errors
    /// `Store`.
    pub async fn list_reactions(
        &self,
        after: Option<ReactionId>,
        limit: usize,
    ) -> Result<(Vec<ReactionView>, Option<String>), NodeError> {
        let page = self.inner.parts.store.list_reactions(after.as_ref(), limit).await?;
        let next = if page.len() == limit { page.last().map(|r| r.id.0.to_string()) } else { None };
        let book = &self.inner.parts.book;
        let items = page
            .into_iter()
            .map(|reaction| {
                let last_run_at = book.get(&reaction.id).and_then(|r| r.last_run_at());
                ReactionView { reaction, last_run_at }
            })
            .collect();
        Ok((items, next))
    }

    /// Deletes a reaction that no monitor uses.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` naming a monitor that still lists it; `Store`.
    pub async fn delete_reaction(&self, id: &ReactionId) -> Result<(), NodeError> {
        self.stored_reaction(id).await?;
        if let Some((user, name)) = self.first_user_of(id).await? {
            return Err(NodeError::Conflict(format!(
                "reaction `{id}` is used by monitor `{user}` ({name}); remove it there first"
            )));
        }
        self.inner.parts.store.delete_reaction(id).await?;
        self.inner.parts.book.remove(id);
        self.broadcast(PeerNotice::ReactionDeleted { reaction_id: id.clone() });
        Ok(())
    }

    /// Returns the id and name of a monitor that lists reaction `id`: from the board on a
    /// single node (it holds every monitor), from the store in a cluster (the board holds only
    /// this node's share).
    async fn first_user_of(
        &self,
        id: &ReactionId,
    ) -> Result<Option<(MonitorId, String)>, NodeError> {
        if self.cluster().is_none() {
            let users = self.inner.parts.board.monitors();
            let user = users.into_iter().find(|m| m.reactions.contains(id));
            return Ok(user.map(|m| (m.id.clone(), m.name.clone())));
        }
        let mut after: Option<MonitorId> = None;
        loop {
            let page = self.inner.parts.store.list_monitors(after.as_ref(), LOAD_PAGE).await?;
            if let Some(user) = page.iter().find(|m| m.reactions.contains(id)) {
                return Ok(Some((user.id.clone(), user.name.clone())));
            }
            match page.last() {
                Some(last) if page.len() == LOAD_PAGE => after = Some(last.id.clone()),
                _ => return Ok(None),
            }
        }
    }
}
