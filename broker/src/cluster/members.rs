//! Which nodes are alive. Every node says so on the presence subject once a
//! heartbeat, and at once when it hears a node it did not know (so a starting
//! node learns the others within a round trip); a node that stops cleanly says
//! it leaves. A node not heard for [`MISSED_HEARTBEATS`] heartbeats, or that
//! left a query unanswered, counts as gone until heard again: cluster-wide
//! queries ([`super::query`]) are sent to the live nodes only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::Cluster;

/// Heartbeats a node may miss before the others count it as gone.
pub const MISSED_HEARTBEATS: u32 = 3;

/// What a node says on the presence subject.
#[derive(Debug, Serialize, Deserialize)]
struct Presence {
    node_id: u64,
    node_name: String,
    leaving: bool,
}

/// The other nodes this node has heard from, and when last.
pub(super) struct Members {
    heard: Mutex<HashMap<u64, Instant>>,
    heartbeat: Duration,
}

impl Members {
    pub(super) fn new(heartbeat: Duration) -> Members {
        Members {
            heard: Mutex::default(),
            heartbeat,
        }
    }

    /// The other nodes heard from within the last [`MISSED_HEARTBEATS`] heartbeats.
    pub(super) fn live(&self) -> Vec<u64> {
        let horizon = self.heartbeat * MISSED_HEARTBEATS;
        let mut heard = self.heard.lock();
        heard.retain(|_, at| at.elapsed() <= horizon);
        heard.keys().copied().collect()
    }

    /// Leaves a node out until it is heard again (it did not answer).
    pub(super) fn forget(&self, node_id: u64) {
        self.heard.lock().remove(&node_id);
    }

    /// Notes a presence; true when the node was not known (or had left).
    fn note(&self, presence: &Presence) -> bool {
        let mut heard = self.heard.lock();
        if presence.leaving {
            heard.remove(&presence.node_id);
            return false;
        }
        heard.insert(presence.node_id, Instant::now()).is_none()
    }
}

/// Announces this node every heartbeat and keeps [`Members`] up to date.
pub(super) async fn run(cluster: &Arc<Cluster>) -> Option<JoinHandle<()>> {
    let subject = cluster.subjects.presence.clone();
    let mut heard = match cluster.client.subscribe(subject).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%e, "cluster: cannot follow the other nodes' presence");
            return None;
        }
    };
    let cluster = Arc::clone(cluster);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(cluster.members.heartbeat);
        loop {
            tokio::select! {
                _ = tick.tick() => announce(&cluster, false).await,
                message = heard.next() => {
                    let Some(message) = message else { break };
                    let Ok(presence) = serde_json::from_slice::<Presence>(&message.payload) else {
                        continue;
                    };
                    if presence.node_id != cluster.node_id && cluster.members.note(&presence) {
                        tracing::info!(node = %presence.node_name, "cluster: node joined");
                        announce(&cluster, false).await;
                    }
                }
            }
        }
    }))
}

/// Says on the presence subject that this node is here, or that it leaves.
pub(super) async fn announce(cluster: &Cluster, leaving: bool) {
    let presence = Presence {
        node_id: cluster.node_id,
        node_name: cluster.node_name.clone(),
        leaving,
    };
    if let Ok(body) = serde_json::to_vec(&presence) {
        let subject = cluster.subjects.presence.clone();
        let _ = cluster.client.publish(subject, body.into()).await;
    }
}
