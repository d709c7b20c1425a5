//! `[http]`: what every HTTP listener (the docs and each dialect's API) allows
//! a client, and `[http.listeners.<name>]`: per-listener overrides and TLS.
//!
//! These keys live in the gateway's own section rather than in each dialect's:
//! a dialect crate describes a vendor API, the gateway serves every API the
//! same way, so TLS and connection limits need no code in a dialect.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::http::HttpLimits;
use crate::listener::Listener;
use crate::tls::{TlsFile, TlsFiles};

/// `[http]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a connection has to deliver a complete request head, counted
    /// from its opening (TLS handshake included) or from the end of its
    /// previous response: also the idle timeout of keep-alive connections.
    pub header_read_timeout_secs: u64,
    /// Seconds a request has to deliver its whole body once its head arrived.
    pub body_read_timeout_secs: u64,
    /// Connections each HTTP listener holds at once; further ones get 503.
    pub max_connections: usize,
    /// Seconds requests in progress get to finish at shutdown or restart.
    pub shutdown_grace_secs: u64,
    /// Per-listener overrides and TLS, by listener name.
    pub listeners: BTreeMap<String, HttpListenerConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            max_connections: 1024,
            shutdown_grace_secs: 5,
            listeners: BTreeMap::new(),
        }
    }
}

/// `[http.listeners.<name>]`: unset keys take `[http]`'s value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpListenerConfig {
    pub header_read_timeout_secs: Option<u64>,
    pub body_read_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    /// PEM certificate chain: the listener speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate they signed.
    pub tls_client_ca: Option<PathBuf>,
}

/// Longest timeout accepted, seconds: beyond an hour it is no protection.
const MAX_TIMEOUT_SECS: u64 = 3600;

impl HttpConfig {
    fn listener(&self, listener: Listener) -> Option<&HttpListenerConfig> {
        self.listeners.get(listener.name())
    }

    /// The limits `listener` serves with.
    pub fn limits(&self, listener: Listener) -> HttpLimits {
        let o = self.listener(listener).cloned().unwrap_or_default();
        HttpLimits {
            header_read_timeout: Duration::from_secs(
                o.header_read_timeout_secs
                    .unwrap_or(self.header_read_timeout_secs),
            ),
            body_read_timeout: Duration::from_secs(
                o.body_read_timeout_secs
                    .unwrap_or(self.body_read_timeout_secs),
            ),
            max_connections: o.max_connections.unwrap_or(self.max_connections),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        }
    }

    /// The certificate files of `listener`, when it speaks HTTPS.
    pub fn tls(&self, listener: Listener) -> Option<TlsFiles> {
        let o = self.listener(listener)?;
        Some(TlsFiles {
            cert: o.tls_cert.clone()?,
            key: o.tls_key.clone()?,
            client_ca: o.tls_client_ca.clone(),
        })
    }

    /// The key naming `file` of `listener`, for messages.
    pub fn tls_key(listener: Listener, file: TlsFile) -> String {
        let key = match file {
            TlsFile::Cert => "tls_cert",
            TlsFile::Key => "tls_key",
            TlsFile::ClientCa => "tls_client_ca",
        };
        format!("http.listeners.{listener}.{key}")
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        let timeout_ok = |secs: u64| (1..=MAX_TIMEOUT_SECS).contains(&secs);
        if !timeout_ok(self.header_read_timeout_secs) {
            return invalid("http.header_read_timeout_secs".into(), "must be 1..=3600");
        }
        if !timeout_ok(self.body_read_timeout_secs) {
            return invalid("http.body_read_timeout_secs".into(), "must be 1..=3600");
        }
        if self.max_connections == 0 {
            return invalid("http.max_connections".into(), "must be at least 1");
        }
        if self.shutdown_grace_secs > 600 {
            return invalid("http.shutdown_grace_secs".into(), "must be 0..=600");
        }
        for (name, o) in &self.listeners {
            let key = |k: &str| format!("http.listeners.{name}.{k}");
            if Listener::http_named(name).is_none() {
                let known: Vec<&str> = Listener::http().map(|l| l.name()).collect();
                return invalid(
                    format!("http.listeners.{name}"),
                    &format!("no HTTP listener of that name ({})", known.join(", ")),
                );
            }
            if o.header_read_timeout_secs.is_some_and(|s| !timeout_ok(s)) {
                return invalid(key("header_read_timeout_secs"), "must be 1..=3600");
            }
            if o.body_read_timeout_secs.is_some_and(|s| !timeout_ok(s)) {
                return invalid(key("body_read_timeout_secs"), "must be 1..=3600");
            }
            if o.max_connections == Some(0) {
                return invalid(key("max_connections"), "must be at least 1");
            }
            match (&o.tls_cert, &o.tls_key) {
                (Some(_), None) => return invalid(key("tls_key"), "tls_cert needs tls_key"),
                (None, Some(_)) => return invalid(key("tls_cert"), "tls_key needs tls_cert"),
                (None, None) if o.tls_client_ca.is_some() => {
                    return invalid(key("tls_client_ca"), "needs tls_cert and tls_key")
                }
                _ => {}
            }
        }
        Ok(())
    }
}
