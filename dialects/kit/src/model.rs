//! Domain types shared by the broker and every dialect. They carry everything any
//! dialect needs; each dialect maps them onto its vendor's field names.

use std::net::SocketAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Broker-assigned message id. Unique for the life of the data directory's
/// counter (dialects render it, e.g. Easemob as 16 upper-case hex digits).
pub type MessageId = u64;

/// Broker-assigned connection id, unique per accepted MQTT connection.
pub type ConnectionId = u64;

/// How an MQTT connection reached the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    WebSocket,
}

/// The Last Will a client registered at CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WillInfo {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 will delay interval, seconds.
    pub delay_interval: Option<u32>,
}

/// Per-client traffic counters (packets and bytes are on the wire, messages are PUBLISHes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCounters {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
}

/// One MQTT client as the session table knows it: connected, or an offline session
/// that survives because it connected with clean start = false. Serializable, so
/// that cluster nodes can send it to each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientInfo {
    pub client_id: String,
    /// The id of the current (or last) network connection of this client.
    pub connection_id: ConnectionId,
    pub username: Option<String>,
    pub connected: bool,
    /// "MQTT" for 3.1.1 and 5.
    pub proto_name: String,
    /// 4 (3.1.1) or 5.
    pub proto_ver: u8,
    pub keepalive: u16,
    pub clean_start: bool,
    /// MQTT 5 session expiry interval from CONNECT, seconds.
    pub session_expiry_interval: Option<u32>,
    pub peer: SocketAddr,
    pub transport: Transport,
    /// Epoch ms of the TCP accept.
    pub created_at_ms: i64,
    /// Epoch ms of the CONNACK that accepted the client.
    pub connected_at_ms: i64,
    /// Epoch ms of the last disconnect, for offline sessions.
    pub disconnected_at_ms: Option<i64>,
    pub will: Option<WillInfo>,
    pub subscription_count: usize,
    pub counters: ClientCounters,
    /// Outgoing notifications waiting to be written to the socket.
    pub send_queue_len: usize,
}

/// A subscription held by a client's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub client_id: String,
    /// The filter as the client sent it, `$share/...` prefix included.
    pub topic_filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
}

/// A subscription to make on a client's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub topic_filter: String,
    pub qos: u8,
}

/// Filters for listing clients. Every `Some` must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientFilter {
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub connected: Option<bool>,
    pub proto_name: Option<String>,
    pub proto_ver: Option<u8>,
    pub clean_start: Option<bool>,
    /// Clients holding a subscription whose filter equals this string.
    pub subscribed_filter: Option<String>,
}

/// Filters for listing subscriptions. Every `Some` must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SubscriptionFilter {
    pub client_id: Option<String>,
    pub topic_filter: Option<String>,
    pub qos: Option<u8>,
}

/// A 1-based page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: usize,
    pub limit: usize,
}

impl PageRequest {
    pub const ALL: PageRequest = PageRequest {
        page: 1,
        limit: usize::MAX,
    };

    pub fn new(page: usize, limit: usize) -> Self {
        PageRequest {
            page: page.max(1),
            limit,
        }
    }

    /// Index of the first item of this page.
    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.limit)
    }
}

/// One page of results plus the total number of matching items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
}

/// MQTT 5 PUBLISH properties a management API can set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(String, String)>,
}

impl PublishProperties {
    pub fn is_empty(&self) -> bool {
        *self == PublishProperties::default()
    }
}

/// A message published through a management API.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub properties: PublishProperties,
    /// The client id the API names as sender, if any (recorded, never used for routing).
    pub sender: Option<String>,
    /// The tenant published for (see [`crate::AuthDecision::AllowMounted`]): the
    /// message reaches only that tenant's clients; records show `topic` without it.
    pub mountpoint: Option<String>,
}

/// Options of a kick.
#[derive(Debug, Clone, Copy, Default)]
pub struct KickOptions {
    /// Also discard the session (subscriptions, queued messages) of a client that
    /// connected with clean start = false.
    pub discard_session: bool,
}

/// What a kick found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickOutcome {
    /// A live connection was closed.
    Disconnected,
    /// No live connection; an offline session was discarded.
    SessionDiscarded,
    /// Nothing by that client id.
    NotFound,
}

/// Which sessions a subscribe on behalf may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBehalf {
    /// Only a connected client or an offline persistent session.
    ExistingSession,
    /// As above; for an unknown client id the subscription is kept and applied
    /// when a client with that id connects (mica-mqtt's semantics).
    CreateIfAbsent,
}

/// Where a subscribe on behalf landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeOutcome {
    /// The client is connected and receives matching messages from now on.
    Live,
    /// The client's offline persistent session holds it; it takes effect when the
    /// client reconnects (messages published meanwhile are not queued for it).
    Offline,
    /// Kept for a client id that has no session yet.
    Pending,
}

/// Broker-wide counters and gauges: one node's, or (from [`Stats::sum`]) a
/// whole cluster's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// TCP (and WebSocket) connections accepted since start, CONNECT or not.
    pub sockets_accepted: u64,
    /// Sockets open now, including those that have not sent CONNECT yet.
    pub sockets_open: u64,
    /// Sockets closed since start, for any reason.
    pub sockets_closed: u64,
    /// MQTT clients connected now (CONNACK sent).
    pub connections: u64,
    /// Highest value `connections` has had.
    pub connections_max: u64,
    /// Clients whose CONNECT was accepted since start.
    pub connections_accepted: u64,
    /// Sessions: connected clients plus offline persistent sessions.
    pub sessions: u64,
    pub sessions_max: u64,
    pub subscriptions: u64,
    pub subscriptions_max: u64,
    /// Sessions holding at least one subscription.
    pub subscribers: u64,
    /// Distinct topic filters subscribed.
    pub topics: u64,
    pub topics_max: u64,
    pub retained: u64,
    /// PUBLISH messages received from clients and management APIs.
    pub messages_received: u64,
    /// PUBLISH messages delivered to clients.
    pub messages_sent: u64,
    /// PUBLISH messages that matched no subscriber or could not be delivered.
    pub messages_dropped: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Socket reads that returned data (mica's `receivedTcps`).
    pub socket_reads: u64,
    /// Distinct non-empty usernames among connected clients.
    pub users: u64,
    pub started_at_ms: i64,
    pub uptime_ms: u64,
    /// Resident memory of the process, bytes (0 where unknown).
    pub memory_bytes: u64,
    pub memory_bytes_max: u64,
    /// Process CPU usage, percent of one core, averaged since the previous call.
    pub cpu_percent: f64,
    pub version: String,
    /// Whether the broker is serving: its routing structures answer and it is not
    /// shutting down (CONNECTs are refused while it is not).
    pub healthy: bool,
    /// This node's name in cluster mode; `None` for a single node.
    pub cluster_node: Option<String>,
}

impl Stats {
    /// A cluster's figures from its nodes' (the first is the node asked): counts,
    /// memory and CPU add up; highs add up too (so they bound the cluster's high
    /// from above); retained messages are each node's copy of one store; uptime
    /// is the oldest node's; healthy while every node is.
    pub fn sum(nodes: Vec<Stats>) -> Stats {
        let mut nodes = nodes.into_iter();
        let Some(mut total) = nodes.next() else {
            return Stats::default();
        };
        for node in nodes {
            let adds: [(&mut u64, u64); 24] = [
                (&mut total.sockets_accepted, node.sockets_accepted),
                (&mut total.sockets_open, node.sockets_open),
                (&mut total.sockets_closed, node.sockets_closed),
                (&mut total.connections, node.connections),
                (&mut total.connections_max, node.connections_max),
                (&mut total.connections_accepted, node.connections_accepted),
                (&mut total.sessions, node.sessions),
                (&mut total.sessions_max, node.sessions_max),
                (&mut total.subscriptions, node.subscriptions),
                (&mut total.subscriptions_max, node.subscriptions_max),
                (&mut total.subscribers, node.subscribers),
                (&mut total.topics, node.topics),
                (&mut total.topics_max, node.topics_max),
                (&mut total.messages_received, node.messages_received),
                (&mut total.messages_sent, node.messages_sent),
                (&mut total.messages_dropped, node.messages_dropped),
                (&mut total.packets_received, node.packets_received),
                (&mut total.packets_sent, node.packets_sent),
                (&mut total.bytes_received, node.bytes_received),
                (&mut total.bytes_sent, node.bytes_sent),
                (&mut total.socket_reads, node.socket_reads),
                (&mut total.users, node.users),
                (&mut total.memory_bytes, node.memory_bytes),
                (&mut total.memory_bytes_max, node.memory_bytes_max),
            ];
            for (sum, value) in adds {
                *sum = sum.saturating_add(value);
            }
            total.retained = total.retained.max(node.retained);
            total.uptime_ms = total.uptime_ms.max(node.uptime_ms);
            total.started_at_ms = total.started_at_ms.min(node.started_at_ms);
            total.cpu_percent += node.cpu_percent;
            total.healthy &= node.healthy;
        }
        total
    }
}

/// Read model of the running configuration.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    pub mqtt: MqttConfigView,
    pub hot: HotConfig,
    pub dialects: Vec<DialectListenerView>,
    pub docs_listen: Option<SocketAddr>,
    pub data_dir: String,
}

/// The MQTT listeners and limits that need a restart to change.
#[derive(Debug, Clone, Serialize)]
pub struct MqttConfigView {
    pub tcp_listen: Option<SocketAddr>,
    pub ws_listen: Option<SocketAddr>,
    /// URL paths the WebSocket listener upgrades, the main one first.
    pub ws_paths: Vec<String>,
    /// NanoMQ-format ACL file the broker enforces (when it exists at start).
    pub acl_file: Option<String>,
    /// NanoMQ-format password file the broker checks CONNECTs against (when it
    /// exists at start).
    pub password_file: Option<String>,
    pub max_connections: usize,
    pub max_inflight: u16,
}

/// Settings that can change while the broker runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotConfig {
    /// Clients that no dialect's authenticator claims may connect without credentials.
    pub allow_anonymous: bool,
    /// Largest MQTT packet accepted from a client, bytes.
    pub max_packet_size: u32,
    /// Largest packet sent to a client, bytes (0: no limit beyond the client's own).
    pub client_max_packet_size: u32,
    /// A client is disconnected after keepalive × this factor without a packet.
    pub keepalive_backoff: f32,
    /// Largest number of queued outgoing messages per client.
    pub max_queued_messages: u32,
}

/// A change to [`HotConfig`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct HotConfigPatch {
    pub allow_anonymous: Option<bool>,
    pub max_packet_size: Option<u32>,
    pub client_max_packet_size: Option<u32>,
    pub keepalive_backoff: Option<f32>,
    pub max_queued_messages: Option<u32>,
}

/// Where a dialect listens.
#[derive(Debug, Clone, Serialize)]
pub struct DialectListenerView {
    pub name: String,
    pub enabled: bool,
    pub listen: SocketAddr,
}

/// Broker-level process control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAction {
    /// Graceful stop of the whole gateway.
    Stop,
    /// Graceful stop followed by a fresh start with the same configuration.
    Restart,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectReason {
    /// The client sent DISCONNECT.
    Normal,
    /// The socket closed or failed without DISCONNECT.
    ConnectionLost,
    KeepaliveTimeout,
    /// Another connection took over the client id.
    TakenOver,
    /// A management API kicked the client.
    Kicked,
    /// The client sent something the broker could not accept.
    ProtocolError,
    ServerShutdown,
}

impl DisconnectReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            DisconnectReason::Normal => "normal",
            DisconnectReason::ConnectionLost => "connection_lost",
            DisconnectReason::KeepaliveTimeout => "keepalive_timeout",
            DisconnectReason::TakenOver => "taken_over",
            DisconnectReason::Kicked => "kicked",
            DisconnectReason::ProtocolError => "protocol_error",
            DisconnectReason::ServerShutdown => "server_shutdown",
        }
    }
}
