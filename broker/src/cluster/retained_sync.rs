//! A node that starts while others run asks them for their retained messages,
//! so that a restarted node's subscribers get what the cluster retains. The
//! nodes answer in one NATS queue group, so one of them (never the asker: its
//! publishing connection has echo off) sends each retained message to the
//! asker's inbox, then an end mark (its node id alone). The asker keeps a message only for a topic
//! it holds nothing for yet: a live retained publish that came meanwhile wins.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::envelope::Envelope;
use super::Cluster;
use crate::broker::Broker;

/// How long a starting node waits for a first answer, and between two parts.
const PATIENCE: Duration = Duration::from_secs(2);

/// Answers other nodes' requests for the retained messages.
pub(super) async fn answer(broker: Arc<Broker>, cluster: &Arc<Cluster>) -> Option<JoinHandle<()>> {
    let subject = cluster.subjects.retained_sync.clone();
    let queue = "retained-sync".to_string();
    let mut requests = match cluster.client.queue_subscribe(subject, queue).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%e, "cluster: cannot answer retained-message requests");
            return None;
        }
    };
    let cluster = Arc::clone(cluster);
    Some(tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let Some(reply) = request.reply else {
                continue;
            };
            // the broker's own `$SYS` messages stay on their node (`#` leaves them out)
            for message in broker.router.retained_for("#") {
                let envelope = Envelope {
                    retain: true,
                    topic: Some(message.topic.to_string()),
                    ..cluster.envelope(&message)
                };
                let _ = cluster
                    .client
                    .publish(reply.clone(), envelope.encode())
                    .await;
            }
            let end = Bytes::copy_from_slice(&cluster.node_id.to_be_bytes());
            let _ = cluster.client.publish(reply, end).await;
        }
    }))
}

/// Fills this node's retained store from the first node that answers.
pub(super) async fn fetch(broker: &Broker, cluster: &Cluster) {
    let inbox = cluster.client.new_inbox();
    let Ok(mut parts) = cluster.client.subscribe(inbox.clone()).await else {
        return;
    };
    let subject = cluster.subjects.retained_sync.clone();
    if cluster
        .client
        .publish_with_reply(subject, inbox, Bytes::new())
        .await
        .is_err()
    {
        return;
    }
    let mut from = None;
    let mut kept = 0usize;
    while let Ok(Some(part)) = tokio::time::timeout(PATIENCE, parts.next()).await {
        if part.payload.len() == 8 {
            let origin = u64::from_be_bytes(part.payload[..].try_into().unwrap_or_default());
            if from.is_none_or(|f| f == origin) {
                break;
            }
            continue;
        }
        let Some(envelope) = Envelope::decode(part.payload) else {
            continue;
        };
        if *from.get_or_insert(envelope.origin) != envelope.origin {
            continue;
        }
        let Some(topic) = envelope.topic.clone() else {
            continue;
        };
        if !broker.router.retained_for(&topic).is_empty() {
            continue;
        }
        let message = super::inbound::mqtt_message(broker, &envelope, topic);
        if broker
            .router
            .retain(Arc::new(message), broker.settings.max_retained)
            .is_ok()
        {
            kept += 1;
        }
    }
    if kept > 0 {
        tracing::info!(
            kept,
            "cluster: retained messages taken over from another node"
        );
    }
}
