//! Device presence: connects and disconnects the broker reports are queued by the
//! observer (which must not block the broker) and recorded by one background
//! thread, several events per transaction when they arrive together.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use mqgate_kit::{BrokerEvent, BrokerObserver};

use crate::registry::{PresenceEvent, Registry};

pub struct PresenceObserver {
    queue: Sender<PresenceEvent>,
}

impl PresenceObserver {
    /// Starts the recording thread; it ends when the observer is dropped.
    pub fn start(registry: Arc<Registry>) -> std::io::Result<PresenceObserver> {
        let (queue, events) = channel();
        std::thread::Builder::new()
            .name("realmq-presence".into())
            .spawn(move || record(registry, events))?;
        Ok(PresenceObserver { queue })
    }
}

impl BrokerObserver for PresenceObserver {
    fn on_event(&self, event: &BrokerEvent) {
        let event = match event {
            BrokerEvent::Connected(c) => PresenceEvent::Connected {
                client_id: c.client_id.clone(),
                connection_id: c.connection_id,
                ip: c.peer.ip().to_string(),
                at_ms: c.at_ms,
            },
            BrokerEvent::Disconnected {
                client_id,
                connection_id,
                at_ms,
                ..
            } => PresenceEvent::Disconnected {
                client_id: client_id.clone(),
                connection_id: *connection_id,
                at_ms: *at_ms,
            },
            _ => return,
        };
        // The thread only stops once this sender is gone, so sending cannot fail
        // while the observer lives.
        let _ = self.queue.send(event);
    }

    fn wants_messages(&self) -> bool {
        false
    }
}

/// Most events written in one transaction.
const BATCH: usize = 512;

fn record(registry: Arc<Registry>, events: Receiver<PresenceEvent>) {
    while let Ok(first) = events.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match events.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if let Err(e) = registry.record_presence(batch) {
            tracing::error!(error = %e, "realmq: could not record device presence");
        }
    }
}
