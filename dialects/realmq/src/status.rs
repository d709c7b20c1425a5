//! Device status: the live session table decides whether a device is online; the
//! connects and disconnects recorded by [`crate::presence`] give the times of its
//! last session otherwise.

use mqgate_kit::http::time::format_datetime;
use mqgate_kit::{ClientInfo, Management};

use crate::registry::Device;

/// The documented device status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Disabled = 0,
    /// Never connected (未激活).
    NeverConnected = 1,
    Offline = 2,
    Online = 3,
}

impl DeviceStatus {
    pub fn parse(raw: &str) -> Option<DeviceStatus> {
        match raw.trim() {
            "0" => Some(DeviceStatus::Disabled),
            "1" => Some(DeviceStatus::NeverConnected),
            "2" => Some(DeviceStatus::Offline),
            "3" => Some(DeviceStatus::Online),
            _ => None,
        }
    }
}

/// What the broker says about a device right now, rendered for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    pub status: DeviceStatus,
    pub ip: Option<String>,
    pub connected_at: String,
    pub disconnected_at: String,
    pub online_at: String,
    pub offline_at: String,
}

/// The session-table entry of each device's client id, in the same order, from
/// one batch lookup.
pub async fn sessions<'a>(
    devices: impl IntoIterator<Item = &'a Device>,
    management: &dyn Management,
) -> Vec<Option<ClientInfo>> {
    let client_ids: Vec<&str> = devices
        .into_iter()
        .map(|d| d.fields.mqtt_client_id.as_str())
        .collect();
    management.get_clients(&client_ids).await
}

/// The device's own connection: its client id connected with its username.
fn live_connection<'a>(device: &Device, session: Option<&'a ClientInfo>) -> Option<&'a ClientInfo> {
    session
        .filter(|c| c.connected && c.username.as_deref() == Some(device.fields.username.as_str()))
}

/// The status alone, without rendering times.
pub fn status(device: &Device, session: Option<&ClientInfo>) -> DeviceStatus {
    if !device.fields.enabled {
        DeviceStatus::Disabled
    } else if live_connection(device, session).is_some() {
        DeviceStatus::Online
    } else if device.presence.connected_at_ms.is_some() {
        DeviceStatus::Offline
    } else {
        DeviceStatus::NeverConnected
    }
}

/// Seconds between two instants, as the duration fields render them.
fn seconds_between(from_ms: i64, to_ms: i64) -> String {
    ((to_ms - from_ms).max(0) / 1000).to_string()
}

/// Status, address and times of a device, given its session-table entry.
pub fn liveness(device: &Device, session: Option<&ClientInfo>, now: i64) -> Liveness {
    let status = status(device, session);
    if let Some(client) = live_connection(device, session) {
        return Liveness {
            status,
            ip: Some(client.peer.ip().to_string()),
            connected_at: format_datetime(client.connected_at_ms),
            disconnected_at: String::new(),
            online_at: seconds_between(client.connected_at_ms, now),
            offline_at: String::new(),
        };
    }
    let p = &device.presence;
    let format = |ms: Option<i64>| ms.map(format_datetime).unwrap_or_default();
    let online_at = match (p.connected_at_ms, p.disconnected_at_ms) {
        (Some(c), Some(d)) => seconds_between(c, d),
        _ => String::new(),
    };
    Liveness {
        status,
        ip: p.ip.clone(),
        connected_at: format(p.connected_at_ms),
        disconnected_at: format(p.disconnected_at_ms),
        online_at,
        offline_at: p
            .disconnected_at_ms
            .map(|d| seconds_between(d, now))
            .unwrap_or_default(),
    }
}
