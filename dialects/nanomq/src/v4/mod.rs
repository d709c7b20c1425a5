//! The v4 REST API of NanoMQ 0.25.x, routed as NanoMQ routes it: credentials first,
//! then an exact match on the raw (never percent-decoded) path, one trailing slash
//! ignored; GET, POST, PUT and DELETE (in any case) with an unknown path get 404
//! `{"code":102}`, any other method 405 `{"code":102}`.
//!
//! Each resource module owns its routes (`router()`); a route's path and method are
//! written once, in its handler's `#[utoipa::path]` annotation.

pub mod bridges;
pub mod brokers;
pub mod clients;
pub mod configuration;
pub mod ctrl;
pub mod endpoints;
pub mod files;
pub mod metrics;
pub mod mqtt;
pub mod reload;
pub mod request;
pub mod rules;
pub mod subscriptions;
pub mod topic_tree;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use mqgate_kit::http::uri::with_path;
use tower::Layer;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Authorized;
use crate::error::Error;
use crate::state::App;

/// Every v4 route with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .merge(endpoints::router())
        .merge(brokers::router())
        .merge(clients::router())
        .merge(subscriptions::router())
        .merge(topic_tree::router())
        .merge(metrics::router())
        .merge(reload::router())
        .merge(configuration::router())
        .merge(files::router())
        .merge(ctrl::router())
        .merge(mqtt::router())
        .merge(bridges::router())
        .merge(rules::router())
}

/// The v4 API behind NanoMQ's request-line rules.
pub fn router(app: Arc<App>) -> Router {
    let (routes, _) = routes().split_for_parts();
    let routes = routes
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .with_state(app.clone());
    let request_line = axum::middleware::from_fn_with_state(app, nanomq_request_line);
    Router::new().fallback_service(request_line.layer(routes))
}

/// A known method on a path that has no route for it.
async fn no_route(_: Authorized) -> Error {
    Error::no_route()
}

/// Before routing: the method compared case-insensitively (any method but the four
/// is 405 once the caller is authenticated; HEAD never reaches a GET handler), and one
/// trailing slash dropped.
async fn nanomq_request_line(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(method) = routed_method(request.method()) else {
        let (mut parts, _) = request.into_parts();
        return match Authorized::from_request_parts(&mut parts, &app).await {
            Ok(Authorized) => Error::bad_method().into_response(),
            Err(unauthorized) => unauthorized.into_response(),
        };
    };
    *request.method_mut() = method;
    if let Some(uri) = without_trailing_slash(request.uri()) {
        *request.uri_mut() = uri;
    }
    next.run(request).await
}

fn routed_method(method: &Method) -> Option<Method> {
    [Method::GET, Method::POST, Method::PUT, Method::DELETE]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(method.as_str()))
}

/// The URI with one trailing slash dropped, when there is one to drop. `/api/v4/`
/// is the endpoint list, but with a query (`/api/v4/?x=y`) NanoMQ reads it as one
/// empty segment, which matches nothing.
fn without_trailing_slash(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let trimmed = path.strip_suffix('/')?;
    if path == "/api/v4/" && uri.query().is_some() {
        return None;
    }
    with_path(uri, trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trimmed(uri: &str) -> String {
        let uri: Uri = uri.parse().unwrap();
        without_trailing_slash(&uri).map_or(uri.to_string(), |u| u.to_string())
    }

    #[test]
    fn request_lines_like_nanomq() {
        assert_eq!(trimmed("/api/v4"), "/api/v4");
        assert_eq!(trimmed("/api/v4/"), "/api/v4");
        assert_eq!(trimmed("/api/v4/?name=x"), "/api/v4/?name=x");
        assert_eq!(trimmed("/api/v4/nodes/"), "/api/v4/nodes");
        assert_eq!(trimmed("/api/v4/nodes//"), "/api/v4/nodes/");
        assert_eq!(
            trimmed("/api/v4/clients/?clientid=a"),
            "/api/v4/clients?clientid=a"
        );
        assert_eq!(
            routed_method(&Method::from_bytes(b"get").unwrap()),
            Some(Method::GET)
        );
        assert_eq!(routed_method(&Method::HEAD), None);
        assert_eq!(routed_method(&Method::PATCH), None);
    }
}
