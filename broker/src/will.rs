//! Wills: published when a connection ends without a clean DISCONNECT, after the
//! MQTT 5 will delay (never later than the session's end); a reconnect of the
//! client id during the delay cancels it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqgate_kit::clock::now_ms;
use mqgate_kit::PublishProperties;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::message::Message;
use crate::publish::Origin;

/// A will as the broker keeps it until the connection ends.
#[derive(Debug, Clone)]
pub struct PendingWill {
    /// The topic as routed (mountpoint included).
    pub topic: String,
    /// The topic as the client wrote it.
    pub client_topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub properties: PublishProperties,
    pub delay: Duration,
}

struct Delayed {
    task: tokio::task::AbortHandle,
    fire: oneshot::Sender<()>,
}

/// Wills waiting out their delay, by client id.
#[derive(Default)]
pub(crate) struct Wills {
    delayed: Mutex<HashMap<Arc<str>, Delayed>>,
}

impl Wills {
    /// Publishes `will` now, or after `delay`.
    pub fn schedule(
        &self,
        broker: &Arc<Broker>,
        client_id: Arc<str>,
        will: PendingWill,
        delay: Duration,
    ) {
        if delay.is_zero() {
            let broker = Arc::clone(broker);
            tokio::spawn(async move { publish(&broker, &client_id, will).await });
            return;
        }
        let (fire, fired) = oneshot::channel();
        let weak = Arc::downgrade(broker);
        let id = Arc::clone(&client_id);
        let task = tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = fired => {}
            }
            let Some(broker) = weak.upgrade() else {
                return;
            };
            broker.wills.delayed.lock().remove(&id);
            publish(&broker, &id, will).await;
        });
        if let Some(old) = self.delayed.lock().insert(
            client_id,
            Delayed {
                task: task.abort_handle(),
                fire,
            },
        ) {
            old.task.abort();
        }
    }

    /// A new connection for the client id: its delayed will is not sent.
    pub fn cancel(&self, client_id: &str) {
        if let Some(d) = self.delayed.lock().remove(client_id) {
            d.task.abort();
        }
    }

    /// The session ended before the delay passed: the will goes now.
    pub fn fire_now(&self, client_id: &str) {
        if let Some(d) = self.delayed.lock().remove(client_id) {
            let _ = d.fire.send(());
        }
    }
}

async fn publish(broker: &Arc<Broker>, client_id: &str, will: PendingWill) {
    if broker.is_shutting_down() {
        return;
    }
    let expires_at = will
        .properties
        .message_expiry_interval
        .map(|secs| Instant::now() + Duration::from_secs(secs.into()));
    let properties = (!will.properties.is_empty()).then(|| Box::new(will.properties));
    let message = Arc::new(Message {
        id: broker.next_message_id(),
        topic: will.topic.into(),
        payload: will.payload,
        qos: will.qos,
        retain: will.retain,
        properties,
        expires_at,
        publisher: None,
    });
    let mut recorders = broker.recorders_of(Some(client_id), false);
    let mut origin = Origin {
        client_id: Some(client_id),
        connection_id: None,
        topic: &will.client_topic,
        recorders: recorders.as_mut(),
    };
    tracing::debug!(client_id, at_ms = now_ms(), "publishing will");
    if let Some(blocked) = broker.route(message, &mut origin) {
        broker.wait_for_room(blocked).await;
    }
}
