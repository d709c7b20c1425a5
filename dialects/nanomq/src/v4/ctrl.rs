//! `POST /ctrl/{stop|restart}`: a graceful stop or restart of the whole gateway, a
//! moment after the reply is written.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use mqgate_kit::ControlAction;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::Error;
use crate::reply::{CodeReply, Reply};
use crate::state::App;
use crate::v4::request::RawSegment;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default().routes(routes!(ctrl_broker))
}

/// What to do with the broker.
// Documentation only: the path segment is read as NanoMQ reads it.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[allow(non_camel_case_types, dead_code)]
pub enum Action {
    stop,
    restart,
}

/// Stop or restart the broker
///
/// A graceful stop or restart of the whole gateway, a moment after the reply.
#[utoipa::path(
    post,
    path = "/api/v4/ctrl/{action}",
    tag = "v4 ctrl",
    params(("action" = inline(Action), Path, description = "Any case", example = "restart")),
    responses(
        (status = 200, description = "Stopping or restarting", body = CodeReply, example = json!({"code": 0})),
        (status = 404, description = "Another action", body = CodeReply, example = json!({"code": 101})),
        (status = 500, description = "The broker refused", body = CodeReply, example = json!({"code": 101}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn ctrl_broker(
    _: Authorized,
    State(app): State<Arc<App>>,
    RawSegment(action): RawSegment,
) -> Result<Reply, Error> {
    let action = match action.to_ascii_lowercase().as_str() {
        "stop" => ControlAction::Stop,
        "restart" => ControlAction::Restart,
        _ => return Err(Error::new(StatusCode::NOT_FOUND, 101).labelled_json()),
    };
    app.management.control(action).map_err(|e| {
        tracing::warn!(error = %e, "nanomq: ctrl refused");
        Error::new(StatusCode::INTERNAL_SERVER_ERROR, 101).labelled_json()
    })?;
    Ok(Reply::code(0))
}
