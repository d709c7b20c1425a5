//! A persistent session moving to the node its client reconnects to.
//!
//! A CONNECT with clean start 0 for a client id held by another node asks, in
//! its claim ([`super::takeover`]), for the session. The holder closes the
//! old connection (if any), takes the session out of its table and sends it
//! to the claimant's inbox as a sequence of NATS messages (NATS keeps one
//! connection's messages in order): one per delivery in flight or queued
//! (a JSON head line, then the message as an [`Envelope`]), then an end
//! message with the subscriptions and the QoS 2 packet ids awaiting their
//! PUBREL. The claimant builds the session from them and answers the CONNECT
//! with session present 1; deliveries in flight are sent again with DUP, as
//! on a reconnect to the same node. Subscriptions made on behalf of an id that
//! never connected (a pending session) move the same way, to whichever CONNECT
//! claims the id first, clean start or not.
//!
//! A delivery larger than NATS takes is dropped on the way (and logged). If
//! the end message does not come within the takeover timeout, the claimant
//! starts a new session (session present 0), as before sessions moved.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::envelope::Envelope;
use super::Cluster;
use crate::broker::Broker;
use crate::message::{Delivery, Message};
use crate::session::{Carried, InFlight, SubOptions};

/// A session as it arrives from another node.
#[derive(Debug, Default)]
pub(crate) struct MovedSession {
    pub subscriptions: Vec<(String, SubOptions)>,
    pub carried: Carried,
    /// Only subscriptions made on behalf of the id before it ever connected:
    /// they become the new session's, whatever its clean start says.
    pub pending_only: bool,
}

/// What one part of a handover says.
#[derive(Debug, Serialize, Deserialize)]
enum Head {
    /// A delivery sent and not completed (`released`: PUBREC received).
    InFlight {
        pkid: u16,
        released: bool,
        delivery: DeliveryHead,
    },
    Queued(DeliveryHead),
    /// The only part when no session moves.
    NotMoved,
    /// The last part of a moved session.
    End {
        subscriptions: Vec<(String, WireOptions)>,
        awaiting_release: Vec<u16>,
        pending_only: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct DeliveryHead {
    qos: u8,
    retain: bool,
    subscription_ids: Vec<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireOptions {
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: u8,
    subscription_id: Option<u32>,
}

impl From<SubOptions> for WireOptions {
    fn from(o: SubOptions) -> WireOptions {
        WireOptions {
            qos: o.qos,
            no_local: o.no_local,
            retain_as_published: o.retain_as_published,
            retain_handling: o.retain_handling,
            subscription_id: o.subscription_id,
        }
    }
}

impl From<WireOptions> for SubOptions {
    fn from(o: WireOptions) -> SubOptions {
        SubOptions {
            qos: o.qos.min(2),
            no_local: o.no_local,
            retain_as_published: o.retain_as_published,
            retain_handling: o.retain_handling.min(2),
            subscription_id: o.subscription_id,
        }
    }
}

impl Cluster {
    /// Sends `moved` (a session taken out of this node) to `reply`, in parts.
    pub(super) async fn hand_over(&self, reply: String, moved: MovedSession) {
        let limit = self.max_payload.load(std::sync::atomic::Ordering::Relaxed);
        let Carried {
            inflight,
            queue,
            awaiting_release,
        } = moved.carried;
        let deliveries = inflight
            .into_iter()
            .map(|f| {
                let head = Head::InFlight {
                    pkid: f.pkid,
                    released: f.released,
                    delivery: delivery_head(&f.delivery),
                };
                (head, f.delivery)
            })
            .chain(
                queue
                    .into_iter()
                    .map(|d| (Head::Queued(delivery_head(&d)), d)),
            );
        for (head, delivery) in deliveries {
            let part = part(&head, Some(&self.carried_envelope(&delivery.message)));
            if part.len() > limit {
                tracing::info!("cluster: a queued message too large for NATS stays behind");
                continue;
            }
            let _ = self.client.publish(reply.clone(), part).await;
        }
        let end = Head::End {
            subscriptions: moved
                .subscriptions
                .into_iter()
                .map(|(f, o)| (f, o.into()))
                .collect(),
            awaiting_release,
            pending_only: moved.pending_only,
        };
        let _ = self.client.publish(reply, part(&end, None)).await;
    }

    /// Tells the claimant that no session moves.
    pub(super) async fn nothing_to_hand_over(&self, reply: String) {
        let _ = self
            .client
            .publish(reply, part(&Head::NotMoved, None))
            .await;
    }

    fn carried_envelope(&self, message: &Message) -> Envelope {
        Envelope {
            topic: Some(message.topic.to_string()),
            ..self.envelope(message)
        }
    }

    /// Receives a session handed over on `parts`; `None` if the end does not
    /// come within the takeover timeout (or NATS says no node holds the id).
    pub(super) async fn receive_session(
        &self,
        broker: &Broker,
        mut parts: async_nats::Subscriber,
    ) -> Option<MovedSession> {
        let deadline = tokio::time::Instant::now() + self.takeover_timeout;
        let mut moved = MovedSession::default();
        loop {
            let part = tokio::time::timeout_at(deadline, parts.next())
                .await
                .ok()??;
            if part.status.is_some() {
                // "no responders": nobody holds the id
                return None;
            }
            match add_part(broker, &part.payload, &mut moved)? {
                Progress::More => continue,
                Progress::Moved => return Some(moved),
                Progress::Nothing => return None,
            }
        }
    }
}

/// Where a handover stands after one part.
enum Progress {
    More,
    Moved,
    /// The holder has no session to hand over.
    Nothing,
}

/// Adds one part of a handover to `moved`; `None`: an unreadable part.
fn add_part(broker: &Broker, payload: &Bytes, moved: &mut MovedSession) -> Option<Progress> {
    let (head, envelope) = read_part(payload)?;
    let message = |head: &DeliveryHead| -> Option<Delivery> {
        let envelope = envelope.as_ref()?;
        let topic = envelope.topic.clone()?;
        let message = super::inbound::mqtt_message(broker, envelope, topic);
        Some(Delivery {
            message: Arc::new(message),
            qos: head.qos.min(2),
            retain: head.retain,
            subscription_ids: head.subscription_ids.clone(),
        })
    };
    match head {
        Head::InFlight {
            pkid,
            released,
            delivery,
        } => moved.carried.inflight.push(InFlight {
            pkid,
            released,
            delivery: message(&delivery)?,
        }),
        Head::Queued(delivery) => moved.carried.queue.push(message(&delivery)?),
        Head::NotMoved => return Some(Progress::Nothing),
        Head::End {
            subscriptions,
            awaiting_release,
            pending_only,
        } => {
            moved.pending_only = pending_only;
            moved.subscriptions = subscriptions
                .into_iter()
                .map(|(f, o)| (f, o.into()))
                .collect();
            moved.carried.awaiting_release = awaiting_release;
            return Some(Progress::Moved);
        }
    }
    Some(Progress::More)
}

/// A handover answered in one part (a claim that wants no session: at most the
/// subscriptions kept for an id that never connected).
pub(super) fn single_part(broker: &Broker, payload: &Bytes) -> Option<MovedSession> {
    let mut moved = MovedSession::default();
    match add_part(broker, payload, &mut moved)? {
        Progress::Moved => Some(moved),
        Progress::More | Progress::Nothing => None,
    }
}

fn delivery_head(d: &Delivery) -> DeliveryHead {
    DeliveryHead {
        qos: d.qos,
        retain: d.retain,
        subscription_ids: d.subscription_ids.clone(),
    }
}

/// A JSON head line, then the envelope's bytes.
fn part(head: &Head, envelope: Option<&Envelope>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(&serde_json::to_vec(head).unwrap_or_default());
    out.put_u8(b'\n');
    if let Some(envelope) = envelope {
        out.put_slice(&envelope.encode());
    }
    out.freeze()
}

fn read_part(payload: &Bytes) -> Option<(Head, Option<Envelope>)> {
    let newline = payload.iter().position(|b| *b == b'\n')?;
    let head: Head = serde_json::from_slice(&payload[..newline]).ok()?;
    let rest = payload.slice(newline + 1..);
    let envelope = match rest.is_empty() {
        true => None,
        false => Some(Envelope::decode(rest)?),
    };
    Some((head, envelope))
}
