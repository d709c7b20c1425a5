//! `GET /reload` and `POST /reload`: the hot-updatable settings. mqgate applies
//! `msq_len`, `allow_anonymous`, `max_packet_size`, `client_max_packet_size` (KiB, as
//! NanoMQ counts them) and `keepalive_backoff`; `property_size` and `qos_duration` are
//! not mqgate settings, so changing them is reported in `not_applied`.

use std::sync::Arc;

use axum::extract::State;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::Error;
use crate::reply::{CodeReply, Reply};
use crate::settings::{self, HotConfig, Setter, WriteReply};
use crate::state::App;
use crate::v4::request::json_object;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default().routes(routes!(
        get_hot_updatable_configuration,
        set_hot_updatable_configuration
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HotConfigReply {
    pub code: u16,
    pub data: HotConfig,
}

/// What mqgate applies from `/reload` and `/configuration`'s `basic` section.
pub const HOT_SETTERS: &[(&str, Setter)] = &[
    ("msq_len", settings::set_queue_len),
    ("allow_anonymous", settings::set_allow_anonymous),
    ("max_packet_size", settings::set_max_packet_kib),
    (
        "client_max_packet_size",
        settings::set_client_max_packet_kib,
    ),
    ("keepalive_backoff", settings::set_keepalive_backoff),
];

/// Get the hot-updatable settings
///
/// The settings `POST /reload` changes.
#[utoipa::path(
    get,
    path = "/api/v4/reload",
    tag = "v4 reload",
    responses((status = 200, description = "The hot-updatable settings", body = HotConfigReply)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn get_hot_updatable_configuration(_: Authorized, State(app): State<Arc<App>>) -> Reply {
    Reply::json(&HotConfigReply {
        code: 0,
        data: settings::hot_config(app.management.as_ref()),
    })
}

/// Change hot-updatable settings
///
/// Applies `msq_len`, `allow_anonymous`, `max_packet_size`, `client_max_packet_size`
/// (KiB) and `keepalive_backoff` now; other changed values are listed in `not_applied`.
#[utoipa::path(
    post,
    path = "/api/v4/reload",
    tag = "v4 reload",
    request_body(content = Object, description = "`{\"data\":{...}}` with any keys of GET /reload's data", example = json!({"data": {"allow_anonymous": true, "keepalive_backoff": 1.5}})),
    responses(
        (status = 200, description = "`{\"code\":0}`; `not_applied` lists written values mqgate cannot apply", body = WriteReply),
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn set_hot_updatable_configuration(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let body = json_object(&body)?;
    let Some(written) = body.get("data").filter(|d| d.is_object()) else {
        return Ok(Reply::code(0));
    };
    let current =
        serde_json::to_value(settings::hot_config(app.management.as_ref())).unwrap_or(Value::Null);
    Ok(settings::write_reply(
        app.management.as_ref(),
        "v4 /reload",
        settings::plan_write(&current, written, HOT_SETTERS),
    ))
}
