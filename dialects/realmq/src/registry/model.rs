//! What the registry holds: products, devices, their editable fields, and the
//! connection history of devices.

use mqgate_kit::ConnectionId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub product_key: String,
    pub secret: String,
    /// 1 direct device, 2 gateway.
    pub kind: i64,
    pub dynamic_reg: i64,
    pub auth_type: i64,
    pub status: i64,
    pub description: Option<String>,
    pub created_at_ms: i64,
}

/// The editable fields of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFields {
    pub name: String,
    pub kind: i64,
    pub dynamic_reg: i64,
    pub auth_type: i64,
    pub description: Option<String>,
}

/// What the broker last told us about a device's connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    pub ip: Option<String>,
    pub connected_at_ms: Option<i64>,
    pub disconnected_at_ms: Option<i64>,
    /// The connection the last connect belongs to; a disconnect of an older one
    /// (a session taken over) must not overwrite it. Not persisted.
    pub connection_id: Option<ConnectionId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: i64,
    pub fields: DeviceFields,
    pub created_at_ms: i64,
    pub presence: Presence,
}

/// The editable fields of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFields {
    pub name: String,
    pub product_key: String,
    pub username: String,
    pub mqtt_client_id: String,
    pub nickname: String,
    pub password: String,
    pub device_type: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
}

/// A connection event of a device, as the presence recorder hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceEvent {
    Connected {
        client_id: String,
        connection_id: ConnectionId,
        ip: String,
        at_ms: i64,
    },
    Disconnected {
        client_id: String,
        connection_id: ConnectionId,
        at_ms: i64,
    },
}

impl PresenceEvent {
    pub fn client_id(&self) -> &str {
        match self {
            PresenceEvent::Connected { client_id, .. }
            | PresenceEvent::Disconnected { client_id, .. } => client_id,
        }
    }
}

impl Presence {
    /// Applies one event of this device's; false when it changes nothing (the
    /// disconnect of a connection that was taken over).
    pub fn apply(&mut self, event: PresenceEvent) -> bool {
        match event {
            PresenceEvent::Connected {
                connection_id,
                ip,
                at_ms,
                ..
            } => {
                self.ip = Some(ip);
                self.connected_at_ms = Some(at_ms);
                self.disconnected_at_ms = None;
                self.connection_id = Some(connection_id);
            }
            PresenceEvent::Disconnected {
                connection_id,
                at_ms,
                ..
            } => {
                if self.connection_id.is_some_and(|c| c != connection_id) {
                    return false;
                }
                self.disconnected_at_ms = Some(at_ms);
            }
        }
        true
    }
}
