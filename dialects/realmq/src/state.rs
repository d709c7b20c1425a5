//! The state every handler shares.

use std::sync::Arc;

use mqgate_kit::Management;

use crate::auth::Access;
use crate::registry::Registry;

pub struct AppState {
    /// Management users and login tokens.
    pub access: Access,
    pub registry: Arc<Registry>,
    pub management: Arc<dyn Management>,
}
