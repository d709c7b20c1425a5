//! What every handler shares.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mqgate_kit::{Management, Store};
use parking_lot::Mutex;

use crate::auth::{Auth, AuthState};
use crate::Config;

/// The dialect's state, shared by every request as `Arc<App>`.
pub struct App {
    pub management: Arc<dyn Management>,
    pub config: Config,
    pub auth: Auth,
    /// mqgate's data directory: where `config_update` keeps NanoMQ's config file.
    pub data_dir: PathBuf,
    /// A store shared with other processes (PostgreSQL): the configuration, password
    /// and ACL files are read and written there instead of on this node's disk.
    pub shared: Option<Arc<Store>>,
    /// The dialect's own listener address, as NanoMQ reports its HTTP server.
    pub listen: SocketAddr,
    /// Process-lifetime maxima the broker's stats do not keep.
    pub maxima: Mutex<Maxima>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Maxima {
    pub subscribers: u64,
    pub cpu_percent: f64,
}

impl AuthState for Arc<App> {
    fn auth(&self) -> &Auth {
        &self.auth
    }
}
