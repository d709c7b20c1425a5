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
use crate::reply::Reply;
use crate::state::App;
use crate::v4::request::RawSegment;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default().routes(routes!(ctrl_broker))
}

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
