//! Cluster mode: several mqgate nodes on one NATS server (or NATS cluster).
//!
//! What crosses nodes, and how:
//!
//! - **Interest.** A node subscribes on NATS only to the subjects of the
//!   filters its own sessions hold ([`subject`] maps topics and filters to
//!   subjects). The routing trie tells the link when a filter gains its first
//!   or loses its last subscriber ([`crate::routing::Interest`]); the trie's
//!   own slots are the reference count.
//! - **Messages.** A message published on this node is delivered to the local
//!   subscribers, then sent once to NATS ([`envelope`] carries QoS, retain,
//!   expiry and the MQTT 5 properties). Receiving nodes deliver it to their
//!   local subscribers only and never send it on. NATS does not echo a
//!   node's messages back to its publishing connection (and the origin id in
//!   the envelope would catch one).
//! - **Shared subscriptions** `$share/g/f` are NATS queue subscriptions: NATS
//!   picks one node, that node one of its members, so each message reaches one
//!   member cluster-wide. The origin node therefore leaves its own groups to
//!   NATS, except while the link is down (then its local members take them).
//! - **Retained messages** are also sent on one subject every node subscribes
//!   to, so every node keeps the same retained store; a starting node asks
//!   the others for theirs ([`retained_sync`]).
//! - **One client id, one session** ([`takeover`]): a node answers claims for
//!   the client ids it holds a session of; a CONNECT for an id this node does
//!   not hold claims it first, and a persistent session moves with its client
//!   ([`handover`]).
//! - **Management** ([`remote`]): a kick or a subscribe on behalf of a client
//!   id this node does not hold goes to the node that holds it. Lists,
//!   look-ups and figures gather every live node's answer ([`query`],
//!   [`members`]); a change of the hot settings reaches every node ([`hot`]).
//!
//! Core NATS delivers at most once between nodes: QoS 1/2 hold from the
//! publisher to its node and from a node to its subscribers, not across the
//! NATS hop (see the README's "Cluster" section).

pub mod envelope;
pub(crate) mod handover;
mod hot;
mod inbound;
mod link;
mod members;
pub(crate) mod query;
pub(crate) mod remote;
mod retained_sync;
pub mod subject;
mod takeover;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::broker::Broker;
use crate::message::Message;
use crate::routing::Interest;
use crate::session::SessionId;
use envelope::Envelope;
use subject::Subjects;

/// What a node needs to join a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node's name, in NATS's connection list and the logs.
    pub node_name: String,
    /// `nats://host:port`, or several separated by commas.
    pub nats_url: String,
    /// First token of every subject, so that clusters can share a NATS server.
    pub subject_prefix: String,
    /// How long a CONNECT waits for the node holding its client id.
    pub takeover_timeout: Duration,
    /// How long one attempt to reach NATS may take.
    pub connect_timeout: Duration,
    /// How long a management request waits for other nodes' answers.
    pub management_timeout: Duration,
    /// How often a node tells the others it is alive; one silent for three
    /// heartbeats is left out of cluster-wide lists.
    pub heartbeat: Duration,
    /// The longest pause between two attempts to reach NATS again.
    pub reconnect_max_delay: Duration,
    /// Messages waiting to be sent to NATS: beyond this, publishing clients
    /// wait for room (up to the slow-subscriber timeout); at twice this,
    /// messages are dropped and counted.
    pub max_pending: usize,
}

/// Figures of the link, published under `$SYS/broker/cluster/...`.
#[derive(Default)]
pub struct ClusterCounters {
    /// Messages sent to NATS.
    pub forwarded: AtomicU64,
    /// Messages that could not be sent (link down, queue full, too large).
    pub forward_dropped: AtomicU64,
    /// Messages from other nodes delivered here (live ones, not the retained store's).
    pub received: AtomicU64,
    /// Times the link was lost.
    pub disconnects: AtomicU64,
    /// Clients of this node taken over by a CONNECT on another node.
    pub taken_over: AtomicU64,
    /// Management requests to other nodes left unanswered within the timeout.
    pub unanswered: AtomicU64,
}

/// This node's end of the cluster; the broker holds it in cluster mode.
pub struct Cluster {
    /// Random per process start: tells our own messages from others'.
    pub node_id: u64,
    pub node_name: String,
    subjects: Subjects,
    commands: mpsc::UnboundedSender<link::Command>,
    /// Publishes queued for the link (bounded by `max_pending`).
    pending: AtomicUsize,
    max_pending: usize,
    /// Woken when the link has drained half of `max_pending`.
    room: tokio::sync::Notify,
    connected: AtomicBool,
    /// The largest message NATS takes (its `max_payload`, learnt on connecting).
    max_payload: AtomicUsize,
    takeover_timeout: Duration,
    management_timeout: Duration,
    /// The other nodes alive.
    members: members::Members,
    /// Publishes, plain subscriptions, claims; echo off.
    client: async_nats::Client,
    /// Shared groups' queue subscriptions; echo on (see `link::connect`).
    groups: async_nats::Client,
    pub counters: ClusterCounters,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot use NATS at {url}: {message}")]
    Nats { url: String, message: String },
}

/// Connects the broker to NATS and starts the link. A NATS server that is not
/// there yet is retried in the background; meanwhile the node serves alone.
pub async fn join(
    broker: &Arc<Broker>,
    settings: ClusterSettings,
) -> Result<Arc<Cluster>, ClusterError> {
    let (cluster, commands) = link::connect(&settings).await?;
    if broker.cluster.set(Arc::clone(&cluster)).is_err() {
        return Err(ClusterError::Nats {
            url: settings.nats_url,
            message: "the broker is already in a cluster".into(),
        });
    }
    broker
        .router
        .set_interest(Arc::clone(&cluster) as Arc<dyn Interest>);
    link::spawn(broker, &cluster, commands);
    publish_counters(broker, &cluster);
    tracing::info!(node = %cluster.node_name, url = %settings.nats_url, "cluster mode: linked through NATS");
    Ok(cluster)
}

fn publish_counters(broker: &Broker, cluster: &Arc<Cluster>) {
    type Read = fn(&Cluster) -> u64;
    let figures: [(&'static str, Read); 7] = [
        ("$SYS/broker/cluster/messages/forwarded", |c| {
            load(&c.counters.forwarded)
        }),
        ("$SYS/broker/cluster/messages/received", |c| {
            load(&c.counters.received)
        }),
        ("$SYS/broker/cluster/messages/dropped", |c| {
            load(&c.counters.forward_dropped)
        }),
        ("$SYS/broker/cluster/disconnects", |c| {
            load(&c.counters.disconnects)
        }),
        ("$SYS/broker/cluster/clients/taken_over", |c| {
            load(&c.counters.taken_over)
        }),
        ("$SYS/broker/cluster/management/unanswered", |c| {
            load(&c.counters.unanswered)
        }),
        ("$SYS/broker/cluster/connected", |c| {
            u64::from(c.is_connected())
        }),
    ];
    for (topic, read) in figures {
        let cluster: Weak<Cluster> = Arc::downgrade(cluster);
        broker.add_sys_counter(
            topic,
            Box::new(move || cluster.upgrade().map_or(0, |c| read(&c))),
        );
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Cluster {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn set_connected(&self, connected: bool) {
        let was = self.connected.swap(connected, Ordering::Relaxed);
        if was && !connected {
            bump(&self.counters.disconnects);
        }
    }

    /// Sends a message published on this node to the other nodes. Returns
    /// whether NATS now decides which member of each shared group gets it (the
    /// caller then leaves its own groups out); when false, local members must.
    pub(crate) fn forward(&self, message: &Message) -> bool {
        if !self.is_connected() {
            bump(&self.counters.forward_dropped);
            return false;
        }
        let subject = self.subjects.topic(&message.topic);
        let mut envelope = self.envelope(message);
        if subject.is_none() {
            envelope.topic = Some(message.topic.to_string());
        }
        let encoded = envelope.encode();
        // the retained copy carries the topic too
        if encoded.len() + message.topic.len() > self.max_payload.load(Ordering::Relaxed) {
            // too large for NATS: this node's subscribers (and groups) only
            bump(&self.counters.forward_dropped);
            return false;
        }
        let live = match &subject {
            Some(s) => self.send(s.clone(), encoded),
            None => self.send(self.subjects.long.clone(), encoded),
        };
        if message.retain {
            envelope.topic = Some(message.topic.to_string());
            self.send(self.subjects.retained.clone(), envelope.encode());
        }
        live && subject.is_some()
    }

    /// Whether publishers should wait for the link before going on.
    pub(crate) fn is_full(&self) -> bool {
        self.pending.load(Ordering::Relaxed) >= self.max_pending
    }

    /// Resolves once the link has room again, or after `patience`.
    pub(crate) async fn room(&self, patience: Duration) {
        let wait = async {
            loop {
                let notified = self.room.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if !self.is_full() {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(patience, wait).await;
    }

    /// The link drained one publish.
    fn drained(&self) {
        let left = self.pending.fetch_sub(1, Ordering::Relaxed) - 1;
        if left == self.max_pending / 2 {
            self.room.notify_waiters();
        }
    }

    /// What NATS carries of `message` (the topic only where the subject does not say it).
    fn envelope(&self, message: &Message) -> Envelope {
        Envelope {
            origin: self.node_id,
            id: message.id,
            qos: message.qos,
            retain: message.retain,
            expiry_ms: message.expires_at.map(|at| {
                at.saturating_duration_since(tokio::time::Instant::now())
                    .as_millis() as u64
            }),
            topic: None,
            properties: message.properties.as_deref().cloned(),
            payload: message.payload.clone(),
        }
    }

    /// Queues one publish for the link; false (and counted) when the queue is
    /// full even for publishers that waited.
    fn send(&self, subject: String, payload: bytes::Bytes) -> bool {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= self.max_pending.saturating_mul(2) {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            bump(&self.counters.forward_dropped);
            return false;
        }
        let sent = self
            .commands
            .send(link::Command::Publish { subject, payload })
            .is_ok();
        if !sent {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }

    /// This node now holds a session of `client_id`: it answers claims for it.
    pub(crate) fn hold(&self, client_id: &Arc<str>, session: SessionId) {
        let _ = self.commands.send(link::Command::Hold {
            client_id: Arc::clone(client_id),
            session,
        });
    }

    /// The session is gone from this node.
    pub(crate) fn release(&self, client_id: &Arc<str>, session: SessionId) {
        let _ = self.commands.send(link::Command::Release {
            client_id: Arc::clone(client_id),
            session,
        });
    }
}

impl Interest for Cluster {
    fn gained(&self, routing: &str, group: Option<&str>) {
        let _ = self.commands.send(link::Command::Gained(link::InterestKey {
            routing: routing.into(),
            group: group.map(Into::into),
        }));
    }

    fn lost(&self, routing: &str, group: Option<&str>) {
        let _ = self.commands.send(link::Command::Lost(link::InterestKey {
            routing: routing.into(),
            group: group.map(Into::into),
        }));
    }
}
