//! The `[mqtt]` section: the broker's limits and policies, and its listeners
//! (`[mqtt.tcp]`, `[mqtt.ws]`, `[mqtt.tls]`, `[mqtt.wss]`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mqgate_kit::access::{ACL_FILE_NAME, PASSWORD_FILE_NAME};
use serde::{Deserialize, Serialize};

/// The `[mqtt]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub tcp: TcpListenerConfig,
    pub ws: WsListenerConfig,
    /// MQTT over TLS.
    pub tls: TlsListenerConfig,
    /// MQTT over WebSocket over TLS, on `[mqtt.ws] paths`.
    pub wss: TlsListenerConfig,
    /// Most clients connected at once.
    pub max_connections: usize,
    /// Seconds a new socket has to send CONNECT.
    pub connect_timeout_secs: u64,
    /// Clients no dialect claims may connect without credentials.
    pub allow_anonymous: bool,
    /// Largest packet accepted from a client, bytes.
    pub max_packet_size: u32,
    /// Largest packet sent to a client, bytes (0: no limit beyond the client's own).
    pub client_max_packet_size: u32,
    /// Keepalive × this factor without a packet disconnects a client.
    pub keepalive_backoff: f32,
    /// Messages queued per session (live: publishers wait for room; offline: QoS 1/2 kept up to this).
    pub max_queued_messages: u32,
    /// Milliseconds a publisher waits for room in a live subscriber's full queue
    /// before that subscriber is disconnected as too slow.
    pub slow_subscriber_timeout_ms: u64,
    /// Seconds a write to a client may make no progress before the connection is dropped.
    pub write_timeout_secs: u64,
    /// QoS 1/2 deliveries in flight per client (lowered to the client's Receive Maximum).
    pub max_inflight: u16,
    /// Receive Maximum announced to MQTT 5 clients (QoS 2 messages awaiting PUBREL).
    pub receive_maximum: u16,
    /// Topic aliases per connection, each way (MQTT 5).
    pub topic_alias_maximum: u16,
    /// Subscriptions one client may hold.
    pub max_subscriptions_per_client: usize,
    /// Levels of a topic name or filter.
    pub max_topic_levels: usize,
    /// Bytes of a client id.
    pub max_client_id_len: usize,
    /// Largest keepalive, seconds: MQTT 5 clients asking more are told this one,
    /// MQTT 3.1.1 clients asking more are refused.
    pub max_keepalive_secs: u16,
    /// Longest a session outlives its connection, seconds; also the expiry of
    /// MQTT 3.1.1 persistent sessions.
    pub max_session_expiry_secs: u32,
    /// Retained messages kept at most.
    pub max_retained_messages: usize,
    /// Seconds between `$SYS/broker/...` statistics (0: none).
    pub sys_interval_secs: u64,
    /// Users of the general auth policy: `[{ username = "...", password = "..." }]`.
    pub users: Vec<MqttUser>,
    /// More users, from a password file in NanoMQ's format (`"user": "password"` lines).
    /// Unset: `<data_dir>/nanomq_pwd.conf`, when it exists.
    pub password_file: Option<PathBuf>,
    /// An ACL file in NanoMQ's format (`rules = [ {...} ]`), checked on every
    /// PUBLISH and SUBSCRIBE. Unset: `<data_dir>/nanomq_acl.conf`, when it exists.
    pub acl_file: Option<PathBuf>,
    /// What applies when no ACL rule matches: "allow" or "deny".
    pub no_match: AclPermit,
    /// What a denied PUBLISH does: "ignore" (dropped; MQTT 5 clients get 0x87 in
    /// the acknowledgement) or "disconnect".
    pub deny_action: AclDenyAction,
}

/// `[mqtt] no_match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclPermit {
    Allow,
    Deny,
}

/// `[mqtt] deny_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclDenyAction {
    Ignore,
    Disconnect,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            tcp: TcpListenerConfig::default(),
            ws: WsListenerConfig::default(),
            tls: TlsListenerConfig::off(8883),
            wss: TlsListenerConfig::off(8084),
            max_connections: 100_000,
            connect_timeout_secs: 10,
            allow_anonymous: true,
            max_packet_size: 1024 * 1024,
            client_max_packet_size: 0,
            keepalive_backoff: 1.5,
            max_queued_messages: 1000,
            slow_subscriber_timeout_ms: 5000,
            write_timeout_secs: 30,
            max_inflight: 100,
            receive_maximum: 1024,
            topic_alias_maximum: 64,
            max_subscriptions_per_client: 1000,
            max_topic_levels: 128,
            max_client_id_len: 256,
            max_keepalive_secs: u16::MAX,
            max_session_expiry_secs: 7 * 24 * 3600,
            max_retained_messages: 1_000_000,
            sys_interval_secs: 10,
            users: Vec::new(),
            password_file: None,
            acl_file: None,
            no_match: AclPermit::Allow,
            deny_action: AclDenyAction::Ignore,
        }
    }
}

/// The password or ACL file in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFile {
    pub path: PathBuf,
    /// Named in the configuration: it must exist. Otherwise it is NanoMQ's file
    /// name in the data directory (where nanomq-admin's Access page saves it),
    /// read when it exists.
    pub configured: bool,
}

impl AccessFile {
    fn of(configured: &Option<PathBuf>, data_dir: &Path, default_name: &str) -> AccessFile {
        match configured {
            Some(path) => AccessFile {
                path: path.clone(),
                configured: true,
            },
            None => AccessFile {
                path: data_dir.join(default_name),
                configured: false,
            },
        }
    }
}

impl MqttConfig {
    pub fn password_file_in(&self, data_dir: &Path) -> AccessFile {
        AccessFile::of(&self.password_file, data_dir, PASSWORD_FILE_NAME)
    }

    pub fn acl_file_in(&self, data_dir: &Path) -> AccessFile {
        AccessFile::of(&self.acl_file, data_dir, ACL_FILE_NAME)
    }

    /// What the broker takes from this section; `users` are the configured users
    /// and those of the password file.
    pub fn broker_settings(
        &self,
        hot: mqgate_kit::HotConfig,
        users: Vec<(String, String)>,
    ) -> mqgate_broker::BrokerSettings {
        mqgate_broker::BrokerSettings {
            max_connections: self.max_connections,
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            users,
            max_inflight: self.max_inflight,
            receive_maximum: self.receive_maximum,
            topic_alias_maximum: self.topic_alias_maximum,
            max_subscriptions_per_client: self.max_subscriptions_per_client,
            max_topic_levels: self.max_topic_levels,
            max_client_id_len: self.max_client_id_len,
            max_keepalive: self.max_keepalive_secs,
            max_session_expiry: self.max_session_expiry_secs,
            slow_subscriber_timeout: Duration::from_millis(self.slow_subscriber_timeout_ms),
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            max_retained: self.max_retained_messages,
            sys_interval: (self.sys_interval_secs > 0)
                .then(|| Duration::from_secs(self.sys_interval_secs)),
            max_ws_message: self.max_packet_size as usize + 16,
            hot,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttUser {
    pub username: String,
    pub password: String,
}

/// `[mqtt.tcp]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpListenerConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for TcpListenerConfig {
    fn default() -> Self {
        TcpListenerConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 1883)),
        }
    }
}

/// `[mqtt.ws]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsListenerConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// URL paths of the WebSocket endpoint (each also with a trailing slash).
    pub paths: Vec<String>,
}

impl Default for WsListenerConfig {
    fn default() -> Self {
        WsListenerConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 8083)),
            // EMQX/NanoMQ's path, and MQTT.js's default (mica-mqtt-dashboard uses it)
            paths: vec!["/mqtt".to_string(), "/".to_string()],
        }
    }
}

/// `[mqtt.tls]` and `[mqtt.wss]`: off until given a certificate and its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListenerConfig {
    #[serde(default)]
    pub enabled: bool,
    pub listen: SocketAddr,
    /// PEM certificate chain, leaf first.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// PEM CA certificates: when set, clients must present a certificate they signed.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

impl TlsListenerConfig {
    fn off(port: u16) -> Self {
        TlsListenerConfig {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], port)),
            cert: None,
            key: None,
            client_ca: None,
        }
    }

    /// The certificate files, when the listener is on.
    pub fn files(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.cert.clone()?,
            key: self.key.clone()?,
            client_ca: self.client_ca.clone(),
        })
    }
}
