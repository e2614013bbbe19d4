//! What the node knows of the cluster, for `GET /api/v1/cluster`, and draining a node.

use std::collections::{BTreeMap, HashSet};

use cloudroutes_engine::Timestamp;
use time::OffsetDateTime;

use super::Node;
use crate::board::StatusCounts;
use crate::error::NodeError;

/// The cluster as one node sees it.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// `cluster` (a Redis store shared by nodes) or `single` (the embedded store).
    pub mode: &'static str,
    /// The node answering.
    pub node_id: String,
    /// Number of partitions (0 on a single node).
    pub partitions: u32,
    /// The nodes: live members, and nodes that still hold leases without a heartbeat.
    pub nodes: Vec<NodeStatus>,
}

/// One node of the cluster.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// Node id.
    pub id: String,
    /// HTTP API address.
    pub http_addr: Option<String>,
    /// Cluster transport address.
    pub cluster_addr: Option<String>,
    /// Failure zone.
    pub zone: Option<String>,
    /// Whether its heartbeat is current.
    pub alive: bool,
    /// Whether it is being drained.
    pub draining: bool,
    /// Partitions whose lease it holds.
    pub partitions: u32,
    /// Monitors it runs (as it last reported).
    pub monitors: u64,
    /// When it last refreshed its heartbeat.
    pub last_heartbeat: Option<Timestamp>,
    /// When it started.
    pub started_at: Option<Timestamp>,
}

impl Node {
    /// Returns the cluster as this node sees it now (read from the store).
    ///
    /// # Errors
    /// `Store` when the coordinator cannot be read.
    pub async fn cluster_view(&self) -> Result<ClusterView, NodeError> {
        let Some(cluster) = self.cluster() else {
            let config = &self.inner.config;
            let me = NodeStatus {
                id: self.node_id().to_owned(),
                http_addr: Some(self.http_addr()),
                cluster_addr: None,
                zone: Some(config.node.zone.clone()),
                alive: true,
                draining: false,
                partitions: 0,
                monitors: u64::try_from(self.inner.parts.board.len()).unwrap_or(u64::MAX),
                last_heartbeat: Some(OffsetDateTime::now_utc()),
                started_at: None,
            };
            let node_id = self.node_id().to_owned();
            return Ok(ClusterView { mode: "single", node_id, partitions: 0, nodes: vec![me] });
        };
        let coordinator = &cluster.coordinator;
        let members = coordinator.members().await?;
        let draining: HashSet<String> = coordinator.draining().await?.into_iter().collect();
        let mut held: BTreeMap<String, u32> = BTreeMap::new();
        for (_, holder, _) in coordinator.holders().await? {
            *held.entry(holder).or_default() += 1;
        }
        let mut nodes: Vec<NodeStatus> = members
            .into_iter()
            .map(|m| NodeStatus {
                partitions: held.remove(&m.id).unwrap_or(0),
                draining: draining.contains(&m.id),
                id: m.id,
                http_addr: Some(m.http_addr),
                cluster_addr: m.cluster_addr,
                zone: Some(m.zone),
                alive: true,
                monitors: m.monitors,
                last_heartbeat: Some(m.heartbeat_at),
                started_at: Some(m.started_at),
            })
            .collect();
        // Nodes that hold leases without a heartbeat: gone, their leases not yet expired.
        nodes.extend(held.into_iter().map(|(id, partitions)| NodeStatus {
            draining: draining.contains(&id),
            id,
            http_addr: None,
            cluster_addr: None,
            zone: None,
            alive: false,
            partitions,
            monitors: 0,
            last_heartbeat: None,
            started_at: None,
        }));
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let node_id = self.node_id().to_owned();
        Ok(ClusterView { mode: "cluster", node_id, partitions: cluster.partitions, nodes })
    }

    /// Drains a live node: its partitions move to the other nodes within about one renew
    /// period. The mark lasts until that node restarts.
    ///
    /// # Errors
    /// `Conflict` on a single node or when `node` is the only one taking part; `NotFound` for
    /// a node that is not a live member; `Store`.
    pub async fn drain(&self, node: &str) -> Result<(), NodeError> {
        let Some(cluster) = self.cluster() else {
            return Err(NodeError::Conflict(
                "draining moves partitions to other nodes; this node runs alone on the \
                 embedded store"
                    .into(),
            ));
        };
        let members = cluster.coordinator.members().await?;
        if !members.iter().any(|m| m.id == node) {
            return Err(NodeError::NotFound { what: "node", id: node.to_owned() });
        }
        cluster.coordinator.set_draining(node, true).await?;
        Ok(())
    }

    /// Returns the address the HTTP API listens on.
    pub fn http_addr(&self) -> String {
        let config = &self.inner.config;
        self.inner.http_addr.get().map_or_else(|| config.http.addr.to_string(), ToString::to_string)
    }

    /// Counts monitors by status for the whole deployment: on a single node, its board; in a
    /// cluster, this node's board plus every other live member's counts from its last
    /// heartbeat (a few seconds old at most). One store read, whatever the number of monitors.
    ///
    /// # Errors
    /// `Store` when the members cannot be read.
    pub async fn summary(&self) -> Result<StatusCounts, NodeError> {
        let mut counts = self.counts();
        let Some(cluster) = self.cluster() else { return Ok(counts) };
        let narrow = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        for member in cluster.coordinator.members().await? {
            if member.id == self.node_id() {
                continue;
            }
            counts.healthy = counts.healthy.saturating_add(narrow(member.statuses.healthy));
            counts.failed = counts.failed.saturating_add(narrow(member.statuses.failed));
            counts.unknown = counts.unknown.saturating_add(narrow(member.statuses.unknown));
        }
        Ok(counts)
    }
}
