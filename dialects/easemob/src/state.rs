//! The state every handler shares.

use std::sync::Arc;

use mqgate_kit::Management;

use crate::token_store::TokenStore;
use crate::Config;

pub struct AppState {
    /// The `[easemob]` section: the application's identity and token rules.
    pub config: Config,
    pub management: Arc<dyn Management>,
    pub tokens: Arc<TokenStore>,
}
