//! The dispatcher: messages other nodes sent, delivered to this node's
//! subscribers. One task, so that the messages of one publisher keep their
//! order, and so that it can drop the copies NATS sends when several of this
//! node's subscriptions match one subject (`a/+` and `a/#`): a session gets
//! one delivery per message, as on a single node.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::envelope::Envelope;
use super::{bump, Cluster};
use crate::broker::Broker;
use crate::message::Message;

/// Which kind of subscription a message arrived on.
#[derive(Debug, Clone)]
pub(super) enum Route {
    /// A plain filter's subject: the local plain subscribers it matches.
    Plain,
    /// A shared group's queue subscription: one member of that group here.
    Group { routing: Arc<str>, group: Arc<str> },
    /// A retained message: for the retained store only.
    Retained,
    /// A topic too long for a subject: every node gets it.
    Long,
}

pub(super) struct Arrival {
    pub route: Route,
    pub message: async_nats::Message,
}

/// How many recent (origin, id) pairs the dispatcher remembers to drop copies:
/// the copies of one message are written to this node's connection together,
/// so only messages published meanwhile can come between them.
const RECENT: usize = 16 * 1024;

pub(super) fn spawn(
    broker: &Arc<Broker>,
    cluster: &Arc<Cluster>,
    mut arriving: mpsc::Receiver<Arrival>,
) {
    let broker = Arc::clone(broker);
    let cluster = Arc::clone(cluster);
    let mut shutdown = broker.shutdown_signal();
    tokio::spawn(async move {
        let mut recent = Recent::default();
        loop {
            let arrival = tokio::select! {
                _ = shutdown.changed() => return,
                arrival = arriving.recv() => match arrival {
                    Some(a) => a,
                    None => return,
                },
            };
            dispatch(&broker, &cluster, &mut recent, arrival).await;
        }
    });
}

async fn dispatch(broker: &Broker, cluster: &Cluster, recent: &mut Recent, arrival: Arrival) {
    let Arrival { route, message } = arrival;
    let Some(envelope) = Envelope::decode(message.payload) else {
        tracing::debug!(subject = %message.subject, "cluster: malformed message dropped");
        return;
    };
    let own = envelope.origin == cluster.node_id;
    match route {
        // our own publish came back: this node delivered and stored it already
        // (a shared group's pick is the exception: NATS may pick this node)
        Route::Plain | Route::Long | Route::Retained if own => return,
        Route::Plain if !recent.first_time(envelope.origin, envelope.id) => return,
        _ => {}
    }
    let topic = match envelope.topic.clone() {
        Some(topic) => topic,
        None => match cluster.subjects.topic_of(&message.subject) {
            Some(topic) => topic,
            None => return,
        },
    };
    let message = Arc::new(mqtt_message(broker, &envelope, topic));
    let group = match &route {
        Route::Retained => {
            if broker
                .router
                .retain(message, broker.settings.max_retained)
                .is_err()
            {
                tracing::warn!("cluster: retained store full: message not retained");
            }
            return;
        }
        Route::Plain | Route::Long => None,
        Route::Group { routing, group } => Some((&**routing, &**group)),
    };
    bump(&cluster.counters.received);
    if let Some(blocked) = broker.deliver_remote(message, group) {
        // the link is a publisher like any other: it waits for room, within
        // the slow-subscriber timeout, and so keeps the order of messages
        broker.wait_for_room(blocked).await;
    }
}

pub(super) fn mqtt_message(broker: &Broker, e: &Envelope, topic: String) -> Message {
    Message {
        // one id per message in every node's records, when ids are cluster-wide
        id: if broker.message_ids_are_shared() {
            e.id
        } else {
            broker.next_message_id()
        },
        topic: topic.into(),
        payload: e.payload.clone(),
        qos: e.qos,
        retain: e.retain,
        properties: e.properties.clone().map(Box::new),
        expires_at: e
            .expiry_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms)),
        publisher: None,
    }
}

/// The last [`RECENT`] messages seen, by origin and id.
#[derive(Default)]
struct Recent {
    seen: HashSet<(u64, u64)>,
    order: VecDeque<(u64, u64)>,
}

impl Recent {
    fn first_time(&mut self, origin: u64, id: u64) -> bool {
        if !self.seen.insert((origin, id)) {
            return false;
        }
        self.order.push_back((origin, id));
        if self.order.len() > RECENT {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_dropped_and_memory_is_bounded() {
        let mut r = Recent::default();
        assert!(r.first_time(1, 1));
        assert!(!r.first_time(1, 1));
        assert!(r.first_time(2, 1));
        for i in 0..(RECENT as u64 * 2) {
            assert!(r.first_time(3, i));
        }
        assert_eq!(r.seen.len(), RECENT);
        assert!(r.first_time(1, 1), "forgotten after RECENT others");
    }
}
