//! The listener's one handler. NanoMQ's HTTP server dispatches on path prefixes of the
//! raw URI: `/api/v4` (REST), `/api/v1` (the old RPC), and everything else to a static
//! directory handler; the API handlers then route on raw path segments themselves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mqgate_kit::http::body::closing_connection;
use mqgate_kit::Management;
use parking_lot::Mutex;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Auth;
use crate::reply::html_error;
use crate::{v1, v4, Config};

/// NanoMQ 0.25's default `http_server.max_body`.
const V4_MAX_BODY: usize = 1024 * 1024;
/// NanoMQ 0.8.0's body limit for `/api/v1`.
const V1_MAX_BODY: usize = 128 * 1024;

/// The dialect's state, shared by every request.
pub struct Nanomq {
    pub management: Arc<dyn Management>,
    pub config: Config,
    pub auth: Auth,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Process-lifetime maxima the broker's stats do not keep.
    pub maxima: Mutex<Maxima>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Maxima {
    pub subscribers: u64,
    pub cpu_percent: f64,
}

impl Nanomq {
    pub fn new(config: Config, ctx: mqgate_kit::DialectContext, auth: Auth) -> Nanomq {
        Nanomq {
            management: ctx.management,
            config,
            auth,
            data_dir: ctx.data_dir,
            listen: ctx.listen,
            maxima: Mutex::new(Maxima::default()),
        }
    }
}

/// One request as the API handlers see it: the raw path and query, headers, and the
/// whole body.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiRequest {
    pub fn content_type(&self) -> Option<&HeaderValue> {
        self.headers.get(CONTENT_TYPE)
    }

    /// The method as NanoMQ compares it: case-insensitively.
    pub fn method_upper(&self) -> String {
        self.method.as_str().to_ascii_uppercase()
    }
}

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

pub fn router(api: Arc<Nanomq>, cors: Option<CorsLayer>) -> axum::Router {
    let router = axum::Router::new().fallback(serve).with_state(api);
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

async fn serve(State(api): State<Arc<Nanomq>>, request: Request) -> Response {
    let mount = mount_of(request.uri().path());
    if mount == Mount::Static {
        return serve_static(&api, request).await;
    }
    let (parts, body) = request.into_parts();
    let limit = if mount == Mount::V4 {
        V4_MAX_BODY
    } else {
        V1_MAX_BODY
    };
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return closing_connection(html_error(StatusCode::BAD_REQUEST));
    };
    let request = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    let reply = match mount {
        Mount::V4 => v4::handle(&api, &request).await,
        _ => v1::handle(&api, &request).await,
    };
    reply.into_response()
}

/// NanoMQ's directory handler: GET only, no auth; nng's HTML pages otherwise.
async fn serve_static(api: &Nanomq, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return html_error(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(dir) = &api.config.static_dir else {
        return html_error(StatusCode::NOT_FOUND);
    };
    match tower_http::services::ServeDir::new(dir)
        .oneshot(request)
        .await
    {
        Ok(response) if response.status().is_success() || response.status().is_redirection() => {
            response.into_response()
        }
        Ok(response) if response.status() == StatusCode::NOT_MODIFIED => response.into_response(),
        _ => html_error(StatusCode::NOT_FOUND),
    }
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
