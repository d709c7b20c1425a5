//! MQTT authentication hooks that dialects contribute (device passwords, user tokens).

use std::net::SocketAddr;

use async_trait::async_trait;

use crate::model::Transport;

/// The credentials of a CONNECT, as an authenticator sees them.
#[derive(Debug, Clone)]
pub struct ConnectCredentials<'a> {
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
    pub peer: SocketAddr,
    pub transport: Transport,
    pub proto_ver: u8,
    /// Whether a live connection holds this client id right now (the CONNECT would
    /// take it over). Decided by the broker under the client id's lock.
    pub already_connected: bool,
}

/// Why a CONNECT is refused; the broker maps each onto the MQTT 3.1.1 return code
/// and the MQTT 5 reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefusal {
    /// 3.1.1 0x02, 5 0x85.
    ClientIdentifierNotValid,
    /// 3.1.1 0x04, 5 0x86.
    BadUsernameOrPassword,
    /// 3.1.1 0x05, 5 0x87.
    NotAuthorized,
    /// 3.1.1 0x03, 5 0x88.
    ServerUnavailable,
}

/// An authenticator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// These credentials are not this authenticator's business; ask the next one.
    NotMine,
    Allow,
    /// Allowed inside a tenant: every topic and filter of the client is routed
    /// under this prefix (a `$` one keeps other clients' wildcards out), so it
    /// exchanges messages with its tenant only. The client never sees the prefix.
    AllowMounted(String),
    Deny(ConnectRefusal),
}

/// Consulted for every CONNECT, in the order the dialects are configured. The first
/// answer other than [`AuthDecision::NotMine`] decides; when none claims the client,
/// the broker's general policy (`allow_anonymous`, configured users) applies.
#[async_trait]
pub trait ConnectAuthenticator: Send + Sync {
    async fn authenticate(&self, credentials: &ConnectCredentials<'_>) -> AuthDecision;

    /// Whether [`ConnectCredentials::already_connected`] decides anything for
    /// this client id. In cluster mode the broker then asks the other nodes too
    /// (one NATS round trip) before [`Self::authenticate`]; for other ids it
    /// only looks at its own node.
    fn asks_whether_connected(&self, _client_id: &str) -> bool {
        false
    }
}
