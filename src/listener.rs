//! Listener names as a type: what the config checks, start-up, the logs and
//! the management view call each listening socket.

use std::fmt;

use crate::dialects::{DialectSpec, DIALECTS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listener {
    /// MQTT over TCP, `[mqtt.tcp]`.
    MqttTcp,
    /// MQTT over WebSocket, `[mqtt.ws]`.
    MqttWs,
    /// MQTT over TLS, `[mqtt.tls]`.
    MqttTls,
    /// MQTT over WebSocket over TLS, `[mqtt.wss]`.
    MqttWss,
    /// Swagger UI, `[docs]`.
    Docs,
    /// A dialect's HTTP API, its own section.
    Dialect(&'static DialectSpec),
}

impl Listener {
    /// The name in messages and logs: `mqtt.tcp`, `mqtt.ws`, `mqtt.tls`,
    /// `mqtt.wss`, `docs` or the dialect's.
    pub fn name(&self) -> &'static str {
        match self {
            Listener::MqttTcp => "mqtt.tcp",
            Listener::MqttWs => "mqtt.ws",
            Listener::MqttTls => "mqtt.tls",
            Listener::MqttWss => "mqtt.wss",
            Listener::Docs => "docs",
            Listener::Dialect(d) => d.name,
        }
    }

    /// Every HTTP listener (the ones `[http]` applies to), docs first.
    pub fn http() -> impl Iterator<Item = Listener> {
        std::iter::once(Listener::Docs).chain(DIALECTS.iter().map(Listener::Dialect))
    }

    /// The HTTP listener called `name`.
    pub fn http_named(name: &str) -> Option<Listener> {
        Listener::http().find(|l| l.name() == name)
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
