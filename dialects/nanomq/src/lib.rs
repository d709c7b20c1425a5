//! # mqgate-nanomq
//!
//! The NanoMQ HTTP management API, both generations a NanoMQ user may have code for,
//! on one listener (default `0.0.0.0:8081`, Basic `admin`/`public`):
//!
//! - `/api/v1`: the req/seq RPC of NanoMQ 0.5–0.8.0 ([`v1`]).
//! - `/api/v4`: the REST API of NanoMQ 0.25.x ([`v4`], one module per resource, each
//!   owning its routes: [`v4::endpoints`], [`v4::brokers`], [`v4::clients`],
//!   [`v4::subscriptions`], [`v4::topic_tree`], [`v4::metrics`], [`v4::reload`],
//!   [`v4::configuration`], [`v4::files`], [`v4::ctrl`], [`v4::mqtt`],
//!   [`v4::bridges`], [`v4::rules`]; [`v4::request`] reads requests as NanoMQ does).
//!   A route's path and method are written once, in its handler's `#[utoipa::path]`
//!   annotation.
//!
//! Around them:
//!
//! - This file: [`Config`] (the `[nanomq]` section), [`build`], [`openapi()`].
//! - [`state`]: [`state::App`], what every handler shares.
//! - [`mount`]: the listener: NanoMQ's dispatch on raw path prefixes, body limits,
//!   the request's Content-Type echoed on errors; [`static_files`] for the rest.
//! - [`auth`]: Basic, JWT (RS256, [`jwt`]) or no auth, checked by the
//!   [`auth::Authorized`] extractor with NanoMQ's result codes.
//! - [`error`]: [`error::Error`], the one error type, rendering NanoMQ's `{"code":N}`
//!   envelope (and v1's `seq`/`rep` form); [`reply`]: successful bodies with NanoMQ's
//!   headers, nng's HTML pages.
//! - [`cjson`]: numbers printed the way NanoMQ's JSON library prints them.
//! - [`settings`]: mqgate's real configuration seen through NanoMQ's config shapes, and
//!   NanoMQ-shaped writes mapped back onto [`mqgate_kit::HotConfigPatch`]; what cannot be
//!   applied is reported in `not_applied`. Files are parsed with [`mqgate_kit::hocon`].
//!   [`config_files`]: the three files the
//!   configuration routes may read and write (the allow-list), written atomically.
//! - [`mod@openapi`]: the OpenAPI document around the routers' operations.
//!
//! Beyond NanoMQ and off by default: `cors_origins` (tower-http's CORS layer) and
//! `static_dir` (tower-http's ServeDir, NanoMQ's `./dist` handler made configurable).
//! [`sign_token`] issues tokens the JWT mode accepts (NanoMQ cannot issue any).

pub mod auth;
pub mod cjson;
pub mod config_files;
pub mod error;
pub mod jwt;
pub mod mount;
pub mod openapi;
pub mod reply;
pub mod settings;
pub mod state;
pub mod static_files;
pub mod v1;
pub mod v4;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mqgate_kit::{Dialect, DialectBuildError, DialectConfig, DialectContext};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use state::{App, Maxima};

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
    let cors = mount::cors_layer(&config.cors_origins).map_err(fail)?;
    let shared = ctx.store.is_shared().then(|| Arc::clone(&ctx.store));
    if let Some(store) = &shared {
        mqgate_kit::store::files::migrate(store).map_err(|e| fail(e.to_string()))?;
    }
    let app = Arc::new(App {
        management: ctx.management,
        config: config.clone(),
        auth,
        data_dir: ctx.data_dir,
        shared,
        listen: ctx.listen,
        maxima: Mutex::new(Maxima::default()),
    });
    Ok(Arc::new(NanomqDialect { app, cors }))
}

/// The dialect's OpenAPI document, `servers` pointing at `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    let operations = v1::routes().merge(v4::routes()).into_openapi();
    openapi::document(operations, server_url)
}

struct NanomqDialect {
    app: Arc<App>,
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
        mount::router(self.app.clone(), self.cors.clone())
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi(server_url)
    }
}
