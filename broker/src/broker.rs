//! [`Broker`]: the shared state of every connection and the operations the
//! gateway's management implementation calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mqgate_kit::clock::now_ms;
use mqgate_kit::history::{BrokerEvent, BrokerObserver, EventStage, Settled};
use mqgate_kit::{
    AuthDecision, ConnectAuthenticator, ConnectCredentials, ConnectRefusal, HotConfig, MessageId,
    Stats,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::authz::Authorizer;
use crate::cluster::Cluster;
use crate::counters::Counters;
use crate::message_ids::MessageIds;
use crate::process::ProcessSampler;
use crate::routing::Router;
use crate::session::{Session, SessionId};
use crate::settings::{BrokerSettings, HotLimits};
use crate::table::SessionTable;
use crate::will::Wills;

pub struct Broker {
    pub settings: BrokerSettings,
    pub(crate) hot: HotLimits,
    pub counters: Counters,
    pub(crate) table: SessionTable,
    pub(crate) router: Router,
    /// The link to the other nodes, in cluster mode only (set once, before
    /// the listeners start).
    pub(crate) cluster: OnceLock<Arc<Cluster>>,
    authenticators: RwLock<Vec<Arc<dyn ConnectAuthenticator>>>,
    /// Username and password pairs (the password file's), replaceable while
    /// the broker runs; `settings.users` at start.
    users: RwLock<Arc<Vec<(String, String)>>>,
    authorizer: RwLock<Option<Arc<dyn Authorizer>>>,
    observers: RwLock<Arc<[Arc<dyn BrokerObserver>]>>,
    /// Figures of other parts (the records) published under `$SYS` too.
    sys_counters: RwLock<Vec<SysCounter>>,
    /// Whether any observer wants per-message events (checked on every message).
    message_observers: AtomicBool,
    pub(crate) locks: ClientLocks,
    pub(crate) wills: Wills,
    /// Offline sessions with a finite expiry, by when they end.
    expiring: Mutex<BTreeMap<(Instant, SessionId), Arc<Session>>>,
    next_session_id: AtomicU64,
    next_connection_id: AtomicU64,
    message_ids: MessageIds,
    shutdown: watch::Sender<bool>,
    /// Each connection holds a clone; shutdown is complete when all are gone.
    connections_done: Mutex<Option<mpsc::Sender<()>>>,
    connections_gone: tokio::sync::Mutex<mpsc::Receiver<()>>,
    process: Mutex<ProcessSampler>,
    pub started_at_ms: i64,
}

impl Broker {
    /// A broker with no listeners yet, and its background tasks (session expiry,
    /// `$SYS` statistics) running until [`Broker::shutdown`].
    pub fn start(settings: BrokerSettings) -> Arc<Broker> {
        let (shutdown, _) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        let broker = Arc::new(Broker {
            hot: HotLimits::new(&settings.hot),
            users: RwLock::new(Arc::new(settings.users.clone())),
            settings,
            counters: Counters::default(),
            table: SessionTable::default(),
            router: Router::default(),
            cluster: OnceLock::new(),
            authenticators: RwLock::default(),
            authorizer: RwLock::default(),
            observers: RwLock::new(Arc::from(Vec::new())),
            sys_counters: RwLock::default(),
            message_observers: AtomicBool::new(false),
            locks: ClientLocks::default(),
            wills: Wills::default(),
            expiring: Mutex::default(),
            next_session_id: AtomicU64::new(1),
            next_connection_id: AtomicU64::new(1),
            message_ids: MessageIds::new(now_ms()),
            shutdown,
            connections_done: Mutex::new(Some(done_tx)),
            connections_gone: tokio::sync::Mutex::new(done_rx),
            process: Mutex::default(),
            started_at_ms: now_ms(),
        });
        // offline sessions and retained messages whose expiry has passed
        broker.every(Duration::from_secs(1), |broker| {
            broker.expire_due(Instant::now());
            broker.router.purge_expired_retained();
        });
        if let Some(interval) = broker.settings.sys_interval {
            broker.every(interval, crate::sys::publish_statistics);
        }
        broker
    }

    // ---- wiring --------------------------------------------------------------

    pub fn add_authenticator(&self, a: Arc<dyn ConnectAuthenticator>) {
        self.authenticators.write().push(a);
    }

    pub fn set_authorizer(&self, a: Option<Arc<dyn Authorizer>>) {
        *self.authorizer.write() = a;
    }

    pub(crate) fn authorizer(&self) -> Option<Arc<dyn Authorizer>> {
        self.authorizer.read().clone()
    }

    pub fn add_observer(&self, o: Arc<dyn BrokerObserver>) {
        let mut observers = self.observers.write();
        if o.wants_messages() {
            self.message_observers.store(true, Ordering::Relaxed);
        }
        let mut list: Vec<_> = observers.iter().cloned().collect();
        list.push(o);
        *observers = Arc::from(list);
    }

    /// Publishes `read()` under `topic` with the broker's own `$SYS` statistics.
    pub fn add_sys_counter(&self, topic: &'static str, read: Box<dyn Fn() -> u64 + Send + Sync>) {
        self.sys_counters.write().push(SysCounter { topic, read });
    }

    pub(crate) fn sys_counters(&self) -> Vec<(&'static str, String)> {
        self.sys_counters
            .read()
            .iter()
            .map(|c| (c.topic, (c.read)().to_string()))
            .collect()
    }

    pub fn hot(&self) -> HotConfig {
        self.hot.get()
    }

    /// Applies hot settings on this node only.
    pub fn set_hot(&self, hot: HotConfig) {
        self.hot.set(&hot);
    }

    /// Applies hot settings on this node and, in cluster mode, on every other.
    pub fn change_hot(&self, hot: HotConfig) {
        if let Some(cluster) = self.cluster.get() {
            cluster.share_hot(&hot);
        }
        self.set_hot(hot);
    }

    // ---- identities ----------------------------------------------------------

    pub(crate) fn next_session_id(&self) -> SessionId {
        self.next_session_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_message_id(&self) -> MessageId {
        self.message_ids.next()
    }

    /// Puts `slot` into every message id from now on (see [`MessageIds`]): the
    /// records store leased it, so that ids are unique among all processes
    /// writing one records database. Called before the listeners start.
    pub fn use_message_id_slot(&self, slot: u8) {
        self.message_ids.use_slot(slot, now_ms());
    }

    /// Whether message ids are unique cluster-wide: a message from another node
    /// then keeps the id its origin gave it.
    pub(crate) fn message_ids_are_shared(&self) -> bool {
        self.message_ids.has_slot()
    }

    // ---- events --------------------------------------------------------------

    /// Whether message events are worth building.
    pub(crate) fn has_message_observers(&self) -> bool {
        self.message_observers.load(Ordering::Relaxed)
    }

    /// The observers that want the message events of `client_id` (of a message
    /// without a sender when `None`), or `None` when no observer does. Asked
    /// once by a connection, which reports its messages to them without a lock,
    /// through the stage each offers when `staged` (see [`Recorders`]).
    pub(crate) fn recorders_of(&self, client_id: Option<&str>, staged: bool) -> Option<Recorders> {
        if !self.has_message_observers() {
            return None;
        }
        let recorders: Vec<_> = self
            .observers
            .read()
            .iter()
            .filter(|o| o.wants_messages() && client_id.is_none_or(|c| o.records_client(c)))
            .map(|o| match staged.then(|| o.stage()).flatten() {
                Some(stage) => Recording::Staged(stage),
                None => Recording::Direct(Arc::clone(o)),
            })
            .collect();
        (!recorders.is_empty()).then_some(Recorders {
            recordings: recorders,
            cycle_ms: None,
        })
    }

    /// Reports a connect or disconnect to every observer. Message events go to
    /// the observers that record their client ([`Recorders`]).
    pub(crate) fn emit(&self, event: BrokerEvent<'_>) {
        let observers = Arc::clone(&self.observers.read());
        for o in observers.iter() {
            o.on_event(&event);
        }
    }

    // ---- authentication ------------------------------------------------------

    /// Replaces the users CONNECTs are checked against (a newer password file).
    pub fn set_users(&self, users: Vec<(String, String)>) {
        *self.users.write() = Arc::new(users);
    }

    /// Whether some authenticator decides on whether `client_id` is connected.
    pub(crate) fn asks_whether_connected(&self, client_id: &str) -> bool {
        let authenticators = self.authenticators.read();
        authenticators
            .iter()
            .any(|a| a.asks_whether_connected(client_id))
    }

    /// Decides a CONNECT: dialect authenticators first, then the users, then
    /// `allow_anonymous`.
    pub(crate) async fn authenticate(&self, credentials: &ConnectCredentials<'_>) -> AuthDecision {
        let authenticators: Vec<_> = self.authenticators.read().clone();
        for a in authenticators {
            match a.authenticate(credentials).await {
                AuthDecision::NotMine => continue,
                decision => return decision,
            }
        }
        if let Some(username) = credentials.username {
            let users = Arc::clone(&self.users.read());
            if let Some((_, password)) = users.iter().find(|(u, _)| u == username) {
                return if credentials.password == Some(password.as_bytes()) {
                    AuthDecision::Allow
                } else {
                    AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword)
                };
            }
        }
        if self.hot.allow_anonymous() {
            AuthDecision::Allow
        } else {
            AuthDecision::Deny(ConnectRefusal::NotAuthorized)
        }
    }

    // ---- sessions ------------------------------------------------------------

    /// Ends a session for good: out of the routing trie and the table, its queue
    /// dropped; a will still waiting for its delay is published now.
    pub(crate) fn end_session(&self, session: &Arc<Session>) {
        self.router.deactivate(session);
        if self.table.remove(session) {
            if let Some(cluster) = self.cluster.get() {
                cluster.release(&session.client_id, session.id);
            }
        }
        self.unschedule_expiry(session);
        session.clear_flow();
    }

    /// Drops a pending session (its subscriptions were adopted or removed).
    pub(crate) fn forget_pending(&self, pending: &Arc<Session>) {
        if self.table.remove(pending) {
            if let Some(cluster) = self.cluster.get() {
                cluster.release(&pending.client_id, pending.id);
            }
        }
    }

    pub(crate) fn schedule_expiry(&self, session: &Arc<Session>, after: Duration) {
        let at = Instant::now() + after;
        session.set_expiry(Some(at));
        self.expiring
            .lock()
            .insert((at, session.id), Arc::clone(session));
    }

    pub(crate) fn unschedule_expiry(&self, session: &Session) {
        let at = {
            let mut s = session.state();
            s.expires_at.take()
        };
        if let Some(at) = at {
            self.expiring.lock().remove(&(at, session.id));
        }
    }

    fn expire_due(&self, now: Instant) {
        let due: Vec<((Instant, SessionId), Arc<Session>)> = {
            let mut expiring = self.expiring.lock();
            let later = expiring.split_off(&(now, SessionId::MAX));
            std::mem::replace(&mut *expiring, later)
                .into_iter()
                .collect()
        };
        for ((at, _), session) in due {
            let still_due = {
                let s = session.state();
                s.connection.is_none() && s.expires_at == Some(at)
            };
            if still_due {
                session.set_expiry(None);
                self.wills.fire_now(&session.client_id);
                self.end_session(&session);
            }
        }
    }

    // ---- observation ---------------------------------------------------------

    /// Whether the broker serves: not shutting down, and its routing structures
    /// and session table answer within half a second. `Err` says what is wrong.
    pub fn health(&self) -> Result<(), &'static str> {
        let patience = Duration::from_millis(500);
        if self.is_shutting_down() {
            Err("shutting down")
        } else if !self.router.responsive(patience) {
            Err("the routing core does not answer")
        } else if !self.table.responsive(patience) {
            Err("the session table does not answer")
        } else {
            Ok(())
        }
    }

    /// This node's figures as the management APIs show them: [`Self::stats`]
    /// plus the process's memory and CPU, the version and the subscribers.
    pub fn node_stats(&self) -> Stats {
        let (memory_bytes, memory_bytes_max, cpu_percent) = self.process.lock().sample();
        Stats {
            memory_bytes,
            memory_bytes_max,
            cpu_percent,
            subscribers: self.table.subscriber_count(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..self.stats()
        }
    }

    /// Broker-wide figures cheap enough for every `$SYS` tick: no process
    /// figures, no subscriber count (see [`Self::node_stats`]).
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let load = Counters::load;
        let g = self.table.gauges();
        let subscriptions = self.router.subscription_count() as u64;
        let topics = self.router.filter_count() as u64;
        let now = now_ms();
        Stats {
            sockets_accepted: load(&c.sockets_accepted),
            sockets_open: load(&c.sockets_open),
            sockets_closed: load(&c.sockets_closed),
            connections: g.connected,
            connections_max: Counters::high_water(&c.connections_max, g.connected),
            connections_accepted: load(&c.connections_accepted),
            sessions: g.sessions,
            sessions_max: Counters::high_water(&c.sessions_max, g.sessions),
            subscriptions,
            subscriptions_max: Counters::high_water(&c.subscriptions_max, subscriptions),
            topics,
            topics_max: Counters::high_water(&c.topics_max, topics),
            retained: self.router.retained_count() as u64,
            messages_received: load(&c.messages_received),
            messages_sent: load(&c.messages_sent),
            messages_dropped: load(&c.messages_dropped),
            packets_received: load(&c.packets_received),
            packets_sent: load(&c.packets_sent),
            bytes_received: load(&c.bytes_received),
            bytes_sent: load(&c.bytes_sent),
            socket_reads: load(&c.socket_reads),
            subscribers: 0,
            users: g.users,
            started_at_ms: self.started_at_ms,
            uptime_ms: (now - self.started_at_ms).max(0) as u64,
            memory_bytes: 0,
            memory_bytes_max: 0,
            cpu_percent: 0.0,
            version: String::new(),
            healthy: self.health().is_ok(),
            cluster_node: self.cluster.get().map(|c| c.node_name.clone()),
        }
    }

    /// What a publishing client awaits before its next packet while the
    /// cluster link is behind (a publisher waits as for a full local queue).
    pub(crate) fn cluster_room(&self) -> Option<Settled> {
        let cluster = self.cluster.get().filter(|c| c.is_full())?;
        let cluster = Arc::clone(cluster);
        let patience = self.settings.slow_subscriber_timeout;
        Some(Box::pin(async move { cluster.room(patience).await }))
    }

    /// The cluster link, in cluster mode.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    pub fn connected_count(&self) -> usize {
        self.table.connected_count()
    }

    // ---- shutdown ------------------------------------------------------------

    /// Runs `task` every `interval` until the broker shuts down or is dropped
    /// (the task holds it only while it runs).
    pub fn every(
        self: &Arc<Self>,
        interval: Duration,
        mut task: impl FnMut(&Broker) + Send + 'static,
    ) {
        let broker = Arc::downgrade(self);
        let mut shutdown = self.shutdown_signal();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tick.tick() => {}
                }
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                task(&broker);
            }
        });
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A token each connection holds for its life, so shutdown knows when the
    /// last one is gone. `None` once shutdown has begun.
    pub(crate) fn connection_token(&self) -> Option<mpsc::Sender<()>> {
        self.connections_done.lock().clone()
    }

    /// Tells every connection to close (MQTT 5 clients get DISCONNECT 0x8B) and
    /// waits, up to `grace`, until the last one has finished its teardown.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.shutdown.send(true);
        self.connections_done.lock().take();
        let mut gone = self.connections_gone.lock().await;
        let _ = tokio::time::timeout(grace, gone.recv()).await;
    }
}

/// A figure another part of the gateway publishes under `$SYS`.
struct SysCounter {
    topic: &'static str,
    read: Box<dyn Fn() -> u64 + Send + Sync>,
}

/// One async lock per client id in use: CONNECT, takeover, kick and
/// subscriptions on behalf of one client id happen one at a time.
#[derive(Default)]
pub(crate) struct ClientLocks {
    map: Mutex<HashMap<Arc<str>, Arc<tokio::sync::Mutex<()>>>>,
}

pub(crate) struct ClientGuard<'a> {
    locks: &'a ClientLocks,
    client_id: Arc<str>,
    mutex: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl ClientLocks {
    pub async fn lock(&self, client_id: &str) -> ClientGuard<'_> {
        let client_id: Arc<str> = client_id.into();
        let mutex = Arc::clone(self.map.lock().entry(Arc::clone(&client_id)).or_default());
        let guard = Arc::clone(&mutex).lock_owned().await;
        ClientGuard {
            locks: self,
            client_id,
            mutex,
            guard: Some(guard),
        }
    }
}

impl Drop for ClientGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.locks.map.lock();
        // the map's reference and ours: nobody else waits for this id
        if Arc::strong_count(&self.mutex) == 2 {
            map.remove(&self.client_id);
        }
    }
}

/// The observers that record one client's messages, as its connection (or one
/// management publish or will) holds them. A connection reports through the
/// [`EventStage`] of each observer that offers one, and flushes the stages
/// before it waits for anything; a one-off publish reports directly, since it
/// may wait (for room, for a commit) with nobody to flush.
pub(crate) struct Recorders {
    recordings: Vec<Recording>,
    /// The time of the events of this cycle of the connection's loop, read at
    /// its first event and forgotten at the flush: reading the clock per event
    /// cost as much as staging the event.
    cycle_ms: Option<i64>,
}

enum Recording {
    Direct(Arc<dyn BrokerObserver>),
    Staged(Box<dyn EventStage>),
}

impl Recorders {
    /// The time to record the events of this cycle at (milliseconds since the
    /// epoch).
    pub(crate) fn now_ms(&mut self) -> i64 {
        *self.cycle_ms.get_or_insert_with(now_ms)
    }

    pub(crate) fn report(&mut self, event: &BrokerEvent<'_>) {
        for recording in &mut self.recordings {
            match recording {
                Recording::Direct(observer) => observer.on_event(event),
                Recording::Staged(stage) => stage.record(event),
            }
        }
    }

    /// Hands the staged events to their observers; the next event reads the
    /// clock again.
    pub(crate) fn flush(&mut self) {
        self.cycle_ms = None;
        for recording in &mut self.recordings {
            if let Recording::Staged(stage) = recording {
                stage.flush();
            }
        }
    }

    /// What the observers ask the broker to await after reporting a client's
    /// message (a record committed, or room made in a full records queue).
    pub(crate) fn settled(&mut self) -> Option<Settled> {
        let mut waits = self
            .recordings
            .iter_mut()
            .filter_map(|recording| match recording {
                Recording::Direct(observer) => observer.settled(),
                Recording::Staged(stage) => stage.settled(),
            });
        let first = waits.next()?;
        let rest: Vec<Settled> = waits.collect();
        if rest.is_empty() {
            return Some(first);
        }
        Some(Box::pin(async move {
            first.await;
            futures::future::join_all(rest).await;
        }))
    }
}
