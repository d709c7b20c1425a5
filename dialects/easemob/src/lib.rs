//! # mqgate-easemob
//!
//! The Easemob (环信) MQTT message cloud's REST API (`/openapi/rm/…`), served for
//! one application whose AppID, client id and secret come from the `[easemob]`
//! section of the configuration. Every path is served at the root and under
//! `/app/{AppID}` (Easemob's `{api}` base URL).
//!
//! - this file: the `[easemob]` [`Config`], [`build`], the router, the [`Dialect`].
//! - [`state`]: [`state::AppState`], what every handler shares.
//! - [`auth`]: the [`auth::AppToken`] extractor every guarded handler takes (the
//!   app token in `Authorization`), and the MQTT CONNECT authenticator that
//!   accepts user tokens as passwords.
//! - [`tokens`]: `app/token` and `user/token`.
//! - [`publish`]: the `v1/rm/chat/publish` operation.
//! - [`records`]: connection and message records (`device/record`,
//!   `message/record|publish|subscribe|message|messages`), read through
//!   [`mqgate_kit::History`].
//! - [`clients`]: live views (`broker/clientInfo`, `users/topic|userid|appid`).
//! - [`app_info`]: `user/info`, the MQTT host and port (the server SDK's
//!   `queryMqttAppInfo`).
//! - [`token_store`]: tokens and users in the embedded store.
//! - [`client_id`]: the `deviceID@AppID` rules.
//! - [`params`]: URL parameters shared by the queries; [`error`]: the envelope.
//! - [`openapi`](mod@openapi): the OpenAPI document.
//!
//! README.md lists where this dialect follows the real server over the document,
//! and where it deliberately differs.

pub mod app_info;
pub mod auth;
pub mod client_id;
pub mod clients;
pub mod error;
pub mod openapi;
pub mod params;
pub mod publish;
pub mod records;
pub mod state;
pub mod token_store;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use mqgate_kit::{
    BrokerObserver, ConnectAuthenticator, Dialect, DialectBuildError, DialectConfig, DialectContext,
};
use serde::{Deserialize, Serialize};

pub use crate::openapi::openapi;

use crate::client_id::is_app_id;
use crate::state::AppState;
use crate::token_store::TokenStore;

/// What a CONNECT does when its client id is already connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateClientId {
    /// The new connection takes over and the old one is closed (MQTT's rule).
    #[default]
    Takeover,
    /// The new connection is refused (Easemob's glossary: "rejected").
    Reject,
}

/// A console user who may ask for an IM token with a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUser {
    pub username: String,
    pub password: String,
}

/// The `[easemob]` section of mqgate.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Serve this dialect.
    pub enabled: bool,
    /// Address of the dialect's HTTP listener.
    pub listen: SocketAddr,
    /// The application's AppID: 6 lowercase letters or digits. MQTT clients of the
    /// application use client ids `deviceID@AppID`.
    pub app_id: String,
    /// `appClientId` that `app/token` expects. Change it in production.
    pub app_client_id: String,
    /// `appClientSecret` that `app/token` expects. Change it in production.
    pub app_client_secret: String,
    /// The application UUID reported with app tokens.
    pub application: String,
    /// Lifetime of app tokens and IM tokens, seconds.
    pub app_token_ttl_secs: u64,
    /// Default and largest lifetime of MQTT user tokens, seconds.
    pub user_token_max_ttl_secs: u64,
    /// Users who may get an IM token with `username` + `password`.
    pub users: Vec<ConsoleUser>,
    /// `takeover` (default) or `reject`: what a CONNECT with a client id that is
    /// already connected does.
    pub duplicate_client_id: DuplicateClientId,
    /// The MQTT host `user/info` tells clients to connect to. Unset: the host the
    /// `user/info` request was sent to (its `Host` header), else `localhost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_host: Option<String>,
    /// The MQTT port `user/info` tells clients to connect to. Unset: the port of
    /// the MQTT TCP listener (1883 when it is disabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_port: Option<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 8088)),
            app_id: "mq7g4e".into(),
            app_client_id: "YXA6mQgAtE7eAsEmObApPcLiEn".into(),
            app_client_secret: "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1".into(),
            application: "6d716761-7465-4e61-8065-6173656d6f62".into(),
            app_token_ttl_secs: 5_183_999,
            user_token_max_ttl_secs: 3 * 24 * 3600,
            users: Vec::new(),
            duplicate_client_id: DuplicateClientId::Takeover,
            advertised_host: None,
            advertised_port: None,
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
        dialect: "easemob",
        message: message.into(),
    }
}

/// Builds the dialect over the broker's management interface.
pub fn build(config: &Config, ctx: DialectContext) -> Result<Arc<dyn Dialect>, DialectBuildError> {
    if !is_app_id(&config.app_id) {
        return Err(build_error(format!(
            "app_id {:?} must be 6 lowercase letters or digits",
            config.app_id
        )));
    }
    if config.app_client_id.is_empty() || config.app_client_secret.is_empty() {
        return Err(build_error(
            "app_client_id and app_client_secret must not be empty",
        ));
    }
    if config.user_token_max_ttl_secs <= 60 {
        return Err(build_error("user_token_max_ttl_secs must be over 60"));
    }
    if let Some(host) = &config.advertised_host {
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(build_error(format!(
                "advertised_host {host:?} must be a host name or address (leave it unset to use the request's host)"
            )));
        }
    }
    if config.advertised_port == Some(0) {
        return Err(build_error("advertised_port must be 1 to 65535"));
    }
    let tokens =
        Arc::new(TokenStore::open(Arc::clone(&ctx.store)).map_err(|e| build_error(e.to_string()))?);
    Ok(Arc::new(EasemobDialect {
        state: Arc::new(AppState {
            config: config.clone(),
            management: ctx.management,
            tokens,
        }),
    }))
}

/// The routes of the API, each resource's own.
fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .merge(tokens::router())
        .merge(publish::router())
        .merge(records::router())
        .merge(clients::router())
        .merge(app_info::router())
}

/// The whole HTTP surface over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(routes())
        .nest("/app/:app_id", routes())
        .fallback(error::page_not_found)
        .method_not_allowed_fallback(error::page_not_found)
        .with_state(state)
}

struct EasemobDialect {
    state: Arc<AppState>,
}

impl Dialect for EasemobDialect {
    fn name(&self) -> &'static str {
        "easemob"
    }
    fn title(&self) -> &'static str {
        "Easemob MQTT REST API"
    }
    fn router(&self) -> Router {
        router(Arc::clone(&self.state))
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi::openapi_for(&self.state.config.app_id, server_url)
    }
    fn authenticator(&self) -> Option<Arc<dyn ConnectAuthenticator>> {
        Some(Arc::new(auth::TokenAuthenticator {
            tokens: Arc::clone(&self.state.tokens),
            app_id: self.state.config.app_id.clone(),
            duplicate_client_id: self.state.config.duplicate_client_id,
        }))
    }
    fn observer(&self) -> Option<Arc<dyn BrokerObserver>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_credentials_have_the_vendor_shapes() {
        let c = Config::default();
        assert!(is_app_id(&c.app_id));
        assert_eq!(c.app_client_id.len(), 26);
        assert!(c.app_client_id.starts_with("YXA6"));
        assert_eq!(c.app_client_secret.len(), 31);
        assert!(c.app_client_secret.starts_with("YXA6"));
        assert_eq!(c.application.len(), 36);
    }

    #[test]
    fn config_rejects_unknown_keys() {
        let c: Config =
            serde_json::from_str(r#"{"app_id":"ab12cd","duplicate_client_id":"reject"}"#).unwrap();
        assert_eq!(c.duplicate_client_id, DuplicateClientId::Reject);
        assert!(serde_json::from_str::<Config>(r#"{"appid":"ab12cd"}"#).is_err());
    }

    #[test]
    fn openapi_lists_the_thirteen_documented_operations_and_user_info() {
        let doc = openapi("http://127.0.0.1:8088");
        assert_eq!(doc.paths.paths.len(), 14);
        assert!(doc.paths.paths.contains_key("/openapi/rm/user/info"));
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json["components"]["securitySchemes"]["app_token"].is_object());
        assert_eq!(json["servers"][0]["url"], "http://127.0.0.1:8088");
    }
}
