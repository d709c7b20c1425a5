//! The link task: one task sends everything to NATS in the order the broker
//! asked (a subscription is sent, and a shared group's confirmed, before any
//! later publish, so a subscriber on this node gets the messages published here
//! after its SUBACK),
//! and keeps the NATS subscriptions that follow this node's interest and
//! sessions. Each subscription has a small task that hands what arrives to
//! the dispatcher ([`super::inbound`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::inbound::{self, Arrival, Route};
use super::subject::{self, Subjects};
use super::{bump, Cluster, ClusterCounters, ClusterError, ClusterSettings};
use crate::broker::Broker;
use crate::session::SessionId;

/// What the broker asks of the link, in order.
pub(super) enum Command {
    Publish {
        subject: String,
        payload: Bytes,
    },
    Gained(InterestKey),
    Lost(InterestKey),
    Hold {
        client_id: Arc<str>,
        session: SessionId,
    },
    Release {
        client_id: Arc<str>,
        session: SessionId,
    },
}

/// A routing filter with subscribers on this node, and the shared group, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct InterestKey {
    pub routing: Arc<str>,
    pub group: Option<Arc<str>>,
}

/// A task that ends (and so drops its NATS subscription) when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Messages from the subscriptions to the dispatcher; a full channel makes the
/// subscription tasks wait (and NATS buffer, then count a slow consumer).
const ARRIVALS: usize = 4096;

/// Two connections: one that publishes and holds the plain subscriptions with
/// echo off (NATS never hands a node its own messages back there), and one for
/// the shared groups' queue subscriptions, with echo on, so that NATS may pick
/// a member on the publishing node too.
pub(super) async fn connect(
    settings: &ClusterSettings,
) -> Result<(Arc<Cluster>, mpsc::UnboundedReceiver<Command>), ClusterError> {
    let slot: Slot = Arc::default();
    let client = open(options(settings, &slot).no_echo(), settings).await?;
    let groups = open(options(settings, &slot), settings).await?;
    let (commands, receiver) = mpsc::unbounded_channel();
    let cluster = Arc::new(Cluster {
        node_id: rand::random::<u64>(),
        node_name: settings.node_name.clone(),
        subjects: Subjects::new(&settings.subject_prefix),
        commands,
        pending: AtomicUsize::new(0),
        max_pending: settings.max_pending,
        room: tokio::sync::Notify::new(),
        connected: AtomicBool::new(false),
        max_payload: AtomicUsize::new(usize::MAX),
        takeover_timeout: settings.takeover_timeout,
        management_timeout: settings.management_timeout,
        members: super::members::Members::new(settings.heartbeat),
        client,
        groups,
        counters: ClusterCounters::default(),
    });
    let _ = slot.set(Arc::downgrade(&cluster));
    // a node that finds NATS at start is linked before it serves; one that
    // does not serves alone meanwhile
    let patience = settings.connect_timeout;
    let up = wait_connected(&cluster.client, patience).await
        && wait_connected(&cluster.groups, patience).await;
    if !up {
        tracing::warn!(url = %settings.nats_url, "cluster: NATS not reachable yet; serving alone until it is");
    }
    refresh_state(&cluster);
    Ok((cluster, receiver))
}

/// Where the connections' event callbacks find the cluster once it exists.
type Slot = Arc<std::sync::OnceLock<Weak<Cluster>>>;

fn options(settings: &ClusterSettings, slot: &Slot) -> async_nats::ConnectOptions {
    let max_delay = settings.reconnect_max_delay;
    let slot = Arc::clone(slot);
    async_nats::ConnectOptions::new()
        .name(&settings.node_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(settings.connect_timeout)
        .request_timeout(Some(settings.takeover_timeout))
        // 100 ms, doubling, up to the configured pause
        .reconnect_delay_callback(move |attempts| {
            let shift = attempts.min(16) as u32;
            Duration::from_millis(100u64 << shift).min(max_delay)
        })
        .event_callback(move |event| {
            let slot = Arc::clone(&slot);
            async move {
                let Some(cluster) = slot.get().and_then(Weak::upgrade) else {
                    return;
                };
                match event {
                    async_nats::Event::Connected => refresh_state(&cluster),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("cluster: NATS link lost; local delivery goes on");
                        cluster.set_connected(false);
                    }
                    other => tracing::info!(%other, "cluster: NATS event"),
                }
            }
        })
}

async fn open(
    options: async_nats::ConnectOptions,
    settings: &ClusterSettings,
) -> Result<async_nats::Client, ClusterError> {
    options
        .connect(settings.nats_url.as_str())
        .await
        .map_err(|e| ClusterError::Nats {
            url: settings.nats_url.clone(),
            message: e.to_string(),
        })
}

/// Whether the client connects within `patience`.
async fn wait_connected(client: &async_nats::Client, patience: Duration) -> bool {
    let connected = || client.connection_state() == async_nats::connection::State::Connected;
    let wait = async {
        while !connected() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(patience, wait).await.is_ok()
}

/// The connection's state as the client sees it (events may have fired before
/// the cluster existed to hear them).
fn refresh_state(cluster: &Cluster) {
    let up =
        |c: &async_nats::Client| c.connection_state() == async_nats::connection::State::Connected;
    let connected = up(&cluster.client) && up(&cluster.groups);
    if connected {
        let max_payload = cluster.client.server_info().max_payload;
        if max_payload > 0 {
            cluster.max_payload.store(max_payload, Ordering::Relaxed);
        }
    }
    cluster.set_connected(connected);
}

/// Starts the link and the dispatcher; both end when the broker shuts down.
pub(super) fn spawn(
    broker: &Arc<Broker>,
    cluster: &Arc<Cluster>,
    commands: mpsc::UnboundedReceiver<Command>,
) {
    let (arrivals, arriving) = mpsc::channel(ARRIVALS);
    let mut link = Link {
        cluster: Arc::clone(cluster),
        broker: Arc::downgrade(broker),
        arrivals,
        interest: HashMap::new(),
        held: HashMap::new(),
        always: Vec::new(),
    };
    let mut shutdown = broker.shutdown_signal();
    tokio::spawn(async move {
        link.subscribe_always().await;
        let mut commands = commands;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tick.tick() => refresh_state(&link.cluster),
                command = commands.recv() => match command {
                    Some(command) => link.run(command).await,
                    None => break,
                },
            }
        }
        // subscriptions end with the link; what is queued is not sent
        super::members::announce(&link.cluster, true).await;
        let _ = link.cluster.client.flush().await;
        let _ = link.cluster.groups.flush().await;
    });
    inbound::spawn(broker, cluster, arriving);
}

struct Link {
    cluster: Arc<Cluster>,
    broker: Weak<Broker>,
    arrivals: mpsc::Sender<Arrival>,
    interest: HashMap<InterestKey, Vec<Task>>,
    /// Client ids this node holds a session of, by session, and their claim subscription.
    held: HashMap<Arc<str>, (HashSet<SessionId>, Task)>,
    /// The subjects every node receives.
    always: Vec<Task>,
}

impl Link {
    async fn run(&mut self, command: Command) {
        match command {
            Command::Publish { subject, payload } => {
                self.cluster.drained();
                let counters = &self.cluster.counters;
                match self.cluster.client.publish(subject, payload).await {
                    Ok(()) => bump(&counters.forwarded),
                    Err(e) => {
                        tracing::debug!(%e, "cluster: publish not sent");
                        bump(&counters.forward_dropped);
                    }
                }
            }
            Command::Gained(key) => {
                let tasks = self.subscribe_interest(&key).await;
                self.interest.insert(key, tasks);
            }
            Command::Lost(key) => {
                self.interest.remove(&key);
            }
            Command::Hold { client_id, session } => self.hold(client_id, session).await,
            Command::Release { client_id, session } => {
                if let Some((sessions, _)) = self.held.get_mut(&client_id) {
                    sessions.remove(&session);
                    if sessions.is_empty() {
                        self.held.remove(&client_id);
                    }
                }
            }
        }
    }

    async fn subscribe_always(&mut self) {
        let subjects = &self.cluster.subjects;
        for (subject, route) in [
            (subjects.retained.clone(), Route::Retained),
            (subjects.long.clone(), Route::Long),
        ] {
            if let Some(task) = self.subscribe(subject, None, route).await {
                self.always.push(task);
            }
        }
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let answering = super::retained_sync::answer(Arc::clone(&broker), &self.cluster).await;
        self.always.extend(answering.map(Task));
        let querying = super::query::answer(Arc::clone(&broker), &self.cluster).await;
        self.always.extend(querying.map(Task));
        let following = super::hot::follow(Arc::clone(&broker), &self.cluster).await;
        self.always.extend(following.map(Task));
        self.always
            .extend(super::members::run(&self.cluster).await.map(Task));
        if self.cluster.is_connected() {
            let cluster = Arc::clone(&self.cluster);
            self.always.push(Task(tokio::spawn(async move {
                super::retained_sync::fetch(&broker, &cluster).await;
            })));
        }
    }

    /// The NATS subscriptions of one filter (a queue subscription per subject
    /// for a shared group). A filter too long for a subject needs none: the
    /// topics it matches are too long too, and travel on the "long" subject.
    async fn subscribe_interest(&self, key: &InterestKey) -> Vec<Task> {
        let Some(subjects) = self.cluster.subjects.filter(&key.routing) else {
            return Vec::new();
        };
        let mut tasks = Vec::new();
        for subject in subjects {
            let (queue, route) = match &key.group {
                None => (None, Route::Plain),
                Some(group) => (
                    Some(queue_name(group, &key.routing)),
                    Route::Group {
                        routing: Arc::clone(&key.routing),
                        group: Arc::clone(group),
                    },
                ),
            };
            tasks.extend(self.subscribe(subject, queue, route).await);
        }
        tasks
    }

    async fn subscribe(
        &self,
        subject: String,
        queue: Option<String>,
        route: Route,
    ) -> Option<Task> {
        let subscribed = match queue {
            None => self.cluster.client.subscribe(subject.clone()).await,
            Some(queue) => {
                let groups = &self.cluster.groups;
                let subscribed = groups.queue_subscribe(subject.clone(), queue).await;
                // the server must know the group before this node's next
                // publish (sent on the other connection) reaches it
                if let Err(e) = groups.flush().await {
                    tracing::debug!(%e, "cluster: queue subscription not confirmed");
                }
                subscribed
            }
        };
        let mut subscriber = match subscribed {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%e, subject, "cluster: cannot subscribe");
                return None;
            }
        };
        let arrivals = self.arrivals.clone();
        Some(Task(tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let arrival = Arrival {
                    route: route.clone(),
                    message,
                };
                if arrivals.send(arrival).await.is_err() {
                    return;
                }
            }
        })))
    }

    async fn hold(&mut self, client_id: Arc<str>, session: SessionId) {
        if let Some((sessions, _)) = self.held.get_mut(&client_id) {
            sessions.insert(session);
            return;
        }
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let connected_at_ms = broker
            .table
            .get(&client_id)
            .filter(|s| s.id == session)
            .map(|s| s.state().details.connected_at_ms);
        let subject = self.cluster.subjects.claim(&client_id);
        let Some(task) = super::takeover::answer_claims(broker, &self.cluster, subject).await
        else {
            return;
        };
        if let Some(at) = connected_at_ms {
            self.cluster.check_claim(&client_id, at).await;
        }
        self.held
            .insert(client_id, (HashSet::from([session]), Task(task)));
    }
}

/// NATS groups queue subscribers by queue name across subjects, while MQTT's
/// shared subscription is one group on one filter: the name carries both.
fn queue_name(group: &str, routing: &str) -> String {
    subject::token(&format!("{group}/{routing}"), 256)
}
