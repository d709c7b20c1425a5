//! A client's session: what survives its connections (subscriptions, the queue
//! of messages waiting for it, QoS 1/2 exchanges in flight both ways) and what
//! the management APIs report about it. This module owns all of it; everyone else
//! goes through [`Session`]'s methods.

mod flow;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mqgate_kit::{ClientCounters, ClientInfo, ConnectionId, Transport, WillInfo};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::message::Delivery;
pub use flow::{InFlight, Ready, Resend};

/// Broker-assigned, unique for the process's life (client ids can be reused).
pub type SessionId = u64;

/// Session expiry that never ends (MQTT 5's 0xFFFFFFFF).
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// Options of one subscription as the session holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOptions {
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
    pub subscription_id: Option<u32>,
}

impl SubOptions {
    pub fn with_qos(qos: u8) -> Self {
        SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
            subscription_id: None,
        }
    }
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A live connection owns the session.
    Connected,
    /// No connection; kept until its expiry because it asked to persist.
    Offline,
    /// Only subscriptions made on behalf of a client id that has not connected
    /// yet; they are not routed until it does.
    Pending,
}

/// Commands to the connection task that owns a session.
#[derive(Debug)]
pub enum Control {
    /// Close with this MQTT 5 reason (0x98 for a kick, 0x97 for a slow consumer);
    /// `discard` also ends the session; `done` fires after teardown.
    Close {
        reason: u8,
        discard: bool,
        done: Option<oneshot::Sender<()>>,
    },
    /// Another connection takes the client id over (reason 0x8E).
    TakeOver { done: oneshot::Sender<()> },
}

/// Where commands for a connection wait until its task takes them. Commands are
/// rare (a kick, a takeover, a slow subscriber's end), so a slot under a lock
/// serves: a channel would allocate a block of slots per connection.
#[derive(Debug, Default)]
pub struct ControlSlot {
    commands: Mutex<Vec<Control>>,
    notify: Notify,
}

impl ControlSlot {
    pub fn send(&self, command: Control) {
        self.commands.lock().push(command);
        self.notify.notify_one();
    }

    /// The next command, waiting for one.
    pub async fn recv(&self) -> Control {
        loop {
            let next = {
                let mut commands = self.commands.lock();
                (!commands.is_empty()).then(|| commands.remove(0))
            };
            if let Some(command) = next {
                return command;
            }
            self.notify.notified().await;
        }
    }

    /// Commands that came too late for a connection already closing: their
    /// senders learn the connection is gone.
    pub fn drain(&self) -> Vec<Control> {
        std::mem::take(&mut *self.commands.lock())
    }
}

/// The connection that owns a session right now.
#[derive(Debug, Clone)]
pub struct ConnectionLink {
    pub connection_id: ConnectionId,
    pub control: Arc<ControlSlot>,
}

/// What the session knows of its client, for the management APIs.
#[derive(Debug, Clone)]
pub struct ClientDetails {
    pub connection_id: ConnectionId,
    pub username: Option<String>,
    pub proto_ver: u8,
    pub keepalive: u16,
    pub clean_start: bool,
    /// Seconds the session outlives its connection ([`NEVER_EXPIRES`]: forever).
    pub expiry_interval: u32,
    /// Whether the client asked for the expiry with an MQTT 5 property.
    pub expiry_requested: Option<u32>,
    pub peer: SocketAddr,
    pub transport: Transport,
    pub created_at_ms: i64,
    pub connected_at_ms: i64,
    pub disconnected_at_ms: Option<i64>,
    pub will: Option<WillInfo>,
    /// Prefix of every topic this client sees (tenant isolation).
    pub mountpoint: Option<Arc<str>>,
}

impl ClientDetails {
    pub fn placeholder(created_at_ms: i64) -> ClientDetails {
        ClientDetails {
            connection_id: 0,
            username: None,
            proto_ver: 4,
            keepalive: 0,
            clean_start: false,
            expiry_interval: 0,
            expiry_requested: None,
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            transport: Transport::Tcp,
            created_at_ms,
            connected_at_ms: 0,
            disconnected_at_ms: None,
            will: None,
            mountpoint: None,
        }
    }
}

pub struct SessionState {
    pub kind: SessionKind,
    pub details: ClientDetails,
    pub connection: Option<ConnectionLink>,
    subscriptions: BTreeMap<String, SubOptions>,
    flow: flow::Flow,
    /// When an offline session ends.
    pub expires_at: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct AtomicCounters {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
}

impl AtomicCounters {
    fn snapshot(&self) -> ClientCounters {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientCounters {
            messages_in: load(&self.messages_in),
            messages_out: load(&self.messages_out),
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            packets_in: load(&self.packets_in),
            packets_out: load(&self.packets_out),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What [`Session::enqueue`] did with a delivery.
#[derive(Debug)]
pub enum Enqueued {
    Queued,
    /// A live session's queue is full: the publisher may wait for room.
    Full(Delivery),
    /// Not kept: QoS 0 for an offline session, a full offline queue, or a
    /// session that routes nothing.
    Dropped,
}

pub struct Session {
    pub id: SessionId,
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
    pub counters: AtomicCounters,
    connected: AtomicBool,
    /// Publishers gave up waiting for room in this session's queue: its connection
    /// is being closed as too slow, and nobody waits for it again meanwhile.
    given_up: AtomicBool,
    /// Wakes the owning connection: deliveries were queued.
    wake: Notify,
    /// Wakes publishers waiting for room in the queue.
    room: Notify,
}

impl Session {
    pub fn new(
        id: SessionId,
        client_id: Arc<str>,
        kind: SessionKind,
        details: ClientDetails,
    ) -> Arc<Session> {
        Arc::new(Session {
            id,
            client_id,
            connected: AtomicBool::new(kind == SessionKind::Connected),
            given_up: AtomicBool::new(false),
            state: Mutex::new(SessionState {
                kind,
                details,
                connection: None,
                subscriptions: BTreeMap::new(),
                flow: flow::Flow::default(),
                expires_at: None,
            }),
            counters: AtomicCounters::default(),
            wake: Notify::new(),
            room: Notify::new(),
        })
    }

    /// A session attached to nothing, for tests of the routing structures.
    #[cfg(test)]
    pub fn detached(id: SessionId, client_id: &str) -> Arc<Session> {
        Session::new(
            id,
            client_id.into(),
            SessionKind::Offline,
            ClientDetails::placeholder(0),
        )
    }

    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn kind(&self) -> SessionKind {
        self.state.lock().kind
    }

    // ---- connection ownership ------------------------------------------------

    /// Makes `link` the session's connection.
    pub fn attach(&self, link: ConnectionLink, details: ClientDetails, flow_limits: FlowLimits) {
        let mut s = self.state.lock();
        s.kind = SessionKind::Connected;
        s.details = details;
        s.connection = Some(link);
        s.expires_at = None;
        s.flow.limits = flow_limits;
        self.connected.store(true, Ordering::Relaxed);
        self.given_up.store(false, Ordering::Relaxed);
    }

    /// Lets go of the session if `connection_id` still owns it; returns whether
    /// it did. The session becomes offline; the caller decides whether it ends.
    pub fn detach(&self, connection_id: ConnectionId, at_ms: i64) -> bool {
        let mut s = self.state.lock();
        if s.connection.as_ref().map(|c| c.connection_id) != Some(connection_id) {
            return false;
        }
        s.connection = None;
        s.kind = SessionKind::Offline;
        s.details.disconnected_at_ms = Some(at_ms);
        self.connected.store(false, Ordering::Relaxed);
        drop(s);
        // publishers waiting for this session's room wait no more
        self.room.notify_waiters();
        true
    }

    pub fn control(&self) -> Option<Arc<ControlSlot>> {
        self.state
            .lock()
            .connection
            .as_ref()
            .map(|c| c.control.clone())
    }

    pub fn set_expiry(&self, expires_at: Option<Instant>) {
        self.state.lock().expires_at = expires_at;
    }

    // ---- subscriptions -------------------------------------------------------

    pub(crate) fn record_subscription(
        &self,
        filter: &str,
        options: SubOptions,
    ) -> Option<SubOptions> {
        self.state
            .lock()
            .subscriptions
            .insert(filter.to_string(), options)
    }

    pub(crate) fn forget_subscription(&self, filter: &str) -> bool {
        self.state.lock().subscriptions.remove(filter).is_some()
    }

    pub fn subscriptions(&self) -> Vec<(String, SubOptions)> {
        self.state
            .lock()
            .subscriptions
            .iter()
            .map(|(f, o)| (f.clone(), *o))
            .collect()
    }

    pub fn subscription_count(&self) -> usize {
        self.state.lock().subscriptions.len()
    }

    pub fn has_subscription(&self, filter: &str) -> bool {
        self.state.lock().subscriptions.contains_key(filter)
    }

    // ---- outgoing messages ---------------------------------------------------

    /// Queues a delivery. A live session's queue holds at most `max_queued`;
    /// an offline session keeps QoS 1 and 2 up to the same bound. A live session
    /// that publishers gave up on takes what fits and drops the rest.
    pub fn enqueue(&self, delivery: Delivery, max_queued: usize) -> Enqueued {
        let mut s = self.state.lock();
        match s.kind {
            SessionKind::Connected => {
                if s.flow.queue.len() >= max_queued {
                    return match self.given_up.load(Ordering::Relaxed) {
                        true => Enqueued::Dropped,
                        false => Enqueued::Full(delivery),
                    };
                }
                let was_empty = s.flow.queue.is_empty();
                s.flow.queue.push_back(delivery);
                drop(s);
                if was_empty {
                    self.wake.notify_one();
                }
                Enqueued::Queued
            }
            SessionKind::Offline if delivery.qos > 0 && s.flow.queue.len() < max_queued => {
                s.flow.queue.push_back(delivery);
                Enqueued::Queued
            }
            SessionKind::Offline | SessionKind::Pending => Enqueued::Dropped,
        }
    }

    /// Queues past the bound: for a publisher that waited out its patience with
    /// this session, which is being disconnected for it.
    pub fn enqueue_anyway(&self, delivery: Delivery) {
        let mut s = self.state.lock();
        if s.kind != SessionKind::Pending {
            s.flow.queue.push_back(delivery);
        }
        drop(s);
        self.wake.notify_one();
    }

    /// Whether a delivery would be taken now (or refused without waiting).
    pub fn has_room(&self, max_queued: usize) -> bool {
        let s = self.state.lock();
        s.kind != SessionKind::Connected
            || s.flow.queue.len() < max_queued
            || self.given_up.load(Ordering::Relaxed)
    }

    /// A publisher's patience with this session ran out; true for the first one
    /// (which has the connection closed). Publishers waiting for room wait no more.
    pub fn give_up(&self) -> bool {
        let first = !self.given_up.swap(true, Ordering::Relaxed);
        self.room.notify_waiters();
        first
    }

    /// Resolves when the owning connection should look at the queue again.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Resolves when the queue may have room again (or the session went offline).
    pub async fn room_freed(&self, max_queued: usize) {
        let notified = self.room.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.has_room(max_queued) {
            return;
        }
        notified.await
    }

    /// Moves queued deliveries into flight, as far as the client's Receive
    /// Maximum allows, at most `batch` of them. Expired ones are dropped and counted.
    pub fn take_ready(&self, batch: usize, max_queued: usize, out: &mut Vec<Ready>) -> usize {
        let mut s = self.state.lock();
        let was_full = s.flow.queue.len() >= max_queued;
        let expired = s.flow.take_ready(batch, Instant::now(), out);
        let room = was_full && s.flow.queue.len() < max_queued;
        drop(s);
        if room {
            self.room.notify_waiters();
        }
        expired
    }

    /// Whether deliveries wait that the window would let through now.
    pub fn has_ready(&self) -> bool {
        self.state.lock().flow.has_ready()
    }

    /// The QoS 1/2 exchanges to resume on a new connection, in their order.
    pub fn resend(&self) -> Vec<Resend> {
        self.state.lock().flow.resend()
    }

    /// PUBACK of a QoS 1 delivery; whether it was in flight.
    pub fn acknowledged(&self, pkid: u16) -> bool {
        self.state.lock().flow.acknowledged(pkid)
    }

    /// PUBREC of a QoS 2 delivery; whether it was in flight (the PUBREL follows).
    pub fn received(&self, pkid: u16) -> bool {
        self.state.lock().flow.received(pkid)
    }

    /// PUBCOMP of a QoS 2 delivery; whether it was released.
    pub fn completed(&self, pkid: u16) -> bool {
        self.state.lock().flow.completed(pkid)
    }

    /// Gives up a delivery taken into flight that cannot be sent (too large).
    pub fn abandon(&self, pkid: u16) {
        self.state.lock().flow.abandon(pkid);
    }

    // ---- incoming QoS 2 ------------------------------------------------------

    /// A QoS 2 PUBLISH arrived: true if its packet id is new (route it), false if
    /// it is a resend of one already received (acknowledge only).
    pub fn incoming_qos2(&self, pkid: u16) -> bool {
        self.state.lock().flow.awaiting_release.insert(pkid)
    }

    pub fn incoming_qos2_count(&self) -> usize {
        self.state.lock().flow.awaiting_release.len()
    }

    /// PUBREL: whether the packet id was awaiting it.
    pub fn released(&self, pkid: u16) -> bool {
        self.state.lock().flow.awaiting_release.remove(&pkid)
    }

    // ---- reporting -----------------------------------------------------------

    pub fn queue_len(&self) -> usize {
        self.state.lock().flow.queue.len()
    }

    pub fn info(&self) -> ClientInfo {
        let s = self.state.lock();
        let d = &s.details;
        ClientInfo {
            client_id: self.client_id.to_string(),
            connection_id: d.connection_id,
            username: d.username.clone(),
            connected: s.kind == SessionKind::Connected,
            proto_name: "MQTT".to_string(),
            proto_ver: d.proto_ver,
            keepalive: d.keepalive,
            clean_start: d.clean_start,
            session_expiry_interval: d.expiry_requested,
            peer: d.peer,
            transport: d.transport,
            created_at_ms: d.created_at_ms,
            connected_at_ms: d.connected_at_ms,
            disconnected_at_ms: d.disconnected_at_ms,
            will: d.will.clone(),
            subscription_count: s.subscriptions.len(),
            counters: self.counters.snapshot(),
            send_queue_len: s.flow.queue.len(),
        }
    }

    /// Takes out what a session carries to another node: its deliveries in
    /// flight and queued, and the QoS 2 packet ids awaiting their PUBREL.
    pub(crate) fn take_flow(&self) -> Carried {
        let mut flow = std::mem::take(&mut self.state.lock().flow);
        Carried {
            inflight: flow.take_inflight(),
            queue: flow.queue.into(),
            awaiting_release: flow.awaiting_release.into_iter().collect(),
        }
    }

    /// Puts in what a session carried from another node (before it is attached,
    /// so that the new connection resends what was in flight).
    pub(crate) fn put_flow(&self, carried: Carried) {
        let mut s = self.state.lock();
        s.flow.put_inflight(carried.inflight);
        s.flow.queue = carried.queue.into();
        s.flow.awaiting_release = carried.awaiting_release.into_iter().collect();
    }

    /// Drops everything queued or in flight (the session is ending).
    pub fn clear_flow(&self) {
        self.state.lock().flow = flow::Flow::default();
    }
}

/// A session's deliveries on their way to another node ([`Session::take_flow`]).
#[derive(Debug, Default)]
pub struct Carried {
    pub inflight: Vec<InFlight>,
    pub queue: Vec<Delivery>,
    pub awaiting_release: Vec<u16>,
}

/// The client's flow-control limits towards it.
#[derive(Debug, Clone, Copy)]
pub struct FlowLimits {
    /// QoS 1/2 deliveries in flight at once: min(client's Receive Maximum, server's).
    pub max_inflight: u16,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits { max_inflight: 100 }
    }
}

pub(crate) type AwaitingRelease = HashSet<u16>;
pub(crate) type Queue = VecDeque<Delivery>;
