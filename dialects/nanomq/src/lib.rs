//! # mqgate-nanomq
//!
//! The NanoMQ HTTP management API, both generations a NanoMQ user may have code for,
//! on one listener (default `0.0.0.0:8081`, Basic `admin`/`public`):
//!
//! - `/api/v1`: the req/seq RPC of NanoMQ 0.5–0.8.0 ([`v1`]).
//! - `/api/v4`: the REST API of NanoMQ 0.25.x ([`v4`], one module per resource:
//!   [`v4::endpoints`], [`v4::brokers`], [`v4::clients`], [`v4::subscriptions`],
//!   [`v4::topic_tree`], [`v4::metrics`], [`v4::reload`], [`v4::configuration`],
//!   [`v4::ctrl`], [`v4::mqtt`], [`v4::bridges`], [`v4::rules`]).
//!
//! The real server routes on the raw, un-decoded URI, authenticates before routing and
//! answers unknown paths with `{"code":102}`; axum's matcher does none of that, so the
//! whole surface is one fallback handler ([`server`]) that classifies the raw path and
//! hands it to the API's own router. Around it:
//!
//! - [`auth`]: Basic, JWT (RS256, [`jwt`]) or no auth, with NanoMQ's result codes.
//! - [`reply`]: the response and the one error type ([`reply::ApiError`]) that renders
//!   NanoMQ's `{"code":N}` envelope (and v1's `seq`/`rep` form), with the request's
//!   Content-Type echoed as NanoMQ does; nng's HTML pages for paths outside the APIs.
//! - [`cjson`]: numbers printed the way NanoMQ's JSON library prints them.
//! - [`settings`]: mqgate's real configuration seen through NanoMQ's config shapes, and
//!   NanoMQ-shaped writes mapped back onto [`mqgate_kit::HotConfigPatch`]; what cannot be
//!   applied is reported in `not_applied`.
//! - [`mod@openapi`]: the OpenAPI document, generated from the handlers' annotations.
//!
//! Beyond NanoMQ and off by default: `cors_origins` (tower-http's CORS layer) and
//! `static_dir` (tower-http's ServeDir, NanoMQ's `./dist` handler made configurable).
//! [`sign_token`] issues tokens the JWT mode accepts (NanoMQ cannot issue any).

pub mod auth;
pub mod cjson;
pub mod hocon;
pub mod jwt;
pub mod openapi;
pub mod reply;
pub mod server;
pub mod settings;
pub mod v1;
pub mod v4;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mqgate_kit::{Dialect, DialectBuildError, DialectConfig, DialectContext};
use serde::{Deserialize, Serialize};

pub use jwt::sign_token;

/// How the HTTP API authenticates callers (`http_server.auth_type` in NanoMQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// `Authorization: Basic` with `username`/`password`.
    #[default]
    Basic,
    /// `Authorization: Bearer` with an RS256 token verified by `jwt_public_keyfile`.
    Jwt,
    /// No check at all.
    NoAuth,
}

impl AuthType {
    /// The name NanoMQ reports; like NanoMQ, `no_auth` reports itself as `basic`.
    pub fn reported_name(self) -> &'static str {
        match self {
            AuthType::Jwt => "jwt",
            AuthType::Basic | AuthType::NoAuth => "basic",
        }
    }
}

/// The `[nanomq]` section of mqgate.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Serve this dialect.
    pub enabled: bool,
    /// Address of the dialect's HTTP listener.
    pub listen: SocketAddr,
    /// Basic auth user (`http_server.username`).
    pub username: String,
    /// Basic auth password (`http_server.password`).
    pub password: String,
    /// `basic`, `jwt` or `no_auth` (`http_server.auth_type`).
    pub auth_type: AuthType,
    /// PEM public key verifying JWTs in `jwt` mode; its file name is the required `iss`
    /// (`http_server.jwt.public.keyfile`).
    pub jwt_public_keyfile: Option<PathBuf>,
    /// Browser origins allowed by CORS (empty: no CORS headers, as NanoMQ).
    pub cors_origins: Vec<String>,
    /// Directory served at `/` without auth, as NanoMQ serves `./dist` (unset: off).
    pub static_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 8081)),
            username: "admin".to_string(),
            password: "public".to_string(),
            auth_type: AuthType::Basic,
            jwt_public_keyfile: None,
            cors_origins: Vec::new(),
            static_dir: None,
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

/// Builds the dialect over the broker's management interface.
pub fn build(config: &Config, ctx: DialectContext) -> Result<Arc<dyn Dialect>, DialectBuildError> {
    let fail = |message: String| DialectBuildError {
        dialect: "nanomq",
        message,
    };
    let auth = auth::Auth::from_config(config).map_err(fail)?;
    let cors = server::cors_layer(&config.cors_origins).map_err(fail)?;
    let api = Arc::new(server::Nanomq::new(config.clone(), ctx, auth));
    Ok(Arc::new(NanomqDialect { api, cors }))
}

/// The dialect's OpenAPI document, `servers` pointing at `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    openapi::document(server_url)
}

struct NanomqDialect {
    api: Arc<server::Nanomq>,
    cors: Option<tower_http::cors::CorsLayer>,
}

impl Dialect for NanomqDialect {
    fn name(&self) -> &'static str {
        "nanomq"
    }
    fn title(&self) -> &'static str {
        "NanoMQ HTTP API (v1 RPC and v4 REST)"
    }
    fn router(&self) -> axum::Router {
        server::router(self.api.clone(), self.cors.clone())
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi(server_url)
    }
}
