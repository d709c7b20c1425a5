//! # mqgate-easemob
//!
//! The Easemob (环信) MQTT message cloud's REST API (`/openapi/rm/…`), served for
//! one application whose AppID, client id and secret come from the `[easemob]`
//! section of the configuration. Every path is served at the root and under
//! `/app/{AppID}` (Easemob's `{api}` base URL).
//!
//! - [`app`]: the application, client-id rules (`deviceID@AppID`), token shapes and
//!   their storage (`easemob_tokens`, `easemob_users` in the embedded store).
//! - [`auth`]: the app token on REST calls (`Authorization`), and the MQTT CONNECT
//!   authenticator that accepts user tokens as passwords.
//! - [`tokens`]: `app/token` and `user/token`.
//! - [`publish`]: the `v1/rm/chat/publish` operation.
//! - [`records`]: connection and message records (`device/record`,
//!   `message/record|publish|subscribe|message|messages`), read through
//!   [`mqgate_kit::History`].
//! - [`clients`]: live views (`broker/clientInfo`, `users/topic|userid|appid`).
//! - [`params`]: URL parameters shared by the queries; [`error`]: the envelope.
//!
//! README.md lists where this dialect follows the real server over the document,
//! and where it deliberately differs.

pub mod app;
pub mod auth;
pub mod clients;
pub mod error;
pub mod params;
pub mod publish;
pub mod records;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use mqgate_kit::{
    BrokerObserver, ConnectAuthenticator, Dialect, DialectBuildError, DialectConfig, DialectContext,
};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::OpenApi;

use crate::app::{is_app_id, App};

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
    app::migrate(&ctx.store).map_err(|e| build_error(e.to_string()))?;
    Ok(Arc::new(EasemobDialect {
        app: Arc::new(App {
            config: config.clone(),
            management: ctx.management,
            store: ctx.store,
        }),
    }))
}

struct AppTokenSecurity;

impl utoipa::Modify for AppTokenSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "app_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "The raw app token from `app/token` (a leading space or `Bearer ` is tolerated).",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Easemob MQTT REST API",
        description = "Easemob MQTT message cloud REST API (`/openapi/rm`), served by mqgate. Every path is also served under `/app/{AppID}`. Errors are `{\"code\":…,\"msg\":…,\"body\":…}` with the HTTP status equal to `code`."
    ),
    paths(
        tokens::app_token,
        tokens::user_token,
        publish::publish,
        records::device_records,
        clients::client_info,
        records::message_records,
        records::publish_records,
        records::delivery_records,
        records::message,
        records::topic_messages,
        clients::clients_by_topic,
        clients::clients_by_user,
        clients::clients_of_app,
    ),
    modifiers(&AppTokenSecurity),
    tags(
        (name = "token", description = "App and user tokens"),
        (name = "message", description = "Sending messages"),
        (name = "record", description = "Connection and message records"),
        (name = "client", description = "Online clients"),
    )
)]
struct ApiDoc;

/// The dialect's OpenAPI document, `servers` pointing at `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.servers = Some(vec![utoipa::openapi::server::Server::new(server_url)]);
    doc
}

fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/openapi/rm/app/token", post(tokens::app_token))
        .route("/openapi/rm/user/token", post(tokens::user_token))
        .route("/openapi/v1/rm/chat/publish", post(publish::publish))
        .route("/openapi/rm/device/record", get(records::device_records))
        .route("/openapi/rm/broker/clientInfo", get(clients::client_info))
        .route("/openapi/rm/message/record", get(records::message_records))
        .route("/openapi/rm/message/publish", get(records::publish_records))
        .route(
            "/openapi/rm/message/subscribe",
            get(records::delivery_records),
        )
        .route("/openapi/rm/message/message", get(records::message))
        .route("/openapi/rm/message/messages", get(records::topic_messages))
        .route("/openapi/rm/users/topic", get(clients::clients_by_topic))
        .route("/openapi/rm/users/userid", get(clients::clients_by_user))
        .route("/openapi/rm/users/appid", get(clients::clients_of_app))
}

/// The whole HTTP surface over `app`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(routes())
        .nest("/app/:app_id", routes())
        .fallback(error::page_not_found)
        .method_not_allowed_fallback(error::page_not_found)
        .with_state(app)
}

struct EasemobDialect {
    app: Arc<App>,
}

impl Dialect for EasemobDialect {
    fn name(&self) -> &'static str {
        "easemob"
    }
    fn title(&self) -> &'static str {
        "Easemob MQTT REST API"
    }
    fn router(&self) -> Router {
        router(Arc::clone(&self.app))
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi(server_url)
    }
    fn authenticator(&self) -> Option<Arc<dyn ConnectAuthenticator>> {
        Some(Arc::new(auth::TokenAuthenticator {
            app: Arc::clone(&self.app),
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
    fn openapi_lists_all_thirteen_operations() {
        let doc = openapi("http://127.0.0.1:8088");
        assert_eq!(doc.paths.paths.len(), 13);
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json["components"]["securitySchemes"]["app_token"].is_object());
        assert_eq!(json["servers"][0]["url"], "http://127.0.0.1:8088");
    }
}
