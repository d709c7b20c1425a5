//! The listener. NanoMQ's HTTP server dispatches on path prefixes of the raw URI:
//! `/api/v4` (the REST API, [`crate::v4`]), `/api/v1` (the old RPC, [`crate::v1`]) and
//! everything else to a static directory handler ([`crate::static_files`]). An API
//! reads the whole body before anything else (over its limit: nng's HTML 400, and the
//! connection is closed, the rest being unread); replies marked so get the request's
//! Content-Type here.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use mqgate_kit::http::body::closing_connection;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::reply::{echo_request_content_type, html_error};
use crate::state::App;
use crate::{static_files, v1, v4};

/// NanoMQ 0.25's default `http_server.max_body`.
const V4_MAX_BODY: usize = 1024 * 1024;
/// NanoMQ 0.8.0's body limit for `/api/v1`.
const V1_MAX_BODY: usize = 128 * 1024;

/// Which of the listener's handlers a raw path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    V4,
    V1,
    Static,
}

/// nng's prefix match: the prefix itself or the prefix followed by `/`.
pub fn mount_of(path: &str) -> Mount {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/api/v4") {
        Mount::V4
    } else if under("/api/v1") {
        Mount::V1
    } else {
        Mount::Static
    }
}

struct Mounts {
    app: Arc<App>,
    v4: Router,
    v1: Router,
}

/// The dialect's whole HTTP surface.
pub fn router(app: Arc<App>, cors: Option<CorsLayer>) -> Router {
    let mounts = Mounts {
        v4: v4::router(app.clone()),
        v1: v1::router(app.clone()),
        app,
    };
    let router = Router::new().fallback(serve).with_state(Arc::new(mounts));
    match cors {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// CORS for browser dashboards on another origin; `None` (NanoMQ's behaviour) when no
/// origin is configured.
pub fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ]);
    let layer = if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let parsed = origins
            .iter()
            .map(|o| HeaderValue::from_str(o).map_err(|_| format!("bad CORS origin {o:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        layer.allow_origin(parsed)
    };
    Ok(Some(layer))
}

async fn serve(State(mounts): State<Arc<Mounts>>, request: Request) -> Response {
    let (api, limit) = match mount_of(request.uri().path()) {
        Mount::Static => return static_files::serve(&mounts.app, request).await,
        Mount::V4 => (&mounts.v4, V4_MAX_BODY),
        Mount::V1 => (&mounts.v1, V1_MAX_BODY),
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return closing_connection(html_error(StatusCode::BAD_REQUEST));
    };
    let request_type = parts.headers.get(CONTENT_TYPE).cloned();
    let request = Request::from_parts(parts, Body::from(body));
    let mut response = match api.clone().oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    echo_request_content_type(&mut response, request_type);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        assert_eq!(mount_of("/api/v4"), Mount::V4);
        assert_eq!(mount_of("/api/v4/nodes"), Mount::V4);
        assert_eq!(mount_of("/api/v4x/nodes"), Mount::Static);
        assert_eq!(mount_of("/api/v1"), Mount::V1);
        assert_eq!(mount_of("/api/v1/anything"), Mount::V1);
        assert_eq!(mount_of("/"), Mount::Static);
    }
}
