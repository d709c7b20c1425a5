//! The docs listener: Swagger UI with one entry per enabled dialect, each
//! document's `servers` pointing at that dialect's listener.

use axum::response::Redirect;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::{SwaggerUi, Url};

pub fn router(documents: Vec<(&'static str, &'static str, OpenApi)>) -> axum::Router {
    let urls: Vec<(Url<'static>, OpenApi)> = documents
        .into_iter()
        .map(|(name, title, doc)| {
            // Swagger UI's URL list wants 'static strings; a handful per start.
            let url: &'static str = Box::leak(format!("/api-docs/{name}.json").into_boxed_str());
            (Url::new(title, url), doc)
        })
        .collect();
    axum::Router::new()
        .route("/", get(|| async { Redirect::temporary("/swagger-ui/") }))
        .merge(SwaggerUi::new("/swagger-ui").urls(urls))
}
