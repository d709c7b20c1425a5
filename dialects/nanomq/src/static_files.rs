//! Everything outside `/api/v4` and `/api/v1`: NanoMQ's directory handler (its `./dist`,
//! mqgate's `static_dir`): GET only, no auth; nng's HTML pages otherwise.

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use crate::reply::html_error;
use crate::state::App;

pub async fn serve(app: &App, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return html_error(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(dir) = &app.config.static_dir else {
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
