//! Hot settings are cluster-wide: a change made through any node's
//! management API (NanoMQ's configuration routes, `config_update`, v1 req 12)
//! is sent on `<prefix>.hot`, and every node applies it. A node started later
//! starts from its own configuration, as an operator who edits a node's file
//! and restarts it expects.

use std::sync::Arc;

use futures::StreamExt;
use mqgate_kit::HotConfig;
use tokio::task::JoinHandle;

use super::Cluster;
use crate::broker::Broker;

impl Cluster {
    /// Tells the other nodes the hot settings this node changed to.
    pub(crate) fn share_hot(&self, hot: &HotConfig) {
        if let Ok(body) = serde_json::to_vec(hot) {
            self.send(self.subjects.hot.clone(), body.into());
        }
    }
}

/// Applies the hot settings other nodes change to.
pub(super) async fn follow(broker: Arc<Broker>, cluster: &Arc<Cluster>) -> Option<JoinHandle<()>> {
    let mut changes = match cluster.client.subscribe(cluster.subjects.hot.clone()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%e, "cluster: cannot follow other nodes' setting changes");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        while let Some(change) = changes.next().await {
            match serde_json::from_slice::<HotConfig>(&change.payload) {
                Ok(hot) => {
                    tracing::info!(?hot, "cluster: settings changed through another node");
                    broker.set_hot(hot);
                }
                Err(e) => tracing::debug!(%e, "cluster: unreadable settings change"),
            }
        }
    }))
}
