//! # mqgate-nanomq
//!
//! The NanoMQ HTTP API (v1 RPC and v4 REST) dialect of mqgate. (Skeleton: the handlers arrive with the dialect's issue.)

use std::net::SocketAddr;
use std::sync::Arc;

use mqgate_kit::{Dialect, DialectBuildError, DialectConfig, DialectContext};
use serde::{Deserialize, Serialize};

/// The `[nanomq]` section of mqgate.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Serve this dialect.
    pub enabled: bool,
    /// Address of the dialect's HTTP listener.
    pub listen: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 8081)),
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
pub fn build(_config: &Config, _ctx: DialectContext) -> Result<Arc<dyn Dialect>, DialectBuildError> {
    Ok(Arc::new(NanomqDialect))
}

/// The dialect's OpenAPI document, `servers` pointing at `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(utoipa::openapi::InfoBuilder::new().title("NanoMQ HTTP API (v1 RPC and v4 REST)").version(env!("CARGO_PKG_VERSION")).build())
        .build();
    doc.servers = Some(vec![utoipa::openapi::server::Server::new(server_url)]);
    doc
}

struct NanomqDialect;

impl Dialect for NanomqDialect {
    fn name(&self) -> &'static str {
        "nanomq"
    }
    fn title(&self) -> &'static str {
        "NanoMQ HTTP API (v1 RPC and v4 REST)"
    }
    fn router(&self) -> axum::Router {
        axum::Router::new()
    }
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi {
        openapi(server_url)
    }
}
