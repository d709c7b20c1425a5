//! mica-mqtt 2.6.7+'s request handling around the resource routers.
//!
//! axum answers a wrong method with 405, a HEAD with the GET handler and a trailing
//! slash with 404; mica answers all three with 404 `{"code":404}` or reaches the route.
//! So before routing, a method other than GET and POST is 404 and empty path segments
//! are dropped (`//api/v1/stats/` is `/api/v1/stats`); an unknown path or a path with
//! the other method is 404 too; and every answer says `Server: mica-net`.

use axum::extract::Request;
use axum::http::header::SERVER;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use mqgate_kit::http::uri::with_path;
use tower::Layer;

use crate::error::Error;

/// `routes` (the handlers, state applied) behind mica's dispatch.
pub fn router(routes: Router) -> Router {
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(not_found);
    Router::new().fallback_service(axum::middleware::from_fn(mica_request).layer(routes))
}

async fn not_found() -> Error {
    Error::NotFound
}

async fn mica_request(request: Request, next: Next) -> Response {
    let mut response = route(request, next).await;
    response
        .headers_mut()
        .insert(SERVER, HeaderValue::from_static("mica-net"));
    response
}

async fn route(mut request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::POST) {
        return Error::NotFound.into_response();
    }
    let path = normalize_path(request.uri().path());
    match with_path(request.uri(), &path) {
        Some(uri) => *request.uri_mut() = uri,
        None => return Error::Unknown.into_response(),
    }
    next.run(request).await
}

/// The path with empty segments dropped, as mica's router splits it:
/// `//api/v1/stats/` is `/api/v1/stats`.
pub fn normalize_path(path: &str) -> String {
    let mut normalized = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_like_mica() {
        assert_eq!(normalize_path("/api/v1/stats"), "/api/v1/stats");
        assert_eq!(normalize_path("//api//v1/stats/"), "/api/v1/stats");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path(""), "/");
    }
}
