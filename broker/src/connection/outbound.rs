//! Deliveries from the session's queue onto the wire: the client's Receive
//! Maximum and Maximum Packet Size, message expiry, topic aliases towards the
//! client, and the records of each delivery.

use std::sync::Arc;

use mqgate_kit::history::BrokerEvent;

use super::Connection;
use crate::counters::Counters;
use crate::session::{AtomicCounters, Ready};
use crate::wire::encode::OutPublish;
use crate::wire::Version;

/// Deliveries taken from the queue per turn of the loop.
const BATCH: usize = 256;
/// Output bytes gathered before they are written.
const WRITE_BUDGET: usize = 64 * 1024;

impl Connection {
    /// Moves ready deliveries into the output buffer, up to a write budget;
    /// returns whether more are ready.
    pub(super) fn fill(&mut self) -> bool {
        let max_queued = self.broker.hot.max_queued();
        while self.out.len() < WRITE_BUDGET {
            let mut ready = std::mem::take(&mut self.ready);
            let expired = self.session.take_ready(BATCH, max_queued, &mut ready);
            for _ in 0..expired {
                self.broker.count_dropped(&self.session);
            }
            if ready.is_empty() {
                self.ready = ready;
                return false;
            }
            for r in ready.drain(..) {
                self.write_delivery(r, false);
            }
            self.ready = ready;
        }
        self.session.has_ready()
    }

    /// The largest packet this client may receive.
    fn max_packet_out(&self) -> Option<usize> {
        match (
            self.client_max_packet,
            self.broker.hot.client_max_packet_size(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes one delivery; one the client cannot take (larger than its Maximum
    /// Packet Size) is dropped as if delivered [MQTT-3.1.2-25] and counted.
    pub(super) fn write_delivery(&mut self, r: Ready, dup: bool) {
        let message = Arc::clone(&r.delivery.message);
        let client_topic: &str = match &self.mountpoint {
            Some(m) => message.topic.strip_prefix(&**m).unwrap_or(&message.topic),
            None => &message.topic,
        };
        let v5 = self.version == Version::V5;
        let mut publish = OutPublish {
            topic: client_topic,
            topic_alias: None,
            payload: &message.payload,
            qos: r.delivery.qos,
            dup,
            retain: r.delivery.retain,
            pkid: r.pkid,
            properties: message.properties.as_deref().filter(|_| v5),
            expiry_interval: if v5 { message.expiry_left() } else { None },
            subscription_ids: if v5 {
                &r.delivery.subscription_ids
            } else {
                &[]
            },
        };
        if self
            .max_packet_out()
            .is_some_and(|max| publish.size(self.version) > max)
        {
            if r.pkid != 0 {
                self.session.abandon(r.pkid);
            }
            self.broker.count_dropped(&self.session);
            return;
        }
        if v5 && self.client_alias_max > 0 {
            match self.aliases_out.get(client_topic) {
                Some(alias) => {
                    publish.topic_alias = Some(*alias);
                    publish.topic = "";
                }
                None if self.aliases_out.len() < usize::from(self.client_alias_max) => {
                    let alias = self.aliases_out.len() as u16 + 1;
                    self.aliases_out.insert(client_topic.into(), alias);
                    publish.topic_alias = Some(alias);
                }
                None => {}
            }
        }
        tracing::trace!(client_id = %self.client_id, topic = client_topic, pkid = r.pkid, "deliver");
        publish.write(self.version, &mut self.out);
        self.count_packet_out();
        Counters::add(&self.broker.counters.messages_sent, 1);
        AtomicCounters::add(&self.counters().messages_out, 1);
        if let Some(recorders) = &mut self.recorders {
            let at_ms = recorders.now_ms();
            recorders.report(&BrokerEvent::MessageDelivered {
                message_id: Some(message.id),
                client_id: &self.client_id,
                connection_id: self.id,
                topic: client_topic,
                qos: r.delivery.qos,
                at_ms,
            });
        }
    }
}
