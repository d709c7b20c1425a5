//! Configuration: `config/mqgate.toml` (or `--config FILE`), then environment
//! variables overriding single keys (`MQGATE__SECTION__KEY`, see [`env`]),
//! checked in full before anything starts. [`Config::default`] holds the
//! embedded defaults, the same values `config/mqgate.toml` spells out.

mod cluster;
mod env;
mod http;
mod mqtt;
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dialects::DIALECTS;
use crate::listener::Listener;
use crate::recorder::RecordsConfig;

pub use cluster::ClusterConfig;
pub use env::PREFIX as ENV_PREFIX;
pub use http::{HttpConfig, HttpListenerConfig};
pub use mqtt::{
    AccessFile, AclDenyAction, AclPermit, MqttConfig, MqttUser, TcpListenerConfig,
    TlsListenerConfig, WsListenerConfig,
};
pub use store::{StoreBackend, StoreConfig};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the embedded database and other state; created on first start.
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub mqtt: MqttConfig,
    pub http: HttpConfig,
    pub docs: DocsConfig,
    pub records: RecordsConfig,
    pub cluster: ClusterConfig,
    pub mica: mqgate_mica::Config,
    pub nanomq: mqgate_nanomq::Config,
    pub realmq: mqgate_realmq::Config,
    pub easemob: mqgate_easemob::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            store: StoreConfig::default(),
            mqtt: MqttConfig::default(),
            http: HttpConfig::default(),
            docs: DocsConfig::default(),
            records: RecordsConfig::default(),
            cluster: ClusterConfig::default(),
            mica: Default::default(),
            nanomq: Default::default(),
            realmq: Default::default(),
            easemob: Default::default(),
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

fn read_toml(file: &Path) -> Result<serde_json::Value, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
        path: file.to_path_buf(),
        message: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: file.to_path_buf(),
        message: e.to_string(),
    })
}

/// A configuration that cannot be used; the message names the culprit.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("bad configuration at `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("listeners `{first}` and `{second}` both ask for {addr}")]
    AddressConflict {
        first: Listener,
        second: Listener,
        addr: SocketAddr,
    },
}

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
        let default_path = Path::new("config/mqgate.toml");
        let file = match path {
            Some(p) => Some(p),
            None if default_path.exists() => Some(default_path),
            None => None,
        };
        let mut tree = match file {
            Some(file) => read_toml(file)?,
            None => serde_json::Value::Object(Default::default()),
        };
        let defaults = serde_json::to_value(Config::default()).expect("defaults serialise");
        let mut guessed: Vec<env::Override> = env::apply(&mut tree, &defaults, env)?
            .into_iter()
            .filter(|o| o.guessed)
            .collect();
        let config: Config = loop {
            let error = match serde_path_to_error::deserialize(&tree) {
                Ok(config) => break config,
                Err(e) => e,
            };
            let key = error.path().to_string();
            // an optional key wanted text where the environment's value looked like a number
            match guessed.iter().position(|o| o.dotted() == key) {
                Some(i) => env::restore_text(&mut tree, &guessed.swap_remove(i)),
                None => {
                    return Err(ConfigError::Invalid {
                        key,
                        message: error.inner().to_string(),
                    })
                }
            }
        };
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
        for listener in [
            Listener::MqttTcp,
            Listener::MqttWs,
            Listener::MqttTls,
            Listener::MqttWss,
            Listener::Docs,
        ] {
            c.set_listen(listener, ephemeral);
        }
        for d in &DIALECTS {
            (d.set_listen)(&mut c, ephemeral);
        }
        c
    }

    /// Every listener, enabled or not, with its configured address.
    pub fn all_listeners(&self) -> Vec<(Listener, bool, SocketAddr)> {
        let mut out = vec![
            (
                Listener::MqttTcp,
                self.mqtt.tcp.enabled,
                self.mqtt.tcp.listen,
            ),
            (Listener::MqttWs, self.mqtt.ws.enabled, self.mqtt.ws.listen),
            (
                Listener::MqttTls,
                self.mqtt.tls.enabled,
                self.mqtt.tls.listen,
            ),
            (
                Listener::MqttWss,
                self.mqtt.wss.enabled,
                self.mqtt.wss.listen,
            ),
            (Listener::Docs, self.docs.enabled, self.docs.listen),
        ];
        for d in &DIALECTS {
            let section = (d.section)(self);
            out.push((Listener::Dialect(d), section.enabled(), section.listen()));
        }
        out
    }

    /// Every enabled listener with its configured address.
    pub fn listeners(&self) -> Vec<(Listener, SocketAddr)> {
        self.all_listeners()
            .into_iter()
            .filter(|(_, enabled, _)| *enabled)
            .map(|(l, _, addr)| (l, addr))
            .collect()
    }

    /// Moves a listener to `addr`.
    pub fn set_listen(&mut self, listener: Listener, addr: SocketAddr) {
        match listener {
            Listener::MqttTcp => self.mqtt.tcp.listen = addr,
            Listener::MqttWs => self.mqtt.ws.listen = addr,
            Listener::MqttTls => self.mqtt.tls.listen = addr,
            Listener::MqttWss => self.mqtt.wss.listen = addr,
            Listener::Docs => self.docs.listen = addr,
            Listener::Dialect(d) => (d.set_listen)(self, addr),
        }
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
                        first: *a,
                        second: *b,
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
        for (key, tls) in [("mqtt.tls", &self.mqtt.tls), ("mqtt.wss", &self.mqtt.wss)] {
            if tls.enabled && tls.files().is_none() {
                return invalid(key, "an enabled TLS listener needs `cert` and `key`");
            }
        }
        if self.mqtt.ws.paths.is_empty() || self.mqtt.ws.paths.iter().any(|p| !p.starts_with('/')) {
            return invalid(
                "mqtt.ws.paths",
                "give at least one path, each starting with `/`",
            );
        }
        if !(self.mqtt.keepalive_backoff >= 1.0 && self.mqtt.keepalive_backoff <= 10.0) {
            return invalid("mqtt.keepalive_backoff", "must be between 1.0 and 10.0");
        }
        if self.mqtt.max_connections == 0 {
            return invalid("mqtt.max_connections", "must be at least 1");
        }
        if self.mqtt.max_inflight == 0 || self.mqtt.receive_maximum == 0 {
            return invalid(
                "mqtt.max_inflight",
                "max_inflight and receive_maximum must be at least 1",
            );
        }
        if self.mqtt.max_topic_levels == 0 || self.mqtt.max_client_id_len < 23 {
            return invalid(
                "mqtt.max_topic_levels",
                "topics need at least one level and client ids at least 23 bytes (MQTT's minimum)",
            );
        }
        self.store.validate()?;
        if self.records.backend == crate::recorder::RecordsBackend::Postgres
            && self.store.postgres_options().is_none()
        {
            return invalid(
                "records.backend",
                "records in PostgreSQL need `[store] backend = \"postgres\"`",
            );
        }
        self.cluster.validate()?;
        self.http.validate()
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

    #[test]
    fn every_list_key_takes_json_from_the_environment() {
        let c = Config::load_with_env(
            None,
            env(&[
                (
                    "MQGATE__NANOMQ__CORS_ORIGINS",
                    r#"["http://a", "http://b:8080"]"#,
                ),
                (
                    "MQGATE__REALMQ__USERS",
                    r#"[{"username":"u","password":"p"}]"#,
                ),
                (
                    "MQGATE__EASEMOB__USERS",
                    r#"[{"username":"e","password":"123"}]"#,
                ),
                (
                    "MQGATE__MQTT__USERS",
                    r#"[{"username":"m","password":"q"}]"#,
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.nanomq.cors_origins, ["http://a", "http://b:8080"]);
        assert_eq!(
            (
                c.realmq.users[0].username.as_str(),
                c.realmq.users[0].password.as_str()
            ),
            ("u", "p")
        );
        let easemob = serde_json::to_value(&c.easemob.users).unwrap();
        assert_eq!(
            easemob,
            serde_json::json!([{"username": "e", "password": "123"}])
        );
        assert_eq!(c.mqtt.users[0].username, "m");
    }

    #[test]
    fn text_keys_keep_text_that_looks_like_a_number() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("MQGATE__MICA__PASSWORD", "123456"),
                // optional, no default to take the type from
                ("MQGATE__REALMQ__TOKEN_SECRET", "42"),
                ("MQGATE__HTTP__LISTENERS__MICA__MAX_CONNECTIONS", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(c.mica.password, "123456");
        assert_eq!(c.realmq.token_secret.as_deref(), Some("42"));
        assert_eq!(c.http.listeners["mica"].max_connections, Some(7));
    }

    #[test]
    fn http_keys_are_checked_and_named() {
        let refused = |pairs: &[(&str, &str)]| {
            Config::load_with_env(None, env(pairs))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(&[("MQGATE__HTTP__HEADER_READ_TIMEOUT_SECS", "0")]),
            "bad configuration at `http.header_read_timeout_secs`: must be 1..=3600"
        );
        assert_eq!(
            refused(&[("MQGATE__HTTP__LISTENERS__MIKA__MAX_CONNECTIONS", "5")]),
            "bad configuration at `http.listeners.mika`: no HTTP listener of that name \
             (docs, mica, nanomq, realmq, easemob)"
        );
        assert_eq!(
            refused(&[("MQGATE__HTTP__LISTENERS__DOCS__TLS_CERT", "c.pem")]),
            "bad configuration at `http.listeners.docs.tls_key`: tls_cert needs tls_key"
        );
        assert_eq!(
            refused(&[("MQGATE__HTTP__LISTENERS__MICA__MAX_CONNECTIONS", "0")]),
            "bad configuration at `http.listeners.mica.max_connections`: must be at least 1"
        );
        let text = refused(&[("MQGATE__HTTP__LISTENERS__MICA__TLS_CRT", "c.pem")]);
        assert!(
            text.starts_with("bad configuration at `http.listeners.mica.tls_crt`: unknown field"),
            "{text}"
        );
    }

    #[test]
    fn store_keys_come_from_the_environment_and_are_checked() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("MQGATE__STORE__BACKEND", "postgres"),
                (
                    "MQGATE__STORE__POSTGRES_URL",
                    "postgres://u:p@db:5432/mqgate",
                ),
                ("MQGATE__STORE__POOL_SIZE", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(c.store.backend, StoreBackend::Postgres);
        assert_eq!(
            c.store.postgres_url.as_deref(),
            Some("postgres://u:p@db:5432/mqgate")
        );
        assert_eq!(c.store.pool_size, 4);
        assert_eq!(Config::default().store.backend, StoreBackend::Sqlite);
        let refused = |pairs: &[(&str, &str)]| {
            Config::load_with_env(None, env(pairs))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(&[("MQGATE__STORE__BACKEND", "postgres")]),
            "bad configuration at `store.postgres_url`: backend = \"postgres\" needs postgres_url"
        );
        let text = refused(&[
            ("MQGATE__STORE__BACKEND", "postgres"),
            ("MQGATE__STORE__POSTGRES_URL", "postgres://h:notaport/db"),
        ]);
        assert!(
            text.starts_with("bad configuration at `store.postgres_url`: not a PostgreSQL URL"),
            "{text}"
        );
        let text = refused(&[("MQGATE__STORE__BACKEND", "mysql")]);
        assert!(
            text.starts_with("bad configuration at `store.backend`"),
            "{text}"
        );
        assert_eq!(
            refused(&[("MQGATE__STORE__STATEMENT_TIMEOUT_SECS", "0")]),
            "bad configuration at `store.statement_timeout_secs`: must be 1..=3600"
        );
        assert_eq!(
            refused(&[("MQGATE__STORE__FILES_POLL_MS", "10")]),
            "bad configuration at `store.files_poll_ms`: must be 50..=3600000"
        );
    }

    #[test]
    fn per_listener_keys_override_the_section() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("MQGATE__HTTP__MAX_CONNECTIONS", "100"),
                ("MQGATE__HTTP__LISTENERS__NANOMQ__MAX_CONNECTIONS", "3"),
                (
                    "MQGATE__HTTP__LISTENERS__NANOMQ__HEADER_READ_TIMEOUT_SECS",
                    "2",
                ),
            ]),
        )
        .unwrap();
        let nanomq = c
            .http
            .limits(Listener::Dialect(crate::dialects::find("nanomq").unwrap()));
        assert_eq!(nanomq.max_connections, 3);
        assert_eq!(
            nanomq.header_read_timeout,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(nanomq.body_read_timeout, std::time::Duration::from_secs(30));
        let docs = c.http.limits(Listener::Docs);
        assert_eq!(docs.max_connections, 100);
        assert_eq!(docs.header_read_timeout, std::time::Duration::from_secs(10));
    }
}
