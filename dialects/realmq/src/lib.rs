//! # mqgate-realmq
//!
//! The RealMQ REST API (`/api/v1`, default port 8090) over mqgate's broker: a
//! product and device registry that persists, device credentials enforced on MQTT
//! CONNECT, login tokens, and EMQX-4-style publish and subscribe operations.
//!
//! - this file: the `[realmq]` [`Config`], [`build`], the router, the [`Dialect`].
//! - [`state`]: [`state::AppState`], what every handler shares.
//! - [`auth`]: `POST /api/v1/auth` and the [`auth::Authenticated`] extractor (Basic
//!   or Bearer) every other handler takes first.
//! - [`products`], [`devices`], [`mqtt`]: the resources, each with its `router()`.
//! - [`status`]: a device's status from the live broker and its recorded presence.
//! - [`registry`]: products and devices in the store, mirrored in memory (kept
//!   current with other processes on a shared PostgreSQL).
//! - [`credentials`]: the CONNECT authenticator for device credentials.
//! - [`presence`]: the broker observer and the thread that records device
//!   connects and disconnects; stopped by [`Dialect::shutdown`].
//! - [`error`]: the one [`error::Error`] type and its `{"code","message"}` envelope.
//! - [`wire`]: lenient JSON fields, paging and the `{"code":0}` reply.
//! - [`openapi`](mod@openapi): the OpenAPI document.
//!
//! Every fidelity decision is listed in the crate's README.md.

pub mod auth;
pub mod credentials;
pub mod devices;
pub mod error;
pub mod mqtt;
pub mod openapi;
pub mod presence;
pub mod products;
pub mod registry;
pub mod state;
pub mod status;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use mqgate_kit::{
    BrokerObserver, ConnectAuthenticator, Dialect, DialectBuildError, DialectConfig, DialectContext,
};
use serde::{Deserialize, Serialize};

pub use crate::openapi::openapi;

use crate::auth::Access;
use crate::presence::PresenceRecorder;
use crate::registry::Registry;
use crate::state::AppState;

/// The `[realmq]` section of mqgate.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Serve this dialect.
    pub enabled: bool,
    /// Address of the dialect's HTTP listener.
    pub listen: SocketAddr,
    /// Management users, for Basic authentication and `POST /api/v1/auth`.
    pub users: Vec<ManagementUser>,
    /// HMAC key of login tokens. Unset: a random key is generated once and kept in
    /// the data directory, so tokens survive restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// How long a login token is valid, seconds.
    pub token_lifetime_secs: u64,
}

/// A management user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementUser {
    pub username: String,
    pub password: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 8090)),
            users: vec![ManagementUser {
                username: "root".into(),
                password: "123456".into(),
            }],
            token_secret: None,
            token_lifetime_secs: 7200,
        }
    }
}

impl DialectConfig for Config {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn listen(&self) -> SocketAddr {
        self.listen
    }
}

fn build_error(message: impl Into<String>) -> DialectBuildError {
    DialectBuildError {
        dialect: "realmq",
        message: message.into(),
    }
}

/// Builds the dialect over the broker's management interface: loads the registry
/// from the store and starts the presence recorder (stopped by the dialect's
/// shutdown or drop).
pub fn build(config: &Config, ctx: DialectContext) -> Result<Arc<dyn Dialect>, DialectBuildError> {
    if config.users.is_empty() {
        return Err(build_error("at least one management user is needed"));
    }
    if let Some(u) = config
        .users
        .iter()
        .find(|u| u.username.is_empty() || u.username.contains(':'))
    {
        return Err(build_error(format!(
            "management user {:?}: a username must be non-empty and contain no ':'",
            u.username
        )));
    }
    if config.token_lifetime_secs == 0 {
        return Err(build_error("token_lifetime_secs must be at least 1"));
    }
    if config.token_secret.as_deref() == Some("") {
        return Err(build_error(
            "token_secret must not be empty (leave it unset to generate one)",
        ));
    }
    let registry = Arc::new(
        Registry::open(ctx.store.clone()).map_err(|e| build_error(format!("store: {e}")))?,
    );
    let secret = match &config.token_secret {
        Some(s) => s.clone(),
        None => registry
            .token_secret()
            .map_err(|e| build_error(format!("store: {e}")))?,
    };
    let presence = PresenceRecorder::start(registry.clone())
        .map_err(|e| build_error(format!("cannot start the presence recorder: {e}")))?;
    let state = Arc::new(AppState {
        access: Access::new(&config.users, secret.as_bytes(), config.token_lifetime_secs),
        registry: registry.clone(),
        management: ctx.management,
    });
    Ok(Arc::new(RealmqDialect {
        state,
        authenticator: Arc::new(credentials::DeviceAuthenticator { registry }),
        presence: Arc::new(presence),
    }))
}

struct RealmqDialect {
    state: Arc<AppState>,
    authenticator: Arc<credentials::DeviceAuthenticator>,
    presence: Arc<PresenceRecorder>,
}

/// The whole HTTP surface over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(auth::router())
        .merge(products::router())
        .merge(devices::router())
        .merge(mqtt::router())
        .fallback(error::no_such_path)
        .layer(axum::middleware::map_response(error::vendor_envelope))
        .with_state(state)
}

impl Dialect for RealmqDialect {
    fn name(&self) -> &'static str {
        "realmq"
    }
    fn title(&self) -> &'static str {
        "RealMQ REST API"
    }
    fn router(&self) -> Router {
        router(Arc::clone(&self.state))
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi(server_url)
    }
    fn authenticator(&self) -> Option<Arc<dyn ConnectAuthenticator>> {
        Some(self.authenticator.clone())
    }
    fn observer(&self) -> Option<Arc<dyn BrokerObserver>> {
        Some(self.presence.clone())
    }
    fn shutdown(&self) {
        self.presence.stop();
    }
}

impl Drop for RealmqDialect {
    fn drop(&mut self) {
        self.presence.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_lists_every_route_with_both_auth_schemes() {
        let doc = openapi("http://127.0.0.1:8090");
        let json = serde_json::to_value(&doc).unwrap();
        let paths = json["paths"].as_object().unwrap();
        let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "/api/v1/auth",
                "/api/v1/devices",
                "/api/v1/devices/{id}",
                "/api/v1/mqtt/publish",
                "/api/v1/mqtt/publish_batch",
                "/api/v1/mqtt/subscribe",
                "/api/v1/mqtt/subscribe_batch",
                "/api/v1/mqtt/unsubscribe",
                "/api/v1/mqtt/unsubscribe_batch",
                "/api/v1/products",
                "/api/v1/products/{id}",
            ]
        );
        let schemes = &json["components"]["securitySchemes"];
        assert_eq!(schemes["basic"]["scheme"], "basic");
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(json["servers"][0]["url"], "http://127.0.0.1:8090");
        // Login is the one route that needs no credentials.
        assert_eq!(
            paths["/api/v1/auth"]["post"]["security"],
            serde_json::json!([{}])
        );
        let mut operation_ids: Vec<&str> = paths
            .values()
            .flat_map(|p| p.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().unwrap())
            .collect();
        operation_ids.sort();
        let count = operation_ids.len();
        operation_ids.dedup();
        assert_eq!(
            (count, operation_ids.len()),
            (17, 17),
            "unique operation ids"
        );
        let list = &json["components"]["schemas"]["DeviceSummary"]["properties"];
        assert!(list["status"].is_object() && list["connected_at"].is_object());
    }
}
