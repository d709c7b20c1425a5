//! # mqgate-mica
//!
//! The mica-mqtt 2.6.8.3 HTTP management API, served by mqgate on its own
//! listener (default `0.0.0.0:18083`, Basic `mica`/`mica`), so that scripts and
//! mica-mqtt-dashboard work unchanged.
//!
//! Map of the crate:
//! - This file: [`Config`] (the `[mica]` section), [`build`], [`openapi()`], and the
//!   list of resource routers in the order mica lists its routes.
//! - [`state`]: [`state::App`], what every handler shares.
//! - [`auth`]: the [`auth::Authorized`] extractor (Basic auth, after the route matched).
//! - [`error`]: the result codes and [`error::Error`], the one error type, rendered
//!   as `{"code":N}` with its HTTP status; the JSON envelope successes share.
//! - [`routes`]: the route table ([`routes::Routes`]), which keeps mica's route order.
//! - [`dispatch`]: mica's handling around the routers (404 for other methods and
//!   unknown routes, empty path segments dropped, `Server: mica-net`).
//! - [`form`]: request input as mica reads it (JSON bodies with Jackson's
//!   coercions; `clientId`/`_page`/`_limit` from the query or a urlencoded body).
//! - Resources, one module each with its `router()`, one handler per endpoint, each
//!   handler's path and method written once in its `#[utoipa::path]` annotation:
//!   [`endpoints`] (`/api/v1/endpoints`), [`stats`] (`/api/v1/stats`, `/stats/sse`),
//!   [`publish`] (`/api/v1/mqtt/publish`, `/publish/batch`), [`subscriptions`]
//!   (`/api/v1/mqtt/subscribe`, `/unsubscribe` and their batches), [`clients`]
//!   (`/api/v1/clients`, `/clients/info`, `/clients/delete`,
//!   `/api/v1/client/subscriptions`).
//! - [`mod@openapi`]: the OpenAPI document around the routers' operations.
//!
//! Every fidelity decision (where mqgate follows the real server over the docs,
//! and where it deliberately differs) is in the crate's README.md.

use std::net::SocketAddr;
use std::sync::Arc;

use mqgate_kit::http::basic_auth::BasicCredentials;
use mqgate_kit::{Dialect, DialectBuildError, DialectConfig, DialectContext, Management};
use serde::{Deserialize, Serialize};

pub mod auth;
pub mod clients;
pub mod dispatch;
pub mod endpoints;
pub mod error;
pub mod form;
pub mod openapi;
pub mod publish;
#[cfg(test)]
mod router_tests;
pub mod routes;
pub mod state;
pub mod stats;
pub mod subscriptions;

use routes::Routes;
use state::App;

/// The `[mica]` section of mqgate.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Serve this dialect.
    pub enabled: bool,
    /// Address of the dialect's HTTP listener.
    pub listen: SocketAddr,
    /// HTTP Basic user of the API.
    pub username: String,
    /// HTTP Basic password of the API.
    pub password: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 18083)),
            username: "mica".to_string(),
            password: "mica".to_string(),
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
    // A colon in the user would make the Basic token ambiguous: no client could
    // ever send matching credentials.
    if config.username.contains(':') {
        return Err(DialectBuildError {
            dialect: "mica",
            message: "username must not contain ':'".to_string(),
        });
    }
    Ok(Arc::new(MicaDialect {
        management: ctx.management,
        credentials: Arc::new(BasicCredentials::new(&config.username, &config.password)),
    }))
}

/// The dialect's OpenAPI document, `servers` pointing at `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    let (_, _, operations) = resources().into_parts();
    openapi::document(operations, server_url)
}

/// Every resource's routes, in the order `GET /api/v1/endpoints` lists them.
fn resources() -> Routes {
    Routes::new()
        .merge(endpoints::router())
        .merge(stats::router())
        .merge(publish::router())
        .merge(subscriptions::router())
        .merge(clients::router())
}

/// The dialect's whole HTTP surface over `management`.
fn router(management: Arc<dyn Management>, credentials: Arc<BasicCredentials>) -> axum::Router {
    let (routes, order, _) = resources().into_parts();
    let app = App {
        management,
        credentials,
        routes: order,
    };
    dispatch::router(routes.with_state(app))
}

struct MicaDialect {
    management: Arc<dyn Management>,
    credentials: Arc<BasicCredentials>,
}

impl Dialect for MicaDialect {
    fn name(&self) -> &'static str {
        "mica"
    }
    fn title(&self) -> &'static str {
        openapi::TITLE
    }
    fn router(&self) -> axum::Router {
        router(self.management.clone(), self.credentials.clone())
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi(server_url)
    }
}
