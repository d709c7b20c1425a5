//! What the broker takes from the configuration: every limit it enforces.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use mqgate_kit::HotConfig;

/// Limits fixed for the broker's life (a restart applies changes).
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// Most clients connected at once; further CONNECTs get "server unavailable".
    pub max_connections: usize,
    /// How long a new socket has to deliver its CONNECT.
    pub connect_timeout: Duration,
    /// Users of the general auth policy (username, password).
    pub users: Vec<(String, String)>,
    /// QoS 1/2 deliveries in flight per client (capped by its Receive Maximum).
    pub max_inflight: u16,
    /// Receive Maximum announced to MQTT 5 clients: QoS 2 messages from a client
    /// awaiting PUBREL beyond it end the connection (0x93). Also bounds 3.1.1 clients.
    pub receive_maximum: u16,
    /// Topic aliases an MQTT 5 client may use towards the broker; the broker also
    /// uses up to this many towards a client that allows them.
    pub topic_alias_maximum: u16,
    /// Subscriptions one client may hold (SUBACK 0x97 / 0x80 beyond).
    pub max_subscriptions_per_client: usize,
    /// Levels of a topic or filter.
    pub max_topic_levels: usize,
    /// Bytes of a client id.
    pub max_client_id_len: usize,
    /// Largest keepalive accepted, seconds: MQTT 5 clients asking for more get
    /// this as Server Keep Alive; 3.1.1 clients asking for more are refused.
    pub max_keepalive: u16,
    /// Longest a session outlives its connection, seconds (MQTT 5 clients are told
    /// when their request is shortened). Also the expiry of 3.1.1 persistent sessions.
    pub max_session_expiry: u32,
    /// How long a publisher waits for room in a live subscriber's full queue before
    /// that subscriber is disconnected as too slow.
    pub slow_subscriber_timeout: Duration,
    /// How long a write to a client may make no progress before the connection is
    /// considered dead.
    pub write_timeout: Duration,
    /// Retained messages kept at most (new topics beyond are not retained).
    pub max_retained: usize,
    /// `$SYS/broker/...` statistics interval; `None` turns them off.
    pub sys_interval: Option<Duration>,
    /// Largest WebSocket message before MQTT framing (bounded before CONNECT too).
    pub max_ws_message: usize,
    pub hot: HotConfig,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            max_connections: 100_000,
            connect_timeout: Duration::from_secs(10),
            users: Vec::new(),
            max_inflight: 100,
            receive_maximum: 1024,
            topic_alias_maximum: 64,
            max_subscriptions_per_client: 1000,
            max_topic_levels: 128,
            max_client_id_len: 256,
            max_keepalive: u16::MAX,
            max_session_expiry: 7 * 24 * 3600,
            slow_subscriber_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            max_retained: 1_000_000,
            sys_interval: Some(Duration::from_secs(10)),
            max_ws_message: 1024 * 1024 + 16,
            hot: HotConfig {
                allow_anonymous: true,
                max_packet_size: 1024 * 1024,
                client_max_packet_size: 0,
                keepalive_backoff: 1.5,
                max_queued_messages: 1000,
            },
        }
    }
}

/// The hot settings, read on the message path without a lock.
#[derive(Debug)]
pub struct HotLimits {
    allow_anonymous: AtomicBool,
    max_packet_size: AtomicU32,
    client_max_packet_size: AtomicU32,
    keepalive_backoff_bits: AtomicU32,
    max_queued_messages: AtomicU32,
}

impl HotLimits {
    pub fn new(hot: &HotConfig) -> HotLimits {
        let limits = HotLimits {
            allow_anonymous: AtomicBool::new(false),
            max_packet_size: AtomicU32::new(0),
            client_max_packet_size: AtomicU32::new(0),
            keepalive_backoff_bits: AtomicU32::new(0),
            max_queued_messages: AtomicU32::new(0),
        };
        limits.set(hot);
        limits
    }

    pub fn set(&self, hot: &HotConfig) {
        self.allow_anonymous
            .store(hot.allow_anonymous, Ordering::Relaxed);
        self.max_packet_size
            .store(hot.max_packet_size, Ordering::Relaxed);
        self.client_max_packet_size
            .store(hot.client_max_packet_size, Ordering::Relaxed);
        self.keepalive_backoff_bits
            .store(hot.keepalive_backoff.to_bits(), Ordering::Relaxed);
        self.max_queued_messages
            .store(hot.max_queued_messages, Ordering::Relaxed);
    }

    pub fn get(&self) -> HotConfig {
        HotConfig {
            allow_anonymous: self.allow_anonymous(),
            max_packet_size: self.max_packet_size.load(Ordering::Relaxed),
            client_max_packet_size: self.client_max_packet_size.load(Ordering::Relaxed),
            keepalive_backoff: self.keepalive_backoff(),
            max_queued_messages: self.max_queued_messages.load(Ordering::Relaxed),
        }
    }

    pub fn allow_anonymous(&self) -> bool {
        self.allow_anonymous.load(Ordering::Relaxed)
    }

    /// Largest packet accepted from a client (0 in config: no limit of ours).
    pub fn max_packet_size(&self) -> usize {
        match self.max_packet_size.load(Ordering::Relaxed) {
            0 => 268_435_460,
            n => n as usize,
        }
    }

    /// Largest packet sent to any client (0: only the client's own limit).
    pub fn client_max_packet_size(&self) -> Option<usize> {
        match self.client_max_packet_size.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n as usize),
        }
    }

    pub fn keepalive_backoff(&self) -> f32 {
        f32::from_bits(self.keepalive_backoff_bits.load(Ordering::Relaxed))
    }

    pub fn max_queued(&self) -> usize {
        self.max_queued_messages.load(Ordering::Relaxed).max(1) as usize
    }
}
