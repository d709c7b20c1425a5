//! Device credentials on MQTT: a CONNECT that names a registered device (by
//! username or by client id) must carry that device's username, password and
//! client id together, and the device must be enabled. Reads the in-memory
//! registry; on a shared database it first catches up with what other processes
//! committed (one round trip when nothing changed), and when the database cannot
//! be reached, a client the stale copy knows as a device is refused (server
//! unavailable) rather than judged by it.

use std::sync::Arc;

use async_trait::async_trait;
use mqgate_kit::{AuthDecision, ConnectAuthenticator, ConnectCredentials, ConnectRefusal};

use crate::registry::Registry;

pub struct DeviceAuthenticator {
    pub registry: Arc<Registry>,
}

/// Compares without stopping at the first difference, so timing does not tell
/// how much of a guessed password was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl ConnectAuthenticator for DeviceAuthenticator {
    async fn authenticate(&self, credentials: &ConnectCredentials<'_>) -> AuthDecision {
        let fresh = match self.registry.synced().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("realmq: device credentials not checked against the store: {e}");
                false
            }
        };
        self.registry.read(|state| {
            let by_username = credentials
                .username
                .and_then(|u| state.device_by_username(u));
            let Some(device) =
                by_username.or_else(|| state.device_by_client_id(credentials.client_id))
            else {
                return AuthDecision::NotMine;
            };
            if !fresh {
                return AuthDecision::Deny(ConnectRefusal::ServerUnavailable);
            }
            let f = &device.fields;
            let matches = credentials.username == Some(f.username.as_str())
                && credentials.client_id == f.mqtt_client_id
                && credentials
                    .password
                    .is_some_and(|p| same_secret(p, f.password.as_bytes()));
            if !matches {
                AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword)
            } else if !f.enabled {
                AuthDecision::Deny(ConnectRefusal::NotAuthorized)
            } else {
                AuthDecision::Allow
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
