//! From the first byte to CONNACK: the protocol level, the CONNECT's checks,
//! authentication, takeover of a connected client id, and the session the
//! connection attaches to (a resumed one, or a new one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqgate_kit::clock::now_ms;
use mqgate_kit::history::{BrokerEvent, ConnectedEvent};
use mqgate_kit::{
    AuthDecision, ConnectCredentials, ConnectRefusal, ConnectionId, Transport, WillInfo,
};
use rumqttd::protocol::ConnAckProperties;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Connection, Stream};
use crate::broker::Broker;
use crate::cluster::handover::MovedSession;
use crate::counters::Counters;
use crate::session::{
    ClientDetails, ConnectionLink, Control, ControlSlot, FlowLimits, Resend, Session, SessionKind,
};
use crate::will::PendingWill;
use crate::wire::encode::{self, Ack};
use crate::wire::{self, reason, CodecError, ConnectPeek, ConnectRequest, Inbound, Version};

/// How long a CONNECT waits for the previous connection of its client id to go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// Reads and answers the CONNECT; `None` when the connection must close.
pub(super) async fn handshake(
    broker: &Arc<Broker>,
    stream: &mut Stream,
    rbuf: &mut BytesMut,
    peer: SocketAddr,
    transport: Transport,
) -> Option<Connection> {
    let created_at_ms = now_ms();
    let connect = read_connect(broker, stream, rbuf).await?;
    let version = connect.version;
    match admit(broker, connect, peer, transport, created_at_ms).await {
        Ok(connection) => Some(connection),
        Err(reason_code) => {
            refuse(broker, stream, version, reason_code).await;
            None
        }
    }
}

/// Answers a refused CONNECT and lets the caller close. 3.1.1 has no CONNACK
/// code for a malformed or invalid CONNECT: such a client is just disconnected.
async fn refuse(broker: &Broker, stream: &mut Stream, version: Version, reason_code: u8) {
    let has_v4_code = matches!(
        reason_code,
        reason::UNSUPPORTED_PROTOCOL_VERSION
            | reason::CLIENT_ID_NOT_VALID
            | reason::BAD_USERNAME_OR_PASSWORD
            | reason::NOT_AUTHORIZED
            | reason::BAD_AUTHENTICATION_METHOD
            | reason::SERVER_UNAVAILABLE
    );
    if version == Version::V4 && !has_v4_code {
        return;
    }
    let mut out = BytesMut::new();
    encode::connack(version, &mut out, false, reason_code, None);
    Counters::add(&broker.counters.packets_sent, 1);
    Counters::add(&broker.counters.bytes_sent, out.len() as u64);
    let _ = stream.write_all(&out, Duration::from_secs(2)).await;
}

/// Reads until a whole CONNECT is buffered.
async fn read_connect(
    broker: &Broker,
    stream: &mut Stream,
    rbuf: &mut BytesMut,
) -> Option<Box<ConnectRequest>> {
    let deadline = Instant::now() + broker.settings.connect_timeout;
    let version = loop {
        match wire::peek_connect(rbuf) {
            ConnectPeek::Supported(v) => break v,
            ConnectPeek::Unsupported { level } => {
                // MQTT 3.1 ("MQIsdp"), unknown levels and names
                let version = if level == 5 { Version::V5 } else { Version::V4 };
                refuse(
                    broker,
                    stream,
                    version,
                    reason::UNSUPPORTED_PROTOCOL_VERSION,
                )
                .await;
                return None;
            }
            ConnectPeek::NotConnect => return None,
            ConnectPeek::Incomplete => read_more(broker, stream, rbuf, deadline).await?,
        }
    };
    loop {
        match wire::read(version, rbuf, broker.hot.max_packet_size()) {
            Ok(Inbound::Connect(connect)) => {
                Counters::add(&broker.counters.packets_received, 1);
                return Some(connect);
            }
            Ok(_) => return None,
            Err(CodecError::Incomplete) => read_more(broker, stream, rbuf, deadline).await?,
            Err(e) => {
                tracing::debug!(%e, "bad CONNECT");
                if version == Version::V5 {
                    refuse(broker, stream, version, reason::MALFORMED_PACKET).await;
                }
                return None;
            }
        }
    }
}

async fn read_more(
    broker: &Broker,
    stream: &mut Stream,
    rbuf: &mut BytesMut,
    deadline: Instant,
) -> Option<()> {
    match tokio::time::timeout_at(deadline, stream.read(rbuf)).await {
        Ok(Ok(n)) if n > 0 => {
            Counters::add(&broker.counters.socket_reads, 1);
            Counters::add(&broker.counters.bytes_received, n as u64);
            Some(())
        }
        _ => None,
    }
}

/// The CONNECT's own checks; returns the client id to use and whether the
/// broker assigned it.
fn check_connect(broker: &Broker, c: &ConnectRequest) -> Result<(String, bool), u8> {
    let s = &broker.settings;
    if c.receive_maximum == Some(0) || c.max_packet_size == Some(0) {
        return Err(reason::PROTOCOL_ERROR);
    }
    if c.authentication_method.is_some() {
        return Err(reason::BAD_AUTHENTICATION_METHOD);
    }
    if c.version == Version::V4 && c.keepalive > s.max_keepalive {
        return Err(reason::CLIENT_ID_NOT_VALID);
    }
    if let Some(will) = &c.will {
        let topic_ok = std::str::from_utf8(&will.topic).is_ok_and(|t| {
            mqgate_kit::topic::is_valid_topic_name(t)
                && t.split('/').count() <= s.max_topic_levels
                && !t.starts_with('$')
        });
        if !topic_ok {
            return Err(reason::TOPIC_NAME_INVALID);
        }
    }
    if c.client_id.len() > s.max_client_id_len {
        return Err(reason::CLIENT_ID_NOT_VALID);
    }
    if !c.client_id.is_empty() {
        return Ok((c.client_id.clone(), false));
    }
    // 3.1.1 lets the server assign an id only to a clean session [MQTT-3.1.3-8]
    if c.version == Version::V4 && !c.clean_start {
        return Err(reason::CLIENT_ID_NOT_VALID);
    }
    Ok((format!("mqgate-{:016x}", rand::random::<u64>()), true))
}

fn refusal_code(r: ConnectRefusal) -> u8 {
    match r {
        ConnectRefusal::ClientIdentifierNotValid => reason::CLIENT_ID_NOT_VALID,
        ConnectRefusal::BadUsernameOrPassword => reason::BAD_USERNAME_OR_PASSWORD,
        ConnectRefusal::NotAuthorized => reason::NOT_AUTHORIZED,
        ConnectRefusal::ServerUnavailable => reason::SERVER_UNAVAILABLE,
    }
}

/// Seconds the session outlives the connection: MQTT 5's property (0 when
/// absent), 3.1.1's clean session flag; never beyond the configured maximum.
fn expiry_interval(broker: &Broker, c: &ConnectRequest) -> u32 {
    let requested = match c.version {
        Version::V5 => c.session_expiry.unwrap_or(0),
        Version::V4 if c.clean_start => 0,
        Version::V4 => u32::MAX,
    };
    requested.min(broker.settings.max_session_expiry)
}

/// Closes the connection that holds `session` now and waits for its teardown.
async fn take_over(session: &Session) {
    let Some(control) = session.control() else {
        return;
    };
    let (done, wait) = oneshot::channel();
    control.send(Control::TakeOver { done });
    let _ = tokio::time::timeout(TAKEOVER_WAIT, wait).await;
}

/// Everything between a decoded CONNECT and the CONNACK; `Err` is the refusal.
async fn admit(
    broker: &Arc<Broker>,
    mut c: Box<ConnectRequest>,
    peer: SocketAddr,
    transport: Transport,
    created_at_ms: i64,
) -> Result<Connection, u8> {
    let (client_id, assigned) = check_connect(broker, &c)?;
    let lock = broker.locks.lock(&client_id).await;
    let existing = broker.table.get(&client_id);
    let already_connected = match (&existing, broker.cluster.get()) {
        (Some(s), _) => s.kind() == SessionKind::Connected,
        (None, Some(cluster)) if broker.asks_whether_connected(&client_id) => {
            cluster.connected_elsewhere(&client_id).await
        }
        (None, _) => false,
    };
    let decision = broker
        .authenticate(&ConnectCredentials {
            client_id: &client_id,
            username: c.username.as_deref().filter(|u| !u.is_empty()),
            password: c.password.as_deref().map(str::as_bytes),
            peer,
            transport,
            proto_ver: c.version.level(),
            already_connected,
        })
        .await;
    let mountpoint: Option<Arc<str>> = match decision {
        AuthDecision::Deny(r) => return Err(refusal_code(r)),
        AuthDecision::AllowMounted(m) => Some(m.into()),
        AuthDecision::Allow | AuthDecision::NotMine => None,
    };
    let taking_over_here = already_connected && existing.is_some();
    let full = !taking_over_here && broker.connected_count() >= broker.settings.max_connections;
    if full || broker.health().is_err() {
        return Err(reason::SERVER_UNAVAILABLE);
    }
    if let Some(old) = existing.as_ref().filter(|_| taking_over_here) {
        take_over(old).await;
    }
    let moved = match (&existing, broker.cluster.get()) {
        // a session here means no other node has one (it was claimed then)
        (None, Some(cluster)) => cluster.claim(broker, &client_id, !c.clean_start).await,
        _ => None,
    };
    broker.wills.cancel(&client_id);
    let (session, start) = resume_or_start(broker, &client_id, &c, created_at_ms, moved);
    let session_present = matches!(start, Start::Resumed | Start::Moved);
    let server_keepalive = (c.version == Version::V5
        && c.keepalive > broker.settings.max_keepalive)
        .then_some(broker.settings.max_keepalive);
    let admitted = Admitted {
        connection_id: broker.next_connection_id(),
        control: Arc::new(ControlSlot::default()),
        keepalive: server_keepalive.unwrap_or(c.keepalive),
        expiry: expiry_interval(broker, &c),
        username: c.username.clone().filter(|u| !u.is_empty()),
        mountpoint,
        peer,
        transport,
        created_at_ms,
        connected_at_ms: now_ms(),
    };
    let will = will_info(&c);
    attach(broker, &session, &c, &admitted, will.clone(), start);
    drop(lock);
    announce(broker, &client_id, &c, &admitted, will, session_present);
    let will = c.will.take();
    let mut connection = connection(broker, session, &c, will, admitted);
    let properties = (c.version == Version::V5).then(|| ConnAckProperties {
        session_expiry_interval: (c.session_expiry.unwrap_or(0) != connection.expiry_interval)
            .then_some(connection.expiry_interval),
        receive_max: Some(broker.settings.receive_maximum),
        max_packet_size: Some(broker.hot.max_packet_size().min(u32::MAX as usize) as u32),
        assigned_client_identifier: assigned.then(|| client_id.clone()),
        topic_alias_max: Some(broker.settings.topic_alias_maximum),
        server_keep_alive: server_keepalive,
        ..Default::default()
    });
    encode::connack(
        c.version,
        &mut connection.out,
        session_present,
        reason::SUCCESS,
        properties,
    );
    connection.count_packet_out();
    if session_present {
        connection.resend();
    }
    Ok(connection)
}

/// What the broker decided about an admitted CONNECT.
struct Admitted {
    connection_id: ConnectionId,
    control: Arc<ControlSlot>,
    /// The keepalive in force: the client's, or the server's when capped.
    keepalive: u16,
    expiry: u32,
    username: Option<String>,
    mountpoint: Option<Arc<str>>,
    peer: SocketAddr,
    transport: Transport,
    created_at_ms: i64,
    connected_at_ms: i64,
}

/// The client id's session resumed (not clean start, and one exists), or a new
/// one in place of whatever was there; the flag is MQTT's session present.
/// Where a CONNECT's session comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// This node's persistent session of the client id.
    Resumed,
    /// A persistent session another node handed over.
    Moved,
    /// A new session with the subscriptions another node kept for the id.
    Adopted,
    New,
}

fn resume_or_start(
    broker: &Broker,
    client_id: &str,
    c: &ConnectRequest,
    created_at_ms: i64,
    moved: Option<MovedSession>,
) -> (Arc<Session>, Start) {
    // the old connection's teardown may have ended its session meanwhile
    match broker.table.get(client_id) {
        Some(old) if !c.clean_start && old.kind() != SessionKind::Pending => {
            broker.unschedule_expiry(&old);
            (old, Start::Resumed)
        }
        old => {
            if let Some(old) = old {
                broker.end_session(&old);
            }
            let session = Session::new(
                broker.next_session_id(),
                client_id.into(),
                SessionKind::Offline,
                ClientDetails::placeholder(created_at_ms),
            );
            let Some(moved) = moved.filter(|m| m.pending_only || !c.clean_start) else {
                return (session, Start::New);
            };
            for (filter, options) in moved.subscriptions {
                session.record_subscription(&filter, options);
            }
            if moved.pending_only {
                return (session, Start::Adopted);
            }
            session.put_flow(moved.carried);
            (session, Start::Moved)
        }
    }
}

/// Makes the connection the session's owner and the session the table's.
fn attach(
    broker: &Broker,
    session: &Arc<Session>,
    c: &ConnectRequest,
    a: &Admitted,
    will: Option<WillInfo>,
    start: Start,
) {
    session.attach(
        ConnectionLink {
            connection_id: a.connection_id,
            control: Arc::clone(&a.control),
        },
        ClientDetails {
            connection_id: a.connection_id,
            username: a.username.clone(),
            proto_ver: c.version.level(),
            keepalive: a.keepalive,
            clean_start: c.clean_start,
            expiry_interval: a.expiry,
            expiry_requested: c.session_expiry,
            peer: a.peer,
            transport: a.transport,
            created_at_ms: a.created_at_ms,
            connected_at_ms: a.connected_at_ms,
            disconnected_at_ms: None,
            will,
            mountpoint: a.mountpoint.clone(),
        },
        FlowLimits {
            max_inflight: c
                .receive_maximum
                .unwrap_or(u16::MAX)
                .min(broker.settings.max_inflight),
        },
    );
    match start {
        Start::Resumed => broker.table.reindex(session),
        Start::Moved | Start::Adopted | Start::New => {
            broker.table.insert(session);
            if let Some(cluster) = broker.cluster.get() {
                cluster.hold(&session.client_id, session.id);
            }
        }
    }
    if matches!(start, Start::Moved | Start::Adopted) {
        // the subscriptions it carried start routing here
        broker.router.activate(session);
    }
    adopt_pending(broker, session);
}

fn will_info(c: &ConnectRequest) -> Option<WillInfo> {
    c.will.as_ref().map(|w| WillInfo {
        topic: String::from_utf8_lossy(&w.topic).into_owned(),
        payload: w.payload.clone(),
        qos: w.qos,
        retain: w.retain,
        delay_interval: w.delay_interval,
    })
}

/// Counts the connection and tells the observers (records, presence).
fn announce(
    broker: &Broker,
    client_id: &str,
    c: &ConnectRequest,
    a: &Admitted,
    will: Option<WillInfo>,
    session_present: bool,
) {
    Counters::add(&broker.counters.connections_accepted, 1);
    tracing::debug!(
        client_id,
        connection_id = a.connection_id,
        clean_start = c.clean_start,
        session_present,
        version = c.version.level(),
        "connected"
    );
    broker.emit(BrokerEvent::Connected(Box::new(ConnectedEvent {
        client_id: client_id.to_string(),
        connection_id: a.connection_id,
        username: a.username.clone(),
        peer: a.peer,
        transport: a.transport,
        proto_ver: c.version.level(),
        keepalive: a.keepalive,
        clean_start: c.clean_start,
        will,
        at_ms: a.connected_at_ms,
    })));
}

/// The connection's own state, ready for the packet loop.
fn connection(
    broker: &Arc<Broker>,
    session: Arc<Session>,
    c: &ConnectRequest,
    will: Option<wire::InWill>,
    a: Admitted,
) -> Connection {
    let keepalive_backoff = broker.hot.keepalive_backoff().max(1.0);
    Connection {
        broker: Arc::clone(broker),
        client_id: Arc::clone(&session.client_id),
        recorders: broker.recorders_of(Some(&session.client_id), true),
        session,
        id: a.connection_id,
        version: c.version,
        username: a.username,
        peer: a.peer,
        will: will.map(|w| Box::new(pending_will(w, a.mountpoint.as_deref()))),
        mountpoint: a.mountpoint,
        out: BytesMut::new(),
        keepalive: (a.keepalive > 0)
            .then(|| Duration::from_secs_f32(a.keepalive as f32 * keepalive_backoff)),
        control: a.control,
        aliases_in: Vec::new(),
        aliases_out: Default::default(),
        client_alias_max: c
            .topic_alias_maximum
            .unwrap_or(0)
            .min(broker.settings.topic_alias_maximum),
        client_max_packet: c.max_packet_size.map(|n| n as usize),
        expiry_interval: a.expiry,
        expiry_was_zero: a.expiry == 0,
        held: None,
        ready: Vec::new(),
    }
}

/// Subscriptions made on behalf of this client id before it ever connected
/// become the session's own.
fn adopt_pending(broker: &Broker, session: &Arc<Session>) {
    let Some(pending) = broker.table.get_pending(&session.client_id) else {
        return;
    };
    for (filter, options) in pending.subscriptions() {
        broker.router.subscribe(session, &filter, options);
    }
    broker.forget_pending(&pending);
}

/// The will of a CONNECT as the broker keeps it.
fn pending_will(w: wire::InWill, mountpoint: Option<&str>) -> PendingWill {
    let client_topic = String::from_utf8_lossy(&w.topic).into_owned();
    PendingWill {
        topic: match mountpoint {
            Some(m) => super::mount_topic(m, &client_topic),
            None => client_topic.clone(),
        },
        client_topic,
        payload: w.payload,
        qos: w.qos.min(2),
        retain: w.retain,
        delay: Duration::from_secs(w.delay_interval.unwrap_or(0).into()),
        properties: w.properties,
    }
}

impl Connection {
    /// Resumes the QoS 1/2 exchanges of a resumed session, in order: PUBLISH
    /// again with DUP set, PUBREL again [MQTT-4.4.0-1].
    fn resend(&mut self) {
        for r in self.session.resend() {
            match r {
                Resend::Publish(ready) => self.write_delivery(ready, true),
                Resend::Release(pkid) => {
                    encode::ack(
                        self.version,
                        &mut self.out,
                        Ack::PubRel,
                        pkid,
                        reason::SUCCESS,
                    );
                    self.count_packet_out();
                }
            }
        }
    }
}
