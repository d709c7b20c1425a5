//! # mqgate-mica
//!
//! The mica-mqtt 2.6.8.3 HTTP management API, served by mqgate on its own
//! listener (default `0.0.0.0:18083`, Basic `mica`/`mica`), so that scripts and
//! mica-mqtt-dashboard work unchanged.
//!
//! Map of the crate:
//! - [`routing`]: the route table and mica's dispatch order (path and method,
//!   then Basic auth, then the handler; 404 `{"code":404}` for anything else).
//! - [`error`]: the result codes and [`error::MicaError`], the one error type,
//!   rendered as `{"code":N}` with its HTTP status.
//! - [`form`]: request input as mica reads it (JSON bodies with Jackson's
//!   coercions; `clientId`/`_page`/`_limit` from the query or a urlencoded body).
//! - Resources, one module each, one handler per endpoint:
//!   [`endpoints`] (`/api/v1/endpoints`), [`stats`] (`/api/v1/stats`, `/stats/sse`),
//!   [`publish`] (`/api/v1/mqtt/publish`, `/publish/batch`), [`subscriptions`]
//!   (`/api/v1/mqtt/subscribe`, `/unsubscribe`, their batches,
//!   `/api/v1/client/subscriptions`), [`clients`] (`/api/v1/clients`,
//!   `/clients/info`, `/clients/delete`).
//! - [`apidoc`]: the OpenAPI document, generated from the handlers and types.
//!
//! Every fidelity decision (where mqgate follows the real server over the docs,
//! and where it deliberately differs) is in the crate's README.md.

use std::net::SocketAddr;
use std::sync::Arc;

use mqgate_kit::http::basic_auth::BasicCredentials;
use mqgate_kit::{Dialect, DialectBuildError, DialectConfig, DialectContext, Management};
use serde::{Deserialize, Serialize};

pub mod apidoc;
pub mod clients;
pub mod endpoints;
pub mod error;
pub mod form;
pub mod publish;
#[cfg(test)]
mod router_tests;
pub mod routing;
pub mod stats;
pub mod subscriptions;

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
        mica: Mica {
            mgmt: ctx.management,
        },
        credentials: BasicCredentials::new(&config.username, &config.password),
    }))
}

/// The dialect's OpenAPI document, `servers` pointing at `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    apidoc::document(server_url)
}

/// What every handler shares: the way to the broker.
#[derive(Clone)]
pub struct Mica {
    pub(crate) mgmt: Arc<dyn Management>,
}

struct MicaDialect {
    mica: Mica,
    credentials: BasicCredentials,
}

impl Dialect for MicaDialect {
    fn name(&self) -> &'static str {
        "mica"
    }
    fn title(&self) -> &'static str {
        apidoc::TITLE
    }
    fn router(&self) -> axum::Router {
        routing::router(self.mica.clone(), self.credentials.clone())
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi(server_url)
    }
}
