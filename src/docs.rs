//! The docs listener: Swagger UI with one entry per enabled dialect, and each
//! dialect's API mounted under `/try/<name>` on the same listener.
//!
//! The documents served here name `/try/<name>` as their server, a URL relative
//! to the page: "Try it out" then sends same-origin requests to whatever host
//! the browser loaded the UI from (no CORS, no `localhost` that only works on
//! the gateway's own machine), and they reach the very dialect instance that
//! answers on the dialect's own port.

use std::sync::LazyLock;

use axum::extract::{OriginalUri, Request};
use axum::response::Redirect;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::{SwaggerUi, Url};

use crate::dialects::DIALECTS;

/// One dialect on the docs listener.
pub struct DocsEntry {
    pub name: &'static str,
    /// Shown in Swagger UI's document list.
    pub title: &'static str,
    /// The OpenAPI document, its server being [`try_prefix`].
    pub document: OpenApi,
    /// The dialect's own router, served under [`try_prefix`].
    pub api: axum::Router,
}

/// `GET /healthz`: 200 while the broker serves, 503 when it does not (shutting
/// down, or its routing core stuck), for load balancers and orchestrators.
pub fn health_router(management: std::sync::Arc<dyn mqgate_kit::Management>) -> axum::Router {
    axum::Router::new().route(
        "/healthz",
        get(move || async move {
            let stats = management.node_stats();
            let body = axum::Json(serde_json::json!({
                "status": if stats.healthy { "ok" } else { "unavailable" },
                "connections": stats.connections,
                "uptime_ms": stats.uptime_ms,
                "version": stats.version,
            }));
            let status = match stats.healthy {
                true => axum::http::StatusCode::OK,
                false => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, body)
        }),
    )
}

/// Where the docs listener serves a dialect's API.
pub fn try_prefix(name: &str) -> String {
    format!("/try/{name}")
}

pub fn router(entries: Vec<DocsEntry>) -> axum::Router {
    let mut app =
        axum::Router::new().route("/", get(|| async { Redirect::temporary("/swagger-ui/") }));
    let mut urls = Vec::new();
    for entry in entries {
        urls.push((
            Url::new(entry.title, document_path(entry.name)),
            entry.document,
        ));
        app = app.nest_service(&try_prefix(entry.name), as_if_own_listener(entry.api));
    }
    app.merge(SwaggerUi::new("/swagger-ui").urls(urls))
}

/// `nest_service` strips the prefix from the URI but keeps the prefixed one as
/// `OriginalUri`, which dialects read to route (Easemob's `/app/{AppID}`): the
/// dialect gets the stripped URI there too, exactly what its own listener gives.
fn as_if_own_listener(
    api: axum::Router,
) -> tower::util::MapRequest<axum::Router, fn(Request) -> Request> {
    fn own_uri(mut request: Request) -> Request {
        let uri = request.uri().clone();
        request.extensions_mut().insert(OriginalUri(uri));
        request
    }
    tower::util::MapRequest::new(api, own_uri as fn(Request) -> Request)
}

/// `/api-docs/<name>.json`; Swagger UI's list wants `'static` text, made once per dialect.
fn document_path(name: &str) -> &'static str {
    static PATHS: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| {
        DIALECTS
            .iter()
            .map(|d| {
                let path: &'static str = format!("/api-docs/{}.json", d.name).leak();
                (d.name, path)
            })
            .collect()
    });
    PATHS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, path)| *path)
        .expect("a dialect of the table")
}
