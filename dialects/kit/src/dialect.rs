//! What a dialect crate gives the gateway.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::auth::ConnectAuthenticator;
use crate::history::BrokerObserver;
use crate::management::Management;
use crate::store::Store;

/// What the gateway hands a dialect when building it.
#[derive(Clone)]
pub struct DialectContext {
    pub management: Arc<dyn Management>,
    pub store: Arc<Store>,
    /// The gateway's data directory (the store lives in it too).
    pub data_dir: PathBuf,
    /// The address the dialect's listener is bound to.
    pub listen: SocketAddr,
}

/// Every dialect's configuration section has these two keys.
pub trait DialectConfig {
    fn enabled(&self) -> bool;
    fn listen(&self) -> SocketAddr;
}

/// One vendor API, ready to serve.
pub trait Dialect: Send + Sync {
    /// Short name, used as the config section and the OpenAPI file name.
    fn name(&self) -> &'static str;
    /// Human title, shown in Swagger UI.
    fn title(&self) -> &'static str;
    /// The whole HTTP surface of the dialect, state included.
    fn router(&self) -> axum::Router;
    /// The OpenAPI document, with `servers` pointing at `server_url`.
    fn openapi(&self, server_url: &str) -> utoipa::openapi::OpenApi;
    /// A CONNECT authenticator, when the dialect owns MQTT credentials.
    fn authenticator(&self) -> Option<Arc<dyn ConnectAuthenticator>> {
        None
    }
    /// An observer of broker events, when the dialect keeps state about them.
    fn observer(&self) -> Option<Arc<dyn BrokerObserver>> {
        None
    }
    /// Stops the threads and tasks the dialect started, after the broker has
    /// stopped. The gateway calls it once per instance, on a blocking thread: it
    /// may wait for background work to finish. A dialect should also stop them
    /// when it is dropped.
    fn shutdown(&self) {}
}

/// A dialect that could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("{dialect}: {message}")]
pub struct DialectBuildError {
    pub dialect: &'static str,
    pub message: String,
}
