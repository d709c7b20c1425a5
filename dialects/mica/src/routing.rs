//! mica-mqtt 2.6.7+ request dispatch: path and method first, then Basic auth,
//! then the handler.
//!
//! axum's own router would answer a wrong method with 405, a HEAD with the GET
//! handler and a trailing slash with 404; mica answers all three differently, so
//! every request first goes through [`dispatch`], which normalises the path,
//! looks the (method, path) pair up in [`ROUTES`], checks the credentials, and
//! only then hands the request to the axum router of the handlers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::SERVER;
use axum::http::{HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mqgate_kit::http::basic_auth::{BasicCredentials, BasicOutcome, SchemeCheck};
use tower::ServiceExt;

use crate::error::MicaError;
use crate::{clients, endpoints, publish, stats, subscriptions, Mica};

/// One route of the API: mica accepts exactly one method per path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: RouteMethod,
    pub path: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMethod {
    Get,
    Post,
}

impl RouteMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            RouteMethod::Get => "GET",
            RouteMethod::Post => "POST",
        }
    }

    fn matches(&self, method: &Method) -> bool {
        match self {
            RouteMethod::Get => method == Method::GET,
            RouteMethod::Post => method == Method::POST,
        }
    }
}

const fn route(method: RouteMethod, path: &'static str) -> Route {
    Route { method, path }
}

/// Every route, in the order `GET /api/v1/endpoints` lists them.
pub const ROUTES: [Route; 13] = [
    route(RouteMethod::Get, endpoints::ENDPOINTS),
    route(RouteMethod::Get, stats::STATS),
    route(RouteMethod::Get, stats::STATS_SSE),
    route(RouteMethod::Post, publish::PUBLISH),
    route(RouteMethod::Post, publish::PUBLISH_BATCH),
    route(RouteMethod::Post, subscriptions::SUBSCRIBE),
    route(RouteMethod::Post, subscriptions::SUBSCRIBE_BATCH),
    route(RouteMethod::Post, subscriptions::UNSUBSCRIBE),
    route(RouteMethod::Post, subscriptions::UNSUBSCRIBE_BATCH),
    route(RouteMethod::Get, clients::CLIENT_INFO),
    route(RouteMethod::Get, clients::CLIENTS),
    route(RouteMethod::Post, clients::CLIENT_DELETE),
    route(RouteMethod::Get, subscriptions::CLIENT_SUBSCRIPTIONS),
];

/// The dialect's whole HTTP surface.
pub fn router(mica: Mica, credentials: BasicCredentials) -> Router {
    let handlers = Router::new()
        .route(endpoints::ENDPOINTS, get(endpoints::list_endpoints))
        .route(stats::STATS, get(stats::get_stats))
        .route(stats::STATS_SSE, get(stats::stream_stats))
        .route(publish::PUBLISH, post(publish::publish))
        .route(publish::PUBLISH_BATCH, post(publish::publish_batch))
        .route(subscriptions::SUBSCRIBE, post(subscriptions::subscribe))
        .route(
            subscriptions::SUBSCRIBE_BATCH,
            post(subscriptions::subscribe_batch),
        )
        .route(subscriptions::UNSUBSCRIBE, post(subscriptions::unsubscribe))
        .route(
            subscriptions::UNSUBSCRIBE_BATCH,
            post(subscriptions::unsubscribe_batch),
        )
        .route(clients::CLIENT_INFO, get(clients::client_info))
        .route(clients::CLIENTS, get(clients::list_clients))
        .route(clients::CLIENT_DELETE, post(clients::kick_client))
        .route(
            subscriptions::CLIENT_SUBSCRIPTIONS,
            get(subscriptions::client_subscriptions),
        )
        .with_state(mica);
    Router::new()
        .fallback(dispatch)
        .with_state(Arc::new(Dispatcher {
            handlers,
            credentials,
        }))
}

struct Dispatcher {
    handlers: Router,
    credentials: BasicCredentials,
}

async fn dispatch(State(dispatcher): State<Arc<Dispatcher>>, mut request: Request) -> Response {
    let path = normalize_path(request.uri().path());
    let known = ROUTES
        .iter()
        .any(|r| r.path == path && r.method.matches(request.method()));
    let mut response = if !known {
        MicaError::NotFound.into_response()
    } else if dispatcher
        .credentials
        .check(request.headers(), SchemeCheck::Ignored)
        != BasicOutcome::Authorized
    {
        MicaError::Unauthorized.into_response()
    } else {
        match with_path(request.uri(), &path) {
            Some(uri) => {
                *request.uri_mut() = uri;
                match dispatcher.handlers.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(infallible) => match infallible {},
                }
            }
            None => MicaError::Unknown.into_response(),
        }
    };
    response
        .headers_mut()
        .insert(SERVER, HeaderValue::from_static("mica-net"));
    response
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

fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    Uri::builder().path_and_query(path_and_query).build().ok()
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

    #[test]
    fn one_method_per_path() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(a.path.starts_with("/api/v1/"));
            assert!(ROUTES[i + 1..].iter().all(|b| b.path != a.path));
        }
    }
}
