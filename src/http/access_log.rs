//! One log line per HTTP request: listener, method, path (no query: it may
//! carry credentials), status and latency. Answers with status 500 and above
//! are logged at INFO, so they show at the default level; every other answer,
//! 4xx included (scanners and wrong passwords would flood the log), at DEBUG.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use tower_http::trace::TraceLayer;
use tracing::Span;

/// `router` with a request line per answer, tagged with the listener's name.
pub fn layer(router: axum::Router, listener: &'static str) -> axum::Router {
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(move |request: &Request<Body>| {
                tracing::info_span!(
                    "http",
                    listener = %listener,
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            })
            .on_request(())
            .on_response(answered)
            .on_body_chunk(())
            .on_eos(())
            // 5xx is logged by `answered`; no second line
            .on_failure(()),
    )
}

fn answered(response: &Response<Body>, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::info!(status, latency_ms, "answered");
    } else {
        tracing::debug!(status, latency_ms, "answered");
    }
}
