//! A message as it travels through the broker: published once, shared by every
//! subscriber's queue.

use std::sync::Arc;

use bytes::Bytes;
use mqgate_kit::{MessageId, PublishProperties};
use tokio::time::Instant;

use crate::session::SessionId;

/// A published message. Immutable once routed; deliveries share it through `Arc`.
#[derive(Debug)]
pub struct Message {
    pub id: MessageId,
    /// The topic as routed (a mounted client's topic carries its mountpoint).
    pub topic: Arc<str>,
    pub payload: Bytes,
    pub qos: u8,
    /// The RETAIN flag as published.
    pub retain: bool,
    /// MQTT 5 properties to forward (the expiry interval is recomputed per delivery).
    pub properties: Option<Box<PublishProperties>>,
    /// When the MQTT 5 message expiry interval runs out.
    pub expires_at: Option<Instant>,
    /// The session of the publishing client, for No Local.
    pub publisher: Option<SessionId>,
}

impl Message {
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Seconds of expiry left, rounded up, for the delivery's property. Reads
    /// the clock only for a message that expires.
    pub fn expiry_left(&self) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(Instant::now());
            (left.as_millis().div_ceil(1000)).min(u32::MAX as u128) as u32
        })
    }

    /// Bytes this message costs in a queue, for byte limits.
    pub fn weight(&self) -> usize {
        self.topic.len() + self.payload.len() + 64
    }
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Arc<Message>,
    /// min(published QoS, granted QoS).
    pub qos: u8,
    /// The RETAIN flag to send (Retain As Published, or a retained message replayed on subscribe).
    pub retain: bool,
    /// MQTT 5 subscription identifiers of the matching subscriptions.
    pub subscription_ids: Vec<u32>,
}
