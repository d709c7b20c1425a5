//! One MQTT connection, from the first byte to teardown: protocol detection
//! (3.1.1 and 5 on one port), CONNECT validation and authentication, takeover,
//! the router link, and the loop that shuttles packets between the socket and the
//! router while keeping the session table exact.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use bytes::{Bytes, BytesMut};
use mqgate_kit::clock::now_ms;
use mqgate_kit::history::{BrokerEvent, ConnectedEvent, MessageInEvent};
use mqgate_kit::{
    AuthDecision, ConnectCredentials, ConnectRefusal, DisconnectReason, PublishProperties,
    Transport, WillInfo,
};
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{
    ConnAck, ConnAckProperties, ConnectReturnCode, DisconnectReasonCode, Filter, LastWill,
    LastWillProperties, Packet, PingResp, QoS, RetainForwardRule, SubAck, Subscribe,
    SubscribeReasonCode, Unsubscribe,
};
use rumqttd::Notification;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::codec::{self, CodecError, ConnectPeek, Version};
use super::table::{SessionEntry, SessionKind, SessionState, SubOptions};
use super::{refusal_codes, router_disconnect, Broker};

/// Commands from management calls to the task that owns a connection.
pub enum Control {
    Kick {
        discard_session: bool,
        done: oneshot::Sender<()>,
    },
    TakeOver {
        done: oneshot::Sender<()>,
    },
    Subscribe {
        filters: Vec<(String, SubOptions)>,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        filters: Vec<String>,
        done: oneshot::Sender<()>,
    },
}

/// A will the broker publishes when the connection ends abnormally.
#[derive(Debug, Clone)]
pub struct PendingWill {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub properties: PublishProperties,
    pub delay: Option<Duration>,
}

/// A socket carrying MQTT: plain TCP or WebSocket binary frames.
pub enum Stream {
    Tcp(TcpStream),
    Ws(Box<WebSocket>),
}

impl Stream {
    /// Reads more bytes into `buf`; 0 means the peer closed.
    async fn read(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Ws(ws) => loop {
                match ws.recv().await {
                    Some(Ok(Message::Binary(data))) => {
                        buf.extend_from_slice(&data);
                        if !data.is_empty() {
                            return Ok(data.len());
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Text(_))) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "MQTT over WebSocket uses binary frames",
                        ))
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(0),
                    Some(Err(e)) => return Err(std::io::Error::other(e)),
                }
            },
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(data).await,
            Stream::Ws(ws) => ws
                .send(Message::Binary(data.to_vec()))
                .await
                .map_err(std::io::Error::other),
        }
    }

    async fn close(&mut self) {
        match self {
            Stream::Tcp(s) => {
                let _ = s.shutdown().await;
            }
            Stream::Ws(ws) => {
                let _ = ws.send(Message::Close(None)).await;
            }
        }
    }
}

/// Counts a socket from accept to close.
struct SocketGuard(Arc<Broker>);

impl SocketGuard {
    fn new(broker: &Arc<Broker>) -> SocketGuard {
        broker
            .counters
            .sockets_accepted
            .fetch_add(1, Ordering::Relaxed);
        broker.counters.sockets_open.fetch_add(1, Ordering::Relaxed);
        SocketGuard(Arc::clone(broker))
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.0.counters.sockets_open.fetch_sub(1, Ordering::Relaxed);
        self.0
            .counters
            .sockets_closed
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The router link's sending half. Dropping it without a DISCONNECT would leave a
/// zombie session in the router, so the drop always sends one.
struct RouterLink(Option<LinkTx>);

impl RouterLink {
    fn tx(&mut self) -> &mut LinkTx {
        self.0.as_mut().expect("link open until close()")
    }

    async fn close(&mut self) {
        if let Some(mut tx) = self.0.take() {
            let _ = tx.send(router_disconnect()).await;
        }
    }
}

impl Drop for RouterLink {
    fn drop(&mut self) {
        if let Some(mut tx) = self.0.take() {
            // LinkTx::send never really awaits (it does a synchronous channel send).
            let _ = futures::executor::block_on(tx.send(router_disconnect()));
        }
    }
}

/// The state of an entry that only holds subscriptions made on behalf of a client
/// id that has not connected yet.
pub fn pending_state() -> SessionState {
    SessionState {
        kind: SessionKind::Pending,
        connection_id: 0,
        username: None,
        proto_ver: 4,
        keepalive: 0,
        clean_start: false,
        session_expiry_interval: None,
        peer: SocketAddr::from(([0, 0, 0, 0], 0)),
        transport: Transport::Tcp,
        created_at_ms: now_ms(),
        connected_at_ms: 0,
        disconnected_at_ms: None,
        will: None,
        subscriptions: BTreeMap::new(),
        unsynced: BTreeSet::new(),
        removed_offline: BTreeSet::new(),
        control: None,
    }
}

/// Why the connection loop ended.
#[derive(Debug)]
enum Exit {
    ClientDisconnect {
        publish_will: bool,
    },
    Lost,
    KeepaliveTimeout,
    TakenOver(oneshot::Sender<()>),
    Kicked {
        discard_session: bool,
        done: oneshot::Sender<()>,
    },
    /// Protocol violation; the MQTT 5 reason code to send.
    Protocol(u8),
    Shutdown,
}

/// A client SUBSCRIBE in flight through the router.
struct PendingSubscribe {
    forwarded: Vec<Filter>,
    /// Positions (in the client's order) the broker refused itself, with the code.
    refused: Vec<(usize, SubscribeReasonCode)>,
}

/// Serves one accepted socket until it closes.
pub async fn serve(broker: Arc<Broker>, stream: Stream, peer: SocketAddr, transport: Transport) {
    let _socket = SocketGuard::new(&broker);
    let created_at_ms = now_ms();
    let mut stream = stream;
    let mut buf = BytesMut::with_capacity(4096);
    let Some((version, packet)) = read_connect(&broker, &mut stream, &mut buf).await else {
        stream.close().await;
        return;
    };
    let Packet::Connect(connect, props, will, will_props, login) = packet else {
        stream.close().await;
        return;
    };

    // Client identifier: an empty one gets a broker-assigned id (3.1.1 only with
    // clean session).
    let mut client_id = connect.client_id.clone();
    let mut assigned_id = None;
    if client_id.is_empty() {
        if version == Version::V4 && !connect.clean_session {
            refuse_connect(
                &broker,
                &mut stream,
                version,
                ConnectRefusal::ClientIdentifierNotValid,
            )
            .await;
            return;
        }
        client_id = format!("mqgate-{:016x}", rand::random::<u64>());
        assigned_id = Some(client_id.clone());
    }

    let username = login
        .as_ref()
        .map(|l| l.username.clone())
        .filter(|u| !u.is_empty());
    let password = login.as_ref().map(|l| l.password.clone());
    let decision = broker
        .authenticate(&ConnectCredentials {
            client_id: &client_id,
            username: username.as_deref(),
            password: password.as_deref().map(str::as_bytes),
            peer,
            transport,
            proto_ver: version.level(),
            already_connected: broker
                .table
                .get(&client_id)
                .is_some_and(|e| e.state.lock().kind == SessionKind::Connected),
        })
        .await;
    if let AuthDecision::Deny(r) = decision {
        refuse_connect(&broker, &mut stream, version, r).await;
        return;
    }
    if broker.is_shutting_down()
        || broker.table_connected() >= broker.settings.max_connections as u64
    {
        refuse_connect(
            &broker,
            &mut stream,
            version,
            ConnectRefusal::ServerUnavailable,
        )
        .await;
        return;
    }

    let clean_start = connect.clean_session;
    let lock = broker.client_lock(&client_id).lock().await;
    take_over(&broker, &client_id).await;
    broker.cancel_delayed_will(&client_id);
    let previous = broker.table.get(&client_id);
    let (link_tx, link_rx, ack) = match broker.build_link(&client_id, clean_start).await {
        Ok(link) => link,
        Err(e) => {
            drop(lock);
            tracing::warn!(client_id, "router refused the link: {e}");
            refuse_connect(
                &broker,
                &mut stream,
                version,
                ConnectRefusal::ServerUnavailable,
            )
            .await;
            return;
        }
    };
    let mut link_tx = RouterLink(Some(link_tx));
    let ack: Option<Packet> = ack.into();
    let session_present = matches!(
        ack,
        Some(Packet::ConnAck(
            ConnAck {
                session_present: true,
                ..
            },
            _
        ))
    );

    // Subscriptions carried over: a resumed persistent session keeps its own, plus
    // what was changed on its behalf while offline; a pending entry's are injected.
    let mut subscriptions = BTreeMap::new();
    let mut inject = BTreeSet::new();
    let mut uninject = BTreeSet::new();
    if let Some(prev) = &previous {
        let s = prev.state.lock();
        match s.kind {
            SessionKind::Pending => {
                subscriptions = s.subscriptions.clone();
                inject = s.subscriptions.keys().cloned().collect();
            }
            SessionKind::Offline if session_present => {
                subscriptions = s.subscriptions.clone();
                inject = s.unsynced.clone();
                uninject = s.removed_offline.clone();
            }
            _ => {}
        }
    }

    let connection_id = broker.next_connection_id();
    let keepalive = connect.keep_alive;
    let will_info = will.as_ref().map(|w| WillInfo {
        topic: String::from_utf8_lossy(&w.topic).into_owned(),
        payload: w.message.clone(),
        qos: w.qos as u8,
        retain: w.retain,
        delay_interval: will_props.as_ref().and_then(|p| p.delay_interval),
    });
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let connected_at_ms = now_ms();
    let entry = SessionEntry::new(
        client_id.clone(),
        SessionState {
            kind: SessionKind::Connected,
            connection_id,
            username: username.clone(),
            proto_ver: version.level(),
            keepalive,
            clean_start,
            session_expiry_interval: props.as_ref().and_then(|p| p.session_expiry_interval),
            peer,
            transport,
            created_at_ms,
            connected_at_ms,
            disconnected_at_ms: None,
            will: will_info.clone(),
            subscriptions,
            unsynced: BTreeSet::new(),
            removed_offline: BTreeSet::new(),
            control: Some(control_tx),
        },
    );
    broker.table.insert(Arc::clone(&entry));
    broker.note_connected();
    drop(lock);

    let mut out = BytesMut::new();
    let connack_props = match version {
        Version::V5 => Some(ConnAckProperties {
            assigned_client_identifier: assigned_id,
            ..Default::default()
        }),
        Version::V4 => None,
    };
    let _ = codec::write(
        version,
        Packet::ConnAck(
            ConnAck {
                session_present,
                code: ConnectReturnCode::Success,
            },
            connack_props,
        ),
        &mut out,
    );

    let mut session = Session {
        broker: Arc::clone(&broker),
        entry: Arc::clone(&entry),
        version,
        link_rx,
        injected_subacks: VecDeque::new(),
        pending_subscribes: HashMap::new(),
        out,
        connection_id,
        will: will.map(|w| to_pending_will(w, will_props)),
    };
    session.count_sent(); // the CONNACK

    if !inject.is_empty() {
        let filters: Vec<Filter> = {
            let s = entry.state.lock();
            inject
                .iter()
                .filter_map(|f| s.subscriptions.get(f).map(|o| router_filter(f, o)))
                .collect()
        };
        if !filters.is_empty() {
            session.injected_subacks.push_back(None);
            let _ = link_tx
                .tx()
                .send(Packet::Subscribe(Subscribe { pkid: 0, filters }, None))
                .await;
        }
    }
    if !uninject.is_empty() {
        let _ = link_tx
            .tx()
            .send(Packet::Unsubscribe(
                Unsubscribe {
                    pkid: 0,
                    filters: uninject.into_iter().collect(),
                },
                None,
            ))
            .await;
    }
    broker.emit(BrokerEvent::Connected(Box::new(ConnectedEvent {
        client_id: client_id.clone(),
        connection_id,
        username: username.clone(),
        peer,
        transport,
        proto_ver: version.level(),
        keepalive,
        clean_start,
        will: will_info,
        at_ms: connected_at_ms,
    })));
    if session.flush(&mut stream).await.is_err() {
        session
            .teardown(&mut stream, &mut link_tx, Exit::Lost, clean_start)
            .await;
        return;
    }

    let exit = session
        .run(&mut stream, &mut link_tx, &mut buf, control_rx, keepalive)
        .await;
    session
        .teardown(&mut stream, &mut link_tx, exit, clean_start)
        .await;
}

/// Answers a CONNECT with a refusal in the client's protocol version and closes.
async fn refuse_connect(
    broker: &Arc<Broker>,
    stream: &mut Stream,
    version: Version,
    refusal: ConnectRefusal,
) {
    let (v4_code, v5_code) = refusal_codes(refusal);
    let mut out = BytesMut::new();
    match version {
        Version::V4 => codec::write_v4_connack_refusal(v4_code, &mut out),
        Version::V5 => {
            let connack = ConnAck {
                session_present: false,
                code: v5_code,
            };
            let _ = codec::write(version, Packet::ConnAck(connack, None), &mut out);
        }
    }
    broker.counters.packets_sent.fetch_add(1, Ordering::Relaxed);
    broker
        .counters
        .bytes_sent
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    let _ = stream.write_all(&out).await;
    stream.close().await;
}

/// Reads until a whole CONNECT is buffered; `None` if the socket must be closed.
async fn read_connect(
    broker: &Arc<Broker>,
    stream: &mut Stream,
    buf: &mut BytesMut,
) -> Option<(Version, Packet)> {
    let deadline = Instant::now() + broker.settings.connect_timeout;
    let version = loop {
        match codec::peek_connect_level(buf) {
            ConnectPeek::Level(4) => break Version::V4,
            ConnectPeek::Level(5) => break Version::V5,
            ConnectPeek::Level(_) => {
                // MQTT 3.1 (MQIsdp) and unknown levels: "unacceptable protocol version"
                let mut out = BytesMut::new();
                codec::write_v4_connack_refusal(1, &mut out);
                let _ = stream.write_all(&out).await;
                return None;
            }
            ConnectPeek::NotConnect => return None,
            ConnectPeek::Incomplete => read_more(broker, stream, buf, deadline).await?,
        }
    };
    let max = max_packet(broker);
    loop {
        match codec::read(version, buf, max) {
            Ok(packet) => {
                broker
                    .counters
                    .packets_received
                    .fetch_add(1, Ordering::Relaxed);
                return Some((version, packet));
            }
            Err(CodecError::Incomplete) => read_more(broker, stream, buf, deadline).await?,
            Err(e) => {
                tracing::debug!("bad CONNECT: {e}");
                return None;
            }
        }
    }
}

async fn read_more(
    broker: &Arc<Broker>,
    stream: &mut Stream,
    buf: &mut BytesMut,
    deadline: Instant,
) -> Option<()> {
    match tokio::time::timeout_at(deadline, stream.read(buf)).await {
        Ok(Ok(n)) if n > 0 => {
            broker.counters.socket_reads.fetch_add(1, Ordering::Relaxed);
            broker
                .counters
                .bytes_received
                .fetch_add(n as u64, Ordering::Relaxed);
            Some(())
        }
        _ => None,
    }
}

fn max_packet(broker: &Broker) -> usize {
    match broker.hot().max_packet_size {
        0 => usize::MAX,
        n => n as usize,
    }
}

/// Closes an existing connection of the same client id and waits for its
/// teardown, so the router has let go of the id before the new link is built.
async fn take_over(broker: &Arc<Broker>, client_id: &str) {
    let control = broker.table.get(client_id).and_then(|e| {
        let s = e.state.lock();
        (s.kind == SessionKind::Connected)
            .then(|| s.control.clone())
            .flatten()
    });
    if let Some(control) = control {
        let (done, wait) = oneshot::channel();
        if control.send(Control::TakeOver { done }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
    }
}

fn to_pending_will(w: LastWill, props: Option<LastWillProperties>) -> PendingWill {
    let props = props.unwrap_or(LastWillProperties {
        delay_interval: None,
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    });
    PendingWill {
        topic: String::from_utf8_lossy(&w.topic).into_owned(),
        payload: w.message,
        qos: (w.qos as u8).min(2),
        retain: w.retain,
        delay: props
            .delay_interval
            .filter(|d| *d > 0)
            .map(|d| Duration::from_secs(d as u64)),
        properties: PublishProperties {
            payload_format_indicator: props.payload_format_indicator,
            message_expiry_interval: props.message_expiry_interval,
            content_type: props.content_type,
            response_topic: props.response_topic,
            correlation_data: props.correlation_data,
            user_properties: props.user_properties,
        },
    }
}

fn router_filter(path: &str, o: &SubOptions) -> Filter {
    Filter {
        path: path.to_string(),
        qos: qos_of(o.qos),
        nolocal: o.no_local,
        preserve_retain: o.retain_as_published,
        retain_forward_rule: match o.retain_handling {
            1 => RetainForwardRule::OnNewSubscribe,
            2 => RetainForwardRule::Never,
            _ => RetainForwardRule::OnEverySubscribe,
        },
    }
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn granted_qos(code: &SubscribeReasonCode) -> Option<u8> {
    match code {
        SubscribeReasonCode::QoS0 | SubscribeReasonCode::Success(QoS::AtMostOnce) => Some(0),
        SubscribeReasonCode::QoS1 | SubscribeReasonCode::Success(QoS::AtLeastOnce) => Some(1),
        SubscribeReasonCode::QoS2 | SubscribeReasonCode::Success(QoS::ExactlyOnce) => Some(2),
        _ => None,
    }
}

struct Session {
    broker: Arc<Broker>,
    entry: Arc<SessionEntry>,
    version: Version,
    link_rx: LinkRx,
    /// Acks owed for SUBSCRIBEs the broker injected (packet id 0), in order.
    injected_subacks: VecDeque<Option<oneshot::Sender<()>>>,
    pending_subscribes: HashMap<u16, PendingSubscribe>,
    out: BytesMut,
    connection_id: u64,
    will: Option<PendingWill>,
}

impl Session {
    async fn run(
        &mut self,
        stream: &mut Stream,
        link: &mut RouterLink,
        buf: &mut BytesMut,
        mut control: mpsc::UnboundedReceiver<Control>,
        keepalive: u16,
    ) -> Exit {
        let mut shutdown = self.broker.shutdown_signal();
        let backoff = self.broker.hot().keepalive_backoff.max(1.0);
        let keepalive =
            (keepalive > 0).then(|| Duration::from_secs_f32(keepalive as f32 * backoff));
        let mut last_heard = Instant::now();
        // bytes already buffered (a SUBSCRIBE in the CONNECT's segment)
        if !buf.is_empty() {
            if let Err(exit) = self.process_input(buf, link).await {
                return exit;
            }
            if self.flush(stream).await.is_err() {
                return Exit::Lost;
            }
        }
        // One timer for the connection's life: it is re-armed only when it fires
        // early, not on every packet (timer updates per packet are costly).
        let far = Duration::from_secs(365 * 24 * 3600);
        let keepalive_timer = tokio::time::sleep(keepalive.unwrap_or(far));
        tokio::pin!(keepalive_timer);
        loop {
            let step: Result<(), Exit> = tokio::select! {
                _ = shutdown.changed() => Err(Exit::Shutdown),
                Some(cmd) = control.recv() => self.on_control(cmd, link).await,
                read = stream.read(buf) => match read {
                    Ok(0) | Err(_) => Err(Exit::Lost),
                    Ok(n) => {
                        last_heard = Instant::now();
                        let c = &self.broker.counters;
                        c.socket_reads.fetch_add(1, Ordering::Relaxed);
                        c.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                        self.entry.counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                        self.process_input(buf, link).await
                    }
                },
                notification = self.link_rx.next() => match notification {
                    Ok(n) => self.on_notifications(n).await,
                    Err(_) => Err(Exit::Shutdown),
                },
                _ = &mut keepalive_timer, if keepalive.is_some() => {
                    let deadline = last_heard + keepalive.unwrap_or(far);
                    if Instant::now() >= deadline {
                        Err(Exit::KeepaliveTimeout)
                    } else {
                        keepalive_timer.as_mut().reset(deadline);
                        Ok(())
                    }
                }
            };
            if let Err(exit) = step {
                return exit;
            }
            if self.flush(stream).await.is_err() {
                return Exit::Lost;
            }
        }
    }

    async fn flush(&mut self, stream: &mut Stream) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let n = self.out.len() as u64;
        let result = stream.write_all(&self.out).await;
        self.out.clear();
        self.broker
            .counters
            .bytes_sent
            .fetch_add(n, Ordering::Relaxed);
        self.entry
            .counters
            .bytes_out
            .fetch_add(n, Ordering::Relaxed);
        result
    }

    fn write(&mut self, packet: Packet) {
        if codec::write(self.version, packet, &mut self.out).is_ok() {
            self.count_sent();
        }
    }

    fn count_sent(&self) {
        self.broker
            .counters
            .packets_sent
            .fetch_add(1, Ordering::Relaxed);
        self.entry
            .counters
            .packets_out
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Decodes every whole packet in `buf` and hands the router's share over in
    /// one batch (one router event per read).
    async fn process_input(
        &mut self,
        buf: &mut BytesMut,
        link: &mut RouterLink,
    ) -> Result<(), Exit> {
        let max = max_packet(&self.broker);
        let mut to_router = Vec::new();
        let mut result = Ok(());
        loop {
            match codec::read(self.version, buf, max) {
                Ok(packet) => {
                    self.broker
                        .counters
                        .packets_received
                        .fetch_add(1, Ordering::Relaxed);
                    self.entry
                        .counters
                        .packets_in
                        .fetch_add(1, Ordering::Relaxed);
                    if let Err(exit) = self.on_client_packet(packet, &mut to_router) {
                        result = Err(exit);
                        break;
                    }
                }
                Err(CodecError::Incomplete) => break,
                Err(CodecError::TooLarge(_)) => {
                    result = Err(Exit::Protocol(0x95));
                    break;
                }
                Err(e) => {
                    tracing::debug!(client_id = %self.entry.client_id, "protocol error: {e}");
                    result = Err(Exit::Protocol(0x81));
                    break;
                }
            }
        }
        if let Some(last) = to_router.pop() {
            link.tx().buffer().extend(to_router);
            let _ = link.tx().send(last).await;
        }
        result
    }

    fn on_client_packet(
        &mut self,
        packet: Packet,
        to_router: &mut Vec<Packet>,
    ) -> Result<(), Exit> {
        match packet {
            Packet::Publish(publish, props) => {
                let topic_ok = std::str::from_utf8(&publish.topic).is_ok_and(|t| {
                    !t.contains(['+', '#'])
                        && (!t.is_empty()
                            || props.as_ref().is_some_and(|p| p.topic_alias.is_some()))
                });
                if !topic_ok {
                    return Err(Exit::Protocol(0x90));
                }
                let b = &self.broker;
                b.counters.messages_received.fetch_add(1, Ordering::Relaxed);
                self.entry
                    .counters
                    .messages_in
                    .fetch_add(1, Ordering::Relaxed);
                let topic = String::from_utf8_lossy(&publish.topic);
                b.note_retained(&topic, publish.retain, publish.payload.is_empty());
                if !b.table.has_subscriber(&topic) {
                    b.counters.messages_dropped.fetch_add(1, Ordering::Relaxed);
                }
                if b.has_message_observers() {
                    let id = b.next_message_id();
                    b.trace_message(&publish.topic, &publish.payload, id);
                    let qos = (publish.serialize()[0] >> 1) & 0b11;
                    b.emit(BrokerEvent::MessageIn(Box::new(MessageInEvent {
                        message_id: id,
                        client_id: Some(self.entry.client_id.clone()),
                        connection_id: Some(self.connection_id),
                        topic: topic.into_owned(),
                        qos,
                        retain: publish.retain,
                        payload: publish.payload.clone(),
                        at_ms: now_ms(),
                    })));
                }
                to_router.push(Packet::Publish(publish, props));
            }
            // Packet id 0 is never valid from a client; the broker's own injected
            // SUBSCRIBEs use it, so their acks can be told apart.
            Packet::Subscribe(subscribe, _)
                if subscribe.pkid == 0 || subscribe.filters.is_empty() =>
            {
                return Err(Exit::Protocol(0x82));
            }
            Packet::Unsubscribe(unsubscribe, _)
                if unsubscribe.pkid == 0 || unsubscribe.filters.is_empty() =>
            {
                return Err(Exit::Protocol(0x82));
            }
            Packet::Subscribe(subscribe, props) => {
                let mut forwarded = Vec::new();
                let mut refused = Vec::new();
                for (i, f) in subscribe.filters.into_iter().enumerate() {
                    let dollar = f.path.starts_with('$') && !f.path.starts_with("$share/");
                    if !mqgate_kit::topic::is_valid_topic_filter(&f.path) {
                        refused.push((i, self.failure(SubscribeReasonCode::TopicFilterInvalid)));
                    } else if dollar {
                        // the router disconnects clients for `$` filters; refuse them here
                        refused.push((i, self.failure(SubscribeReasonCode::NotAuthorized)));
                    } else {
                        forwarded.push(f);
                    }
                }
                if forwarded.is_empty() {
                    let codes: Vec<SubscribeReasonCode> =
                        refused.into_iter().map(|(_, c)| c).collect();
                    self.write(Packet::SubAck(
                        SubAck {
                            pkid: subscribe.pkid,
                            return_codes: codes,
                        },
                        None,
                    ));
                } else {
                    self.pending_subscribes.insert(
                        subscribe.pkid,
                        PendingSubscribe {
                            forwarded: forwarded.clone(),
                            refused,
                        },
                    );
                    to_router.push(Packet::Subscribe(
                        Subscribe {
                            pkid: subscribe.pkid,
                            filters: forwarded,
                        },
                        props,
                    ));
                }
            }
            Packet::Unsubscribe(unsubscribe, _) => {
                let reasons: Vec<u8> = {
                    let mut s = self.entry.state.lock();
                    let table = &self.broker.table;
                    unsubscribe
                        .filters
                        .iter()
                        .map(|f| {
                            if table.remove_subscription(&mut s.subscriptions, f) {
                                0x00
                            } else {
                                0x11
                            }
                        })
                        .collect()
                };
                codec::write_unsuback(self.version, unsubscribe.pkid, &reasons, &mut self.out);
                self.count_sent();
                // the router's own UNSUBACKs (one per removed filter) are swallowed
                to_router.push(Packet::Unsubscribe(
                    Unsubscribe {
                        pkid: 0,
                        filters: unsubscribe.filters,
                    },
                    None,
                ));
            }
            p @ (Packet::PubAck(..)
            | Packet::PubRec(..)
            | Packet::PubRel(..)
            | Packet::PubComp(..)) => to_router.push(p),
            Packet::PingReq(_) => self.write(Packet::PingResp(PingResp)),
            Packet::Disconnect(d, _) => {
                return Err(Exit::ClientDisconnect {
                    publish_will: d.reason_code == DisconnectReasonCode::DisconnectWithWillMessage,
                })
            }
            _ => return Err(Exit::Protocol(0x82)),
        }
        Ok(())
    }

    fn failure(&self, v5: SubscribeReasonCode) -> SubscribeReasonCode {
        match self.version {
            Version::V4 => SubscribeReasonCode::Failure,
            Version::V5 => v5,
        }
    }

    /// Handles one notification and every other one already queued.
    async fn on_notifications(&mut self, first: Option<Notification>) -> Result<(), Exit> {
        let mut next = first;
        let mut wake = false;
        for _ in 0..1024 {
            match next.take() {
                Some(Notification::Unschedule) => wake = true,
                Some(n) => self.on_notification(n)?,
                None => {}
            }
            match self.link_rx.recv_deadline(std::time::Instant::now()) {
                Ok(Some(n)) => next = Some(n),
                _ => break,
            }
        }
        if wake {
            let _ = self.link_rx.wake().await;
        }
        Ok(())
    }

    fn on_notification(&mut self, notification: Notification) -> Result<(), Exit> {
        if let Notification::Disconnect(..) = notification {
            return Err(Exit::Protocol(0x82));
        }
        let packet: Option<Packet> = notification.into();
        match packet {
            Some(Packet::Publish(publish, props)) => {
                let b = Arc::clone(&self.broker);
                b.counters.messages_sent.fetch_add(1, Ordering::Relaxed);
                self.entry
                    .counters
                    .messages_out
                    .fetch_add(1, Ordering::Relaxed);
                if b.has_message_observers() {
                    let message_id = b.traced_message_id(&publish.topic, &publish.payload);
                    let qos = (publish.serialize()[0] >> 1) & 0b11;
                    b.emit(BrokerEvent::MessageDelivered {
                        message_id,
                        client_id: self.entry.client_id.clone(),
                        connection_id: self.connection_id,
                        topic: String::from_utf8_lossy(&publish.topic).into_owned(),
                        qos,
                        at_ms: now_ms(),
                    });
                }
                let props = match self.version {
                    Version::V5 => props,
                    Version::V4 => None,
                };
                self.write(Packet::Publish(publish, props));
            }
            Some(Packet::SubAck(ack, props)) => {
                if ack.pkid == 0 {
                    if let Some(Some(done)) = self.injected_subacks.pop_front() {
                        let _ = done.send(());
                    }
                    return Ok(());
                }
                let Some(pending) = self.pending_subscribes.remove(&ack.pkid) else {
                    self.write(Packet::SubAck(ack, props));
                    return Ok(());
                };
                {
                    let mut s = self.entry.state.lock();
                    for (filter, code) in pending.forwarded.iter().zip(&ack.return_codes) {
                        if let Some(qos) = granted_qos(code) {
                            self.broker.table.set_subscription(
                                &mut s.subscriptions,
                                filter.path.clone(),
                                SubOptions {
                                    qos,
                                    no_local: filter.nolocal,
                                    retain_as_published: filter.preserve_retain,
                                    retain_handling: match filter.retain_forward_rule {
                                        RetainForwardRule::OnEverySubscribe => 0,
                                        RetainForwardRule::OnNewSubscribe => 1,
                                        RetainForwardRule::Never => 2,
                                    },
                                },
                            );
                        }
                    }
                }
                let mut codes = ack.return_codes;
                for (pos, code) in pending.refused {
                    codes.insert(pos.min(codes.len()), code);
                }
                self.write(Packet::SubAck(
                    SubAck {
                        pkid: ack.pkid,
                        return_codes: codes,
                    },
                    props,
                ));
            }
            // UNSUBACKs are the broker's own (see on_client_packet)
            Some(Packet::UnsubAck(..)) => {}
            Some(
                p @ (Packet::PubAck(..)
                | Packet::PubRec(..)
                | Packet::PubRel(..)
                | Packet::PubComp(..)),
            ) => self.write(p),
            Some(other) => tracing::debug!("unexpected router packet {other:?}"),
            None => {}
        }
        Ok(())
    }

    async fn on_control(&mut self, cmd: Control, link: &mut RouterLink) -> Result<(), Exit> {
        match cmd {
            Control::Kick {
                discard_session,
                done,
            } => Err(Exit::Kicked {
                discard_session,
                done,
            }),
            Control::TakeOver { done } => Err(Exit::TakenOver(done)),
            Control::Subscribe { filters, done } => {
                let router_filters: Vec<Filter> = {
                    let mut s = self.entry.state.lock();
                    filters
                        .into_iter()
                        .map(|(path, options)| {
                            let f = router_filter(&path, &options);
                            self.broker
                                .table
                                .set_subscription(&mut s.subscriptions, path, options);
                            f
                        })
                        .collect()
                };
                self.injected_subacks.push_back(Some(done));
                let _ = link
                    .tx()
                    .send(Packet::Subscribe(
                        Subscribe {
                            pkid: 0,
                            filters: router_filters,
                        },
                        None,
                    ))
                    .await;
                Ok(())
            }
            Control::Unsubscribe { filters, done } => {
                {
                    let mut s = self.entry.state.lock();
                    for f in &filters {
                        self.broker
                            .table
                            .remove_subscription(&mut s.subscriptions, f);
                    }
                }
                let _ = link
                    .tx()
                    .send(Packet::Unsubscribe(Unsubscribe { pkid: 0, filters }, None))
                    .await;
                let _ = done.send(());
                Ok(())
            }
        }
    }

    async fn teardown(
        mut self,
        stream: &mut Stream,
        link: &mut RouterLink,
        exit: Exit,
        clean_start: bool,
    ) {
        let (reason, v5_code, publish_will) = match &exit {
            Exit::ClientDisconnect { publish_will } => {
                (DisconnectReason::Normal, None, *publish_will)
            }
            Exit::Lost => (DisconnectReason::ConnectionLost, None, true),
            Exit::KeepaliveTimeout => (DisconnectReason::KeepaliveTimeout, Some(0x8D), true),
            Exit::TakenOver(_) => (DisconnectReason::TakenOver, Some(0x8E), true),
            Exit::Kicked { .. } => (DisconnectReason::Kicked, Some(0x98), true),
            Exit::Protocol(code) => (DisconnectReason::ProtocolError, Some(*code), true),
            Exit::Shutdown => (DisconnectReason::ServerShutdown, Some(0x8B), false),
        };
        if let (Version::V5, Some(code)) = (self.version, v5_code) {
            codec::write_v5_disconnect(code, &mut self.out);
            self.count_sent();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.flush(stream)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.close()).await;
        link.close().await;

        let discard = matches!(
            exit,
            Exit::Kicked {
                discard_session: true,
                ..
            }
        );
        let broker = Arc::clone(&self.broker);
        let client_id = self.entry.client_id.clone();
        let disconnected_at = now_ms();
        {
            let mut s = self.entry.state.lock();
            s.control = None;
            s.disconnected_at_ms = Some(disconnected_at);
            s.kind = SessionKind::Offline;
        }
        if clean_start || discard {
            broker.table.remove_if_same(&self.entry);
            if discard && !clean_start {
                broker.discard_router_session(&client_id).await;
            }
        }
        broker.note_disconnected();
        if publish_will {
            if let Some(will) = self.will.take() {
                broker.publish_will(&client_id, will);
            }
        }
        let username = self.entry.state.lock().username.clone();
        broker.emit(BrokerEvent::Disconnected {
            client_id,
            connection_id: self.connection_id,
            username,
            at_ms: disconnected_at,
            reason,
        });
        match exit {
            Exit::TakenOver(done) | Exit::Kicked { done, .. } => {
                let _ = done.send(());
            }
            _ => {}
        }
    }
}
