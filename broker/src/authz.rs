//! Authorization of PUBLISH and SUBSCRIBE: a hook the gateway fills (an ACL
//! file), consulted per topic and per filter.

use std::net::SocketAddr;

/// The client asking, as authorization rules see it.
#[derive(Debug, Clone, Copy)]
pub struct ClientRef<'a> {
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub peer: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Publish,
    Subscribe,
}

/// What happens to a client whose PUBLISH is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DenyAction {
    /// The message is dropped; MQTT 5 clients get reason 0x87 in the PUBACK/PUBREC.
    #[default]
    Ignore,
    /// The connection is closed (MQTT 5: DISCONNECT 0x87).
    Disconnect,
}

pub trait Authorizer: Send + Sync {
    /// Whether `client` may publish to `topic` or subscribe to `filter` (as the
    /// client wrote them: without a mountpoint, `$share/` prefix included).
    fn allows(&self, client: &ClientRef<'_>, access: Access, topic: &str) -> bool;

    fn deny_action(&self) -> DenyAction {
        DenyAction::Ignore
    }
}

/// The rules of an ACL file (NanoMQ's format), with what applies when none matches.
pub struct AclAuthorizer {
    pub rules: mqgate_kit::access::AclRules,
    /// `no_match`: the decision when no rule matches.
    pub no_match: mqgate_kit::access::Permit,
    pub deny_action: DenyAction,
}

impl Authorizer for AclAuthorizer {
    fn allows(&self, client: &ClientRef<'_>, access: Access, topic: &str) -> bool {
        use mqgate_kit::access::{Action, Permit, Who};
        let who = Who {
            client_id: client.client_id,
            username: client.username,
            ip: client.peer.ip(),
        };
        let action = match access {
            Access::Publish => Action::Publish,
            Access::Subscribe => Action::Subscribe,
        };
        self.rules
            .decide(&who, action, topic)
            .unwrap_or(self.no_match)
            == Permit::Allow
    }

    fn deny_action(&self) -> DenyAction {
        self.deny_action
    }
}
