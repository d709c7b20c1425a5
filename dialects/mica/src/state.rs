//! What every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use mqgate_kit::http::basic_auth::BasicCredentials;
use mqgate_kit::Management;

/// The dialect's state: the way to the broker, the API's credentials and its route
/// list.
#[derive(Clone)]
pub struct App {
    pub management: Arc<dyn Management>,
    pub credentials: Arc<BasicCredentials>,
    /// Every route, in the order `GET /api/v1/endpoints` lists them.
    pub routes: Arc<[Route]>,
}

/// One route of the API: mica accepts exactly one method per path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    pub path: String,
}

impl FromRef<App> for Arc<BasicCredentials> {
    fn from_ref(app: &App) -> Self {
        app.credentials.clone()
    }
}
