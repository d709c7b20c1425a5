//! `[cluster]`: several mqgate nodes linked through NATS (off by default; a
//! single node does not touch NATS at all).

use std::time::Duration;

use mqgate_broker::cluster::ClusterSettings;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[cluster]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// This node's name in NATS and the logs; empty: the host name and process id.
    pub node_name: String,
    /// `nats://host:port` (several servers separated by commas).
    pub nats_url: String,
    /// First token of every NATS subject: clusters sharing a NATS server differ here.
    pub subject_prefix: String,
    /// How long a CONNECT waits for the node that holds its client id to let it go.
    pub takeover_timeout_ms: u64,
    /// How long one attempt to reach NATS may take.
    pub connect_timeout_ms: u64,
    /// How long a management request (kick, subscribe on behalf, lists) waits
    /// for the other nodes; a node that does not answer in time is left out.
    pub management_timeout_ms: u64,
    /// How often a node tells the others it is alive. A node silent for three
    /// heartbeats (killed, or cut off from NATS) is left out of lists and figures.
    pub heartbeat_ms: u64,
    /// The longest pause between attempts to reach NATS again (100 ms, doubling).
    pub reconnect_max_delay_ms: u64,
    /// Messages waiting to go to NATS: beyond, publishing clients wait (up to
    /// `mqtt.slow_subscriber_timeout_ms`); at twice this, they are dropped and counted.
    pub max_pending_messages: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            node_name: String::new(),
            nats_url: "nats://127.0.0.1:4222".into(),
            subject_prefix: "mqgate".into(),
            takeover_timeout_ms: 2000,
            connect_timeout_ms: 2000,
            management_timeout_ms: 2000,
            heartbeat_ms: 1000,
            reconnect_max_delay_ms: 5000,
            max_pending_messages: 65536,
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: format!("cluster.{key}"),
                message: message.into(),
            })
        };
        if !self.enabled {
            return Ok(());
        }
        if self.nats_url.trim().is_empty() {
            return invalid("nats_url", "give the NATS server's address");
        }
        let token_ok = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !self.subject_prefix.split('.').all(token_ok) {
            return invalid(
                "subject_prefix",
                "NATS tokens of letters, digits, `-` and `_`, separated by `.`",
            );
        }
        if self.takeover_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return invalid(
                "takeover_timeout_ms",
                "takeover_timeout_ms and connect_timeout_ms must be at least 1",
            );
        }
        if self.management_timeout_ms == 0 {
            return invalid("management_timeout_ms", "must be at least 1");
        }
        if !(50..=60_000).contains(&self.heartbeat_ms) {
            return invalid("heartbeat_ms", "must be between 50 and 60000");
        }
        if self.max_pending_messages == 0 {
            return invalid("max_pending_messages", "must be at least 1");
        }
        Ok(())
    }

    pub fn settings(&self) -> ClusterSettings {
        let node_name = match self.node_name.is_empty() {
            false => self.node_name.clone(),
            true => format!("{}-{}", host_name(), std::process::id()),
        };
        ClusterSettings {
            node_name,
            nats_url: self.nats_url.clone(),
            subject_prefix: self.subject_prefix.clone(),
            takeover_timeout: Duration::from_millis(self.takeover_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            management_timeout: Duration::from_millis(self.management_timeout_ms),
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            reconnect_max_delay: Duration::from_millis(self.reconnect_max_delay_ms.max(100)),
            max_pending: self.max_pending_messages,
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mqgate".into())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::config::{Config, ConfigError};

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // an empty file: the embedded defaults, whatever the working directory holds
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mqgate.toml");
        std::fs::write(&file, "").unwrap();
        Config::load_with_env(Some(&file), env)
    }

    #[test]
    fn off_by_default_and_set_from_the_environment() {
        assert!(!load(&[]).unwrap().cluster.enabled);
        let c = load(&[
            ("MQGATE__CLUSTER__ENABLED", "true"),
            ("MQGATE__CLUSTER__NATS_URL", "nats://10.1.2.3:4222"),
            ("MQGATE__CLUSTER__TAKEOVER_TIMEOUT_MS", "500"),
        ])
        .unwrap();
        let s = c.cluster.settings();
        assert!(c.cluster.enabled);
        assert_eq!(s.nats_url, "nats://10.1.2.3:4222");
        assert_eq!(s.takeover_timeout.as_millis(), 500);
        assert!(
            !s.node_name.is_empty(),
            "a node name is made up when none is given"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value, named) in [
            (
                "MQGATE__CLUSTER__SUBJECT_PREFIX",
                "a b",
                "cluster.subject_prefix",
            ),
            (
                "MQGATE__CLUSTER__SUBJECT_PREFIX",
                "a..b",
                "cluster.subject_prefix",
            ),
            ("MQGATE__CLUSTER__NATS_URL", " ", "cluster.nats_url"),
            (
                "MQGATE__CLUSTER__MAX_PENDING_MESSAGES",
                "0",
                "cluster.max_pending_messages",
            ),
            (
                "MQGATE__CLUSTER__HEARTBEAT_MS",
                "10",
                "cluster.heartbeat_ms",
            ),
        ] {
            let error = load(&[("MQGATE__CLUSTER__ENABLED", "true"), (key, value)])
                .expect_err(key)
                .to_string();
            assert!(error.contains(named), "{key}={value}: {error}");
        }
    }
}
