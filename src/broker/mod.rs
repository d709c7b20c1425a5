//! The broker: rumqttd's router as the routing core, behind mqgate's own MQTT
//! network layer ([`connection`]), with the session table ([`table`]) that makes
//! listing, kicking and subscribing on behalf possible.

pub mod codec;
pub mod connection;
pub mod filters;
pub mod internal;
pub mod listeners;
pub mod table;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqgate_kit::clock::now_ms;
use mqgate_kit::history::{BrokerEvent, BrokerObserver};
use mqgate_kit::{
    AuthDecision, ConnectAuthenticator, ConnectCredentials, ConnectRefusal, HotConfig, KickOptions,
    KickOutcome, MessageId, MgmtError, OnBehalf, PublishProperties, PublishRequest,
    SubscribeOutcome, SubscriptionRequest,
};
use parking_lot::{Mutex, RwLock};
use rumqttd::local::{LinkBuilder, LinkRx, LinkTx};
use rumqttd::protocol::{Disconnect, DisconnectReasonCode, Packet};
use rumqttd::{Notification, Router, RouterConfig};
use tokio::sync::{oneshot, watch};

use self::connection::Control;
use self::internal::InternalLink;
use self::table::{SessionKind, SessionTable, SubOptions};

/// Builds a router link: `(router client id, clean session)`. The router's event
/// sender type is private to rumqttd, so it is kept inside this closure.
/// Errors become text at once: rumqttd's `LinkError` is over 800 bytes.
type LinkFactory =
    Arc<dyn Fn(&str, bool) -> Result<(LinkTx, LinkRx, Notification), String> + Send + Sync>;

/// What the broker needs from the configuration.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub max_connections: usize,
    pub connect_timeout: Duration,
    pub hot: HotConfig,
    /// Users of the broker's general auth policy (username → password).
    pub users: Vec<(String, String)>,
    pub max_segment_size: usize,
    pub max_segment_count: usize,
    pub max_outgoing_packet_count: u64,
}

/// Broker-wide counters kept by the network layer.
#[derive(Debug, Default)]
pub struct Counters {
    pub sockets_accepted: AtomicU64,
    pub sockets_open: AtomicU64,
    pub sockets_closed: AtomicU64,
    pub connections: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_max: AtomicU64,
    pub sessions_max: AtomicU64,
    pub subscriptions_max: AtomicU64,
    pub topics_max: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub socket_reads: AtomicU64,
}

/// Maps a message back to the id it got when it entered, so deliveries can be
/// traced: a fixed ring indexed by a hash of (topic, payload). Bounded memory; a
/// collision loses the trace of one message, never the message.
struct MessageTrace {
    slots: Mutex<Vec<(u64, MessageId)>>,
}

const TRACE_SLOTS: usize = 1 << 16;

impl MessageTrace {
    fn key(topic: &[u8], payload: &[u8]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        topic.hash(&mut h);
        payload.hash(&mut h);
        h.finish() | 1
    }

    fn record(&self, topic: &[u8], payload: &[u8], id: MessageId) {
        let key = Self::key(topic, payload);
        self.slots.lock()[(key as usize) % TRACE_SLOTS] = (key, id);
    }

    fn lookup(&self, topic: &[u8], payload: &[u8]) -> Option<MessageId> {
        let key = Self::key(topic, payload);
        let (k, id) = self.slots.lock()[(key as usize) % TRACE_SLOTS];
        (k == key).then_some(id)
    }
}

pub struct Broker {
    link_factory: LinkFactory,
    pub table: SessionTable,
    pub counters: Counters,
    pub settings: BrokerSettings,
    hot: RwLock<HotConfig>,
    authenticators: RwLock<Vec<Arc<dyn ConnectAuthenticator>>>,
    observers: RwLock<Arc<[Arc<dyn BrokerObserver>]>>,
    /// Whether any observer wants per-message events (checked on every message).
    message_observers: std::sync::atomic::AtomicBool,
    internal: Arc<InternalLink>,
    next_connection_id: AtomicU64,
    next_message_id: AtomicU64,
    retained: Mutex<HashSet<String>>,
    trace: MessageTrace,
    /// Serialises connect, takeover and kick per client id (striped).
    client_locks: Vec<tokio::sync::Mutex<()>>,
    /// Wills waiting out their MQTT 5 delay, by client id.
    delayed_wills: Mutex<std::collections::HashMap<String, tokio::task::AbortHandle>>,
    shutdown: watch::Sender<bool>,
    pub started_at_ms: i64,
}

/// The router's client id for an MQTT client id. The router refuses ids with
/// `+ $ # /`; MQTT allows them, so they are escaped (and `%` itself).
pub fn router_client_id(client_id: &str) -> String {
    let mut out = String::with_capacity(client_id.len());
    for c in client_id.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '+' => out.push_str("%2B"),
            '$' => out.push_str("%24"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// The internal link's router id: `%in` is never produced by [`router_client_id`].
const INTERNAL_LINK_ID: &str = "%internal";

impl Broker {
    /// Spawns the router thread and the internal link.
    pub async fn start(settings: BrokerSettings) -> Result<Arc<Broker>, String> {
        let router_config = RouterConfig {
            // +2: the internal link and a transient link for session cleanup.
            max_connections: settings.max_connections + 2,
            max_outgoing_packet_count: settings.max_outgoing_packet_count,
            max_segment_size: settings.max_segment_size,
            max_segment_count: settings.max_segment_count,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        };
        let router_tx = Router::new(0, router_config).spawn();
        let link_factory: LinkFactory = Arc::new(move |id: &str, clean: bool| {
            LinkBuilder::new(id, router_tx.clone())
                .clean_session(clean)
                .dynamic_filters(true)
                .build()
                .map_err(|e| e.to_string())
        });
        let factory = Arc::clone(&link_factory);
        let (tx, rx, _) = tokio::task::spawn_blocking(move || factory(INTERNAL_LINK_ID, true))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("internal router link: {e}"))?;
        let internal = InternalLink::new(tx, rx);
        let (shutdown, _) = watch::channel(false);
        Ok(Arc::new(Broker {
            link_factory,
            table: SessionTable::default(),
            counters: Counters::default(),
            hot: RwLock::new(settings.hot.clone()),
            settings,
            authenticators: RwLock::default(),
            observers: RwLock::new(Arc::from(Vec::new())),
            message_observers: std::sync::atomic::AtomicBool::new(false),
            internal,
            next_connection_id: AtomicU64::new(1),
            next_message_id: AtomicU64::new(initial_message_id()),
            retained: Mutex::default(),
            trace: MessageTrace {
                slots: Mutex::new(vec![(0, 0); TRACE_SLOTS]),
            },
            client_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            delayed_wills: Mutex::default(),
            shutdown,
            started_at_ms: now_ms(),
        }))
    }

    pub fn add_authenticator(&self, a: Arc<dyn ConnectAuthenticator>) {
        self.authenticators.write().push(a);
    }

    pub fn add_observer(&self, o: Arc<dyn BrokerObserver>) {
        let mut obs = self.observers.write();
        let mut list: Vec<_> = obs.iter().cloned().collect();
        if o.wants_messages() {
            self.message_observers.store(true, Ordering::Relaxed);
        }
        list.push(o);
        *obs = Arc::from(list);
    }

    pub fn hot(&self) -> HotConfig {
        self.hot.read().clone()
    }

    pub fn set_hot(&self, hot: HotConfig) {
        *self.hot.write() = hot;
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_message_id(&self) -> MessageId {
        self.next_message_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn client_lock(&self, client_id: &str) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        client_id.hash(&mut h);
        &self.client_locks[(h.finish() as usize) % self.client_locks.len()]
    }

    /// Builds a router link on a blocking thread (the build is a synchronous
    /// round trip to the router).
    pub(crate) async fn build_link(
        &self,
        client_id: &str,
        clean: bool,
    ) -> Result<(LinkTx, LinkRx, Notification), String> {
        let factory = Arc::clone(&self.link_factory);
        let id = router_client_id(client_id);
        tokio::task::spawn_blocking(move || factory(&id, clean))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Whether message events are worth building.
    pub(crate) fn has_message_observers(&self) -> bool {
        self.message_observers.load(Ordering::Relaxed)
    }

    pub(crate) fn emit(&self, event: BrokerEvent) {
        let is_message = matches!(
            event,
            BrokerEvent::MessageIn(_) | BrokerEvent::MessageDelivered { .. }
        );
        let observers = Arc::clone(&self.observers.read());
        for o in observers.iter() {
            if !is_message || o.wants_messages() {
                o.on_event(&event);
            }
        }
    }

    pub(crate) fn trace_message(&self, topic: &[u8], payload: &[u8], id: MessageId) {
        self.trace.record(topic, payload, id);
    }

    pub(crate) fn traced_message_id(&self, topic: &[u8], payload: &[u8]) -> Option<MessageId> {
        self.trace.lookup(topic, payload)
    }

    /// Keeps the retained-message count in step with what the router does: a
    /// retained publish stores (or, empty, deletes); the router also deletes on a
    /// non-retained empty publish.
    pub(crate) fn note_retained(&self, topic: &str, retain: bool, payload_empty: bool) {
        if payload_empty {
            self.retained.lock().remove(topic);
        } else if retain {
            self.retained.lock().insert(topic.to_string());
        }
    }

    pub(crate) fn table_connected(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn note_connected(&self) {
        let c = &self.counters;
        c.connections_accepted.fetch_add(1, Ordering::Relaxed);
        let now = c.connections.fetch_add(1, Ordering::Relaxed) + 1;
        c.connections_max.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn note_disconnected(&self) {
        self.counters.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn retained_count(&self) -> u64 {
        self.retained.lock().len() as u64
    }

    /// Decides a CONNECT: dialect authenticators first, then the general policy.
    pub(crate) async fn authenticate(&self, credentials: &ConnectCredentials<'_>) -> AuthDecision {
        let authenticators: Vec<_> = self.authenticators.read().clone();
        for a in authenticators {
            match a.authenticate(credentials).await {
                AuthDecision::NotMine => continue,
                decision => return decision,
            }
        }
        if let Some(username) = credentials.username {
            if let Some((_, password)) = self.settings.users.iter().find(|(u, _)| u == username) {
                return if credentials.password == Some(password.as_bytes()) {
                    AuthDecision::Allow
                } else {
                    AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword)
                };
            }
        }
        if self.hot.read().allow_anonymous {
            AuthDecision::Allow
        } else {
            AuthDecision::Deny(ConnectRefusal::NotAuthorized)
        }
    }

    /// Publishes for a management API.
    pub async fn publish(&self, request: PublishRequest) -> Result<MessageId, MgmtError> {
        if self.is_shutting_down() {
            return Err(MgmtError::ShuttingDown);
        }
        if !mqgate_kit::topic::is_valid_topic_name(&request.topic) {
            return Err(MgmtError::InvalidTopicName(request.topic));
        }
        if request.qos > 2 {
            return Err(MgmtError::InvalidQos(request.qos));
        }
        let max = self.hot.read().max_packet_size as usize;
        if max > 0 && request.payload.len() + request.topic.len() > max {
            return Err(MgmtError::PayloadTooLarge);
        }
        let id = self.next_message_id();
        self.counters
            .messages_received
            .fetch_add(1, Ordering::Relaxed);
        if !self.table.has_subscriber(&request.topic) {
            self.counters
                .messages_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        self.note_retained(&request.topic, request.retain, request.payload.is_empty());
        if self.has_message_observers() {
            self.trace_message(request.topic.as_bytes(), &request.payload, id);
            self.emit(BrokerEvent::MessageIn(Box::new(
                mqgate_kit::history::MessageInEvent {
                    message_id: id,
                    client_id: request.sender.clone(),
                    connection_id: None,
                    topic: request.topic.clone(),
                    qos: request.qos,
                    retain: request.retain,
                    payload: request.payload.clone(),
                    at_ms: now_ms(),
                },
            )));
        }
        let properties = to_router_properties(&request.properties);
        self.internal
            .publish(
                &request.topic,
                request.payload,
                request.qos,
                request.retain,
                properties,
            )
            .await?;
        Ok(id)
    }

    /// Publishes a will, now or after its delay (a reconnect of the same client id
    /// cancels a delayed will).
    pub(crate) fn publish_will(self: &Arc<Self>, client_id: &str, will: connection::PendingWill) {
        let broker = Arc::clone(self);
        let delay = will.delay;
        let id = client_id.to_string();
        let task = tokio::spawn(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            broker.delayed_wills.lock().remove(&id);
            let request = PublishRequest {
                topic: will.topic,
                payload: will.payload,
                qos: will.qos,
                retain: will.retain,
                properties: will.properties,
                sender: Some(id.clone()),
            };
            if let Err(e) = broker.publish(request).await {
                tracing::warn!(client_id = %id, "will not published: {e}");
            }
        });
        if delay.is_some() {
            if let Some(old) = self
                .delayed_wills
                .lock()
                .insert(client_id.to_string(), task.abort_handle())
            {
                old.abort();
            }
        }
    }

    pub(crate) fn cancel_delayed_will(&self, client_id: &str) {
        if let Some(task) = self.delayed_wills.lock().remove(client_id) {
            task.abort();
        }
    }

    /// Closes a client's connection and, if asked, its session.
    pub async fn kick(
        &self,
        client_id: &str,
        options: KickOptions,
    ) -> Result<KickOutcome, MgmtError> {
        let entry = self.table.get(client_id);
        let Some(entry) = entry else {
            return Ok(KickOutcome::NotFound);
        };
        let control = {
            let s = entry.state.lock();
            match s.kind {
                SessionKind::Connected => s.control.clone(),
                SessionKind::Offline | SessionKind::Pending => None,
            }
        };
        if let Some(control) = control {
            let (done, wait) = oneshot::channel();
            if control
                .send(Control::Kick {
                    discard_session: options.discard_session,
                    done,
                })
                .is_ok()
            {
                let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
            }
            return Ok(KickOutcome::Disconnected);
        }
        if !options.discard_session {
            return Ok(KickOutcome::NotFound);
        }
        let _guard = self.client_lock(client_id).lock().await;
        let kind = entry.state.lock().kind;
        if kind == SessionKind::Offline {
            self.discard_router_session(client_id).await;
        }
        self.table.remove_if_same(&entry);
        Ok(KickOutcome::SessionDiscarded)
    }

    /// Wipes the router's stored session for a client id: a clean link replaces
    /// it and is closed at once.
    pub(crate) async fn discard_router_session(&self, client_id: &str) {
        match self.build_link(client_id, true).await {
            Ok((mut tx, _rx, _)) => {
                let _ = tx.send(router_disconnect()).await;
            }
            Err(e) => tracing::warn!(client_id, "could not discard router session: {e}"),
        }
    }

    pub async fn subscribe(
        &self,
        client_id: &str,
        requests: Vec<SubscriptionRequest>,
        mode: OnBehalf,
    ) -> Result<SubscribeOutcome, MgmtError> {
        for r in &requests {
            if !mqgate_kit::topic::is_valid_topic_filter(&r.topic_filter) {
                return Err(MgmtError::InvalidTopicFilter(r.topic_filter.clone()));
            }
            if r.qos > 2 {
                return Err(MgmtError::InvalidQos(r.qos));
            }
        }
        let filters: Vec<(String, SubOptions)> = requests
            .into_iter()
            .map(|r| (r.topic_filter, SubOptions::with_qos(r.qos)))
            .collect();
        let _guard = self.client_lock(client_id).lock().await;
        let entry = self.table.get(client_id);
        let control = entry.as_ref().and_then(|e| {
            let s = e.state.lock();
            (s.kind == SessionKind::Connected)
                .then(|| s.control.clone())
                .flatten()
        });
        if let Some(control) = control {
            let (done, wait) = oneshot::channel();
            control
                .send(Control::Subscribe { filters, done })
                .map_err(|_| MgmtError::ClientNotFound)?;
            tokio::time::timeout(Duration::from_secs(5), wait)
                .await
                .map_err(|_| MgmtError::Timeout)?
                .map_err(|_| MgmtError::ClientNotFound)?;
            return Ok(SubscribeOutcome::Live);
        }
        match entry {
            Some(entry) => {
                let mut s = entry.state.lock();
                let outcome = match s.kind {
                    SessionKind::Offline => SubscribeOutcome::Offline,
                    _ => SubscribeOutcome::Pending,
                };
                for (filter, options) in filters {
                    self.table
                        .set_subscription(&mut s.subscriptions, filter.clone(), options);
                    s.unsynced.insert(filter);
                }
                Ok(outcome)
            }
            None if mode == OnBehalf::CreateIfAbsent => {
                let mut state = connection::pending_state();
                for (filter, options) in filters {
                    state.unsynced.insert(filter.clone());
                    state.subscriptions.insert(filter, options);
                }
                self.table
                    .insert(table::SessionEntry::new(client_id.to_string(), state));
                Ok(SubscribeOutcome::Pending)
            }
            None => Err(MgmtError::ClientNotFound),
        }
    }

    pub async fn unsubscribe(
        &self,
        client_id: &str,
        filters: Vec<String>,
    ) -> Result<Vec<bool>, MgmtError> {
        let _guard = self.client_lock(client_id).lock().await;
        let Some(entry) = self.table.get(client_id) else {
            return Err(MgmtError::ClientNotFound);
        };
        let (existed, control) = {
            let mut s = entry.state.lock();
            let existed: Vec<bool> = filters
                .iter()
                .map(|f| s.subscriptions.contains_key(f))
                .collect();
            let control = (s.kind == SessionKind::Connected)
                .then(|| s.control.clone())
                .flatten();
            if control.is_none() {
                for f in &filters {
                    if self.table.remove_subscription(&mut s.subscriptions, f)
                        && !s.unsynced.remove(f)
                    {
                        s.removed_offline.insert(f.clone());
                    }
                }
                if s.kind == SessionKind::Pending && s.subscriptions.is_empty() {
                    drop(s);
                    self.table.remove_if_same(&entry);
                }
            }
            (existed, control)
        };
        if let Some(control) = control {
            let (done, wait) = oneshot::channel();
            control
                .send(Control::Unsubscribe { filters, done })
                .map_err(|_| MgmtError::ClientNotFound)?;
            tokio::time::timeout(Duration::from_secs(5), wait)
                .await
                .map_err(|_| MgmtError::Timeout)?
                .map_err(|_| MgmtError::ClientNotFound)?;
        }
        Ok(existed)
    }

    /// Tells every connection to close (MQTT 5 clients get DISCONNECT 0x8B) and
    /// waits, up to `grace`, for them to finish.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while self.counters.sockets_open.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub(crate) fn router_disconnect() -> Packet {
    Packet::Disconnect(
        Disconnect {
            reason_code: DisconnectReasonCode::NormalDisconnection,
        },
        None,
    )
}

pub(crate) fn to_router_properties(
    p: &PublishProperties,
) -> Option<rumqttd::protocol::PublishProperties> {
    if p.is_empty() {
        return None;
    }
    Some(rumqttd::protocol::PublishProperties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        topic_alias: None,
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
        subscription_identifiers: Vec::new(),
        content_type: p.content_type.clone(),
    })
}

pub(crate) fn refusal_codes(r: ConnectRefusal) -> (u8, rumqttd::protocol::ConnectReturnCode) {
    use rumqttd::protocol::ConnectReturnCode as C;
    match r {
        ConnectRefusal::ClientIdentifierNotValid => (2, C::ClientIdentifierNotValid),
        ConnectRefusal::BadUsernameOrPassword => (4, C::BadUserNamePassword),
        ConnectRefusal::NotAuthorized => (5, C::NotAuthorized),
        ConnectRefusal::ServerUnavailable => (3, C::ServerUnavailable),
    }
}

/// Message ids start at the current time in ms shifted left, so that ids stay
/// unique across restarts without persisting a counter.
fn initial_message_id() -> MessageId {
    (now_ms() as u64) << 16
}
