//! Configuration: `config/mqgate.toml` (or `--config FILE`), then environment
//! variables overriding single keys (`MQGATE__SECTION__KEY`), checked in full
//! before anything starts. [`Config::default`] holds the embedded defaults, the
//! same values `config/mqgate.toml` spells out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mqgate_kit::DialectConfig;
use serde::{Deserialize, Serialize};

use crate::recorder::RecordsConfig;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the embedded database and other state; created on first start.
    pub data_dir: PathBuf,
    pub mqtt: MqttConfig,
    pub docs: DocsConfig,
    pub records: RecordsConfig,
    pub mica: mqgate_mica::Config,
    pub nanomq: mqgate_nanomq::Config,
    pub realmq: mqgate_realmq::Config,
    pub easemob: mqgate_easemob::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            mqtt: MqttConfig::default(),
            docs: DocsConfig::default(),
            records: RecordsConfig::default(),
            mica: Default::default(),
            nanomq: Default::default(),
            realmq: Default::default(),
            easemob: Default::default(),
        }
    }
}

/// The `[mqtt]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub tcp: TcpListenerConfig,
    pub ws: WsListenerConfig,
    /// Most clients connected at once.
    pub max_connections: usize,
    /// Seconds a new socket has to send CONNECT.
    pub connect_timeout_secs: u64,
    /// Clients no dialect claims may connect without credentials.
    pub allow_anonymous: bool,
    /// Largest packet accepted from a client, bytes.
    pub max_packet_size: u32,
    /// Largest packet sent to a client, bytes (0: no limit).
    pub client_max_packet_size: u32,
    /// Keepalive × this factor without a packet disconnects a client.
    pub keepalive_backoff: f32,
    /// Outgoing messages the router queues per client.
    pub max_queued_messages: u32,
    /// Users of the general auth policy: `[{ username = "...", password = "..." }]`.
    pub users: Vec<MqttUser>,
    /// Bytes per commit-log segment of the router (per topic filter).
    pub router_segment_size: usize,
    /// Segments kept per topic filter.
    pub router_segment_count: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            tcp: TcpListenerConfig::default(),
            ws: WsListenerConfig::default(),
            max_connections: 100_000,
            connect_timeout_secs: 10,
            allow_anonymous: true,
            max_packet_size: 1024 * 1024,
            client_max_packet_size: 0,
            keepalive_backoff: 1.5,
            max_queued_messages: 200,
            users: Vec::new(),
            router_segment_size: 1024 * 1024,
            router_segment_count: 4,
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
    /// URL path of the WebSocket endpoint.
    pub path: String,
}

impl Default for WsListenerConfig {
    fn default() -> Self {
        WsListenerConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 8083)),
            path: "/mqtt".to_string(),
        }
    }
}

/// `[docs]`: Swagger UI over every enabled dialect's OpenAPI document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocsConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for DocsConfig {
    fn default() -> Self {
        DocsConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 18080)),
        }
    }
}

/// A configuration that cannot be used; the message names the culprit.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("bad configuration at `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("listeners `{first}` and `{second}` both ask for {addr}")]
    AddressConflict {
        first: String,
        second: String,
        addr: SocketAddr,
    },
}

/// Environment variables with this prefix override single keys:
/// `MQGATE__MICA__LISTEN=0.0.0.0:28083`, `MQGATE__MQTT__TCP__ENABLED=false`.
pub const ENV_PREFIX: &str = "MQGATE";

impl Config {
    /// Loads `path` (default: `config/mqgate.toml` if it exists, otherwise the
    /// embedded defaults), applies environment overrides, and checks the result.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_with_env(path, env)
    }

    pub fn load_with_env(
        path: Option<&Path>,
        env: HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        let default_path = Path::new("config/mqgate.toml");
        let file = match path {
            Some(p) => Some(p),
            None if default_path.exists() => Some(default_path),
            None => None,
        };
        if let Some(file) = file {
            let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
                path: file.to_path_buf(),
                message: e.to_string(),
            })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let merged = builder.build().map_err(|e| ConfigError::Invalid {
            key: "(file)".into(),
            message: e.to_string(),
        })?;
        let value: serde_json::Value =
            merged.try_deserialize().map_err(|e| ConfigError::Invalid {
                key: "(file)".into(),
                message: e.to_string(),
            })?;
        let config: Config =
            serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Invalid {
                key: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Embedded defaults with every listener on an ephemeral loopback port and
    /// the data in `data_dir`: what the end-to-end tests run.
    pub fn for_tests(data_dir: &Path) -> Config {
        let ephemeral = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut c = Config {
            data_dir: data_dir.to_path_buf(),
            ..Config::default()
        };
        c.mqtt.tcp.listen = ephemeral;
        c.mqtt.ws.listen = ephemeral;
        c.docs.listen = ephemeral;
        c.mica.listen = ephemeral;
        c.nanomq.listen = ephemeral;
        c.realmq.listen = ephemeral;
        c.easemob.listen = ephemeral;
        c
    }

    /// Every dialect's section by name, in start-up order.
    pub fn dialects(&self) -> [(&'static str, &dyn DialectConfig); 4] {
        [
            ("mica", &self.mica),
            ("nanomq", &self.nanomq),
            ("realmq", &self.realmq),
            ("easemob", &self.easemob),
        ]
    }

    /// Every enabled listener by name.
    pub fn listeners(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut out = Vec::new();
        if self.mqtt.tcp.enabled {
            out.push(("mqtt.tcp", self.mqtt.tcp.listen));
        }
        if self.mqtt.ws.enabled {
            out.push(("mqtt.ws", self.mqtt.ws.listen));
        }
        if self.docs.enabled {
            out.push(("docs", self.docs.listen));
        }
        for (name, d) in self.dialects() {
            if d.enabled() {
                out.push((name, d.listen()));
            }
        }
        out
    }

    /// Checks what serde cannot: no two listeners on one address (port 0 aside),
    /// values in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let listeners = self.listeners();
        for (i, (a, addr_a)) in listeners.iter().enumerate() {
            for (b, addr_b) in &listeners[i + 1..] {
                let same_port = addr_a.port() == addr_b.port() && addr_a.port() != 0;
                let overlapping_ip = addr_a.ip() == addr_b.ip()
                    || addr_a.ip().is_unspecified()
                    || addr_b.ip().is_unspecified();
                if same_port && overlapping_ip {
                    return Err(ConfigError::AddressConflict {
                        first: a.to_string(),
                        second: b.to_string(),
                        addr: *addr_b,
                    });
                }
            }
        }
        let invalid = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: key.into(),
                message: message.into(),
            })
        };
        if !self.mqtt.ws.path.starts_with('/') {
            return invalid("mqtt.ws.path", "must start with `/`");
        }
        if !(self.mqtt.keepalive_backoff >= 1.0 && self.mqtt.keepalive_backoff <= 10.0) {
            return invalid("mqtt.keepalive_backoff", "must be between 1.0 and 10.0");
        }
        if self.mqtt.max_connections == 0 {
            return invalid("mqtt.max_connections", "must be at least 1");
        }
        if self.mqtt.router_segment_size < 1024 || self.mqtt.router_segment_count == 0 {
            return invalid(
                "mqtt.router_segment_size",
                "segments must hold at least 1024 bytes, and at least one segment is kept",
            );
        }
        Ok(())
    }

    pub fn hot(&self) -> mqgate_kit::HotConfig {
        mqgate_kit::HotConfig {
            allow_anonymous: self.mqtt.allow_anonymous,
            max_packet_size: self.mqtt.max_packet_size,
            client_max_packet_size: self.mqtt.client_max_packet_size,
            keepalive_backoff: self.mqtt.keepalive_backoff,
            max_queued_messages: self.mqtt.max_queued_messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn checked_in_file_matches_embedded_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mqgate.toml");
        let from_file = Config::load_with_env(Some(&path), HashMap::new()).unwrap();
        assert_eq!(
            serde_json::to_value(&from_file).unwrap(),
            serde_json::to_value(Config::default()).unwrap()
        );
    }

    #[test]
    fn env_overrides_one_key() {
        let c = Config::load_with_env(
            Some(Path::new("/nonexistent-but-unused")).filter(|_| false),
            env(&[
                ("MQGATE__MICA__LISTEN", "127.0.0.1:28083"),
                ("MQGATE__MQTT__TCP__ENABLED", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(c.mica.listen, "127.0.0.1:28083".parse().unwrap());
        assert!(!c.mqtt.tcp.enabled);
        assert_eq!(c.nanomq.listen.port(), 8081);
    }

    #[test]
    fn conflicting_addresses_name_both_listeners() {
        let err = Config::load_with_env(None, env(&[("MQGATE__MICA__LISTEN", "0.0.0.0:8081")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "listeners `mica` and `nanomq` both ask for 0.0.0.0:8081"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[mica]\nlisten = \"0.0.0.0:18083\"\nlisen = 1\n").unwrap();
        let err = Config::load_with_env(Some(&path), HashMap::new()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("bad configuration at `mica.lisen`"),
            "{text}"
        );
        assert!(text.contains("unknown field `lisen`"), "{text}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = Config::load_with_env(None, env(&[("MQGATE__MQTT__WS__LISTEN", "nowhere")]))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad configuration at `mqtt.ws.listen`"),
            "{err}"
        );
    }
}
