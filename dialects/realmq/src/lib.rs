//! # mqgate-realmq
//!
//! The RealMQ REST API (`/api/v1`, default port 8090) over mqgate's broker: a
//! product and device registry that persists, device credentials enforced on MQTT
//! CONNECT, login tokens, and EMQX-4-style publish and subscribe operations.
//!
//! - [`auth`]: `POST /api/v1/auth` and the Basic-or-Bearer guard of every route.
//! - [`products`]: products CRUD.
//! - [`devices`]: devices CRUD, and device status from the live broker.
//! - [`mqtt`]: publish, subscribe, unsubscribe and their batch forms.
//! - [`registry`]: products and devices in the embedded store, mirrored in memory.
//! - [`credentials`]: the CONNECT authenticator for device credentials.
//! - [`presence`]: the broker observer that records device connects and disconnects.
//! - [`error`]: the one error type and its `{"code","message"}` envelope.
//! - [`wire`]: lenient JSON fields, paging and the `{"code":0}` reply.
//!
//! Every fidelity decision is listed in the crate's README.md.

pub mod auth;
pub mod credentials;
pub mod devices;
pub mod error;
pub mod mqtt;
pub mod presence;
pub mod products;
pub mod registry;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mqgate_kit::http::body::closing_connection;
use mqgate_kit::{
    BrokerObserver, ConnectAuthenticator, Dialect, DialectBuildError, DialectConfig,
    DialectContext, Management,
};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use crate::auth::Access;
use crate::error::ApiError;
use crate::registry::Registry;

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
/// from the store and starts the presence recorder.
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
    let presence = presence::PresenceObserver::start(registry.clone())
        .map_err(|e| build_error(format!("cannot start the presence recorder: {e}")))?;
    let app = Arc::new(App {
        access: Access::new(&config.users, secret.as_bytes(), config.token_lifetime_secs),
        registry: registry.clone(),
        management: ctx.management,
    });
    Ok(Arc::new(RealmqDialect {
        app,
        authenticator: Arc::new(credentials::DeviceAuthenticator { registry }),
        observer: Arc::new(presence),
    }))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "RealMQ REST API",
        description = "RealMQ's management API as served by mqgate. Errors are `{\"code\":<n>,\"message\":…}` with the HTTP statuses of the RealMQ document."
    ),
    paths(
        auth::login,
        products::create,
        products::list,
        products::detail,
        products::update,
        products::delete,
        devices::create,
        devices::list,
        devices::detail,
        devices::update,
        devices::delete,
        mqtt::publish,
        mqtt::subscribe,
        mqtt::unsubscribe,
        mqtt::publish_batch,
        mqtt::subscribe_batch,
        mqtt::unsubscribe_batch,
    ),
    modifiers(&SecuritySchemes),
    security(("basic" = []), ("bearer" = [])),
    tags(
        (name = "auth", description = "Login"),
        (name = "products", description = "Products"),
        (name = "devices", description = "Devices"),
        (name = "mqtt", description = "Publish and subscribe on behalf of clients"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A token from POST /api/v1/auth"))
                    .build(),
            ),
        );
    }
}

/// The dialect's OpenAPI document, `servers` pointing at `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.servers = Some(vec![utoipa::openapi::server::Server::new(server_url)]);
    doc
}

/// What every handler shares.
pub struct App {
    pub access: Access,
    pub registry: Arc<Registry>,
    pub management: Arc<dyn Management>,
}

struct RealmqDialect {
    app: Arc<App>,
    authenticator: Arc<credentials::DeviceAuthenticator>,
    observer: Arc<presence::PresenceObserver>,
}

async fn no_such_path() -> ApiError {
    ApiError::not_found("no such path")
}

/// Answers that axum produces on its own (wrong method, undecodable path,
/// oversized body) are plain text; they are rewritten into the vendor envelope
/// with a status from RealMQ's table, which has no 405 or 413.
async fn vendor_envelope(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = response.status();
    if is_json || status.is_success() {
        return response;
    }
    let detail = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => {
            ApiError::not_found("no such path for this method")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            return closing_connection(
                ApiError::invalid_parameter("the request body is too large").into_response(),
            );
        }
        s if s.is_client_error() => {
            ApiError::invalid_parameter(format!("invalid request: {detail}"))
        }
        _ => ApiError::internal(detail),
    };
    error.into_response()
}

fn router(app: Arc<App>) -> Router {
    let guarded = Router::new()
        .route(
            "/api/v1/products",
            get(products::list).post(products::create),
        )
        .route(
            "/api/v1/products/:id",
            get(products::detail)
                .put(products::update)
                .delete(products::delete),
        )
        .route("/api/v1/devices", get(devices::list).post(devices::create))
        .route(
            "/api/v1/devices/:id",
            get(devices::detail)
                .put(devices::update)
                .delete(devices::delete),
        )
        .route("/api/v1/mqtt/publish", post(mqtt::publish))
        .route("/api/v1/mqtt/subscribe", post(mqtt::subscribe))
        .route("/api/v1/mqtt/unsubscribe", post(mqtt::unsubscribe))
        .route("/api/v1/mqtt/publish_batch", post(mqtt::publish_batch))
        .route("/api/v1/mqtt/subscribe_batch", post(mqtt::subscribe_batch))
        .route(
            "/api/v1/mqtt/unsubscribe_batch",
            post(mqtt::unsubscribe_batch),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require_auth,
        ));
    Router::new()
        .route("/api/v1/auth", post(auth::login))
        .merge(guarded)
        .fallback(no_such_path)
        .layer(axum::middleware::map_response(vendor_envelope))
        .with_state(app)
}

impl Dialect for RealmqDialect {
    fn name(&self) -> &'static str {
        "realmq"
    }
    fn title(&self) -> &'static str {
        "RealMQ REST API"
    }
    fn router(&self) -> Router {
        router(self.app.clone())
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi(server_url)
    }
    fn authenticator(&self) -> Option<Arc<dyn ConnectAuthenticator>> {
        Some(self.authenticator.clone())
    }
    fn observer(&self) -> Option<Arc<dyn BrokerObserver>> {
        Some(self.observer.clone())
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
