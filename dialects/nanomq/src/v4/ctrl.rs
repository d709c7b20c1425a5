//! `POST /ctrl/{stop|restart}`: a graceful stop or restart of the whole gateway, a
//! moment after the reply is written.

use axum::http::StatusCode;
use mqgate_kit::ControlAction;

use crate::reply::{ApiError, Reply};
use crate::server::Nanomq;

#[utoipa::path(
    post,
    path = "/api/v4/ctrl/{action}",
    tag = "v4 ctrl",
    params(("action" = String, Path, description = "stop | restart (any case)")),
    responses(
        (status = 200, description = "`{\"code\":0}`"),
        (status = 404, description = "`{\"code\":101}`: another action"),
        (status = 500, description = "`{\"code\":101}`: the broker refused")
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub fn ctrl_broker(api: &Nanomq, action: &str) -> Result<Reply, ApiError> {
    let action = match action.to_ascii_lowercase().as_str() {
        "stop" => ControlAction::Stop,
        "restart" => ControlAction::Restart,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, 101).labelled_json()),
    };
    api.management.control(action).map_err(|e| {
        tracing::warn!(error = %e, "nanomq: ctrl refused");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 101).labelled_json()
    })?;
    Ok(Reply::code(0))
}
