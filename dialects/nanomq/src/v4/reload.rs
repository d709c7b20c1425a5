//! `GET /reload` and `POST /reload`: the hot-updatable settings. mqgate applies
//! `msq_len`, `allow_anonymous`, `max_packet_size`, `client_max_packet_size` (KiB, as
//! NanoMQ counts them) and `keepalive_backoff`; `property_size` and `qos_duration` are
//! not mqgate settings, so changing them is reported in `not_applied`.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::cjson::CNumber;
use crate::reply::{ApiError, Reply};
use crate::server::{ApiRequest, Nanomq};
use crate::settings::{self, Setter};
use crate::v4::json_object;

#[derive(Debug, Serialize, ToSchema)]
pub struct HotConfig {
    pub property_size: u32,
    /// KiB.
    pub max_packet_size: u32,
    /// KiB.
    pub client_max_packet_size: u32,
    /// Largest number of queued messages per client.
    pub msq_len: u32,
    pub qos_duration: u32,
    pub keepalive_backoff: CNumber,
    pub allow_anonymous: bool,
    pub enable_mqtt_stream: bool,
    pub bridge_mode: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HotConfigReply {
    pub code: u16,
    pub data: HotConfig,
}

/// The reply to a configuration write: `{"code":0}`, plus the key paths that were
/// written but could not be applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteReply {
    pub code: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_applied: Vec<String>,
}

pub fn hot_config(api: &Nanomq) -> HotConfig {
    let hot = api.management.config().hot;
    HotConfig {
        property_size: settings::PROPERTY_SIZE,
        max_packet_size: settings::kib(hot.max_packet_size),
        client_max_packet_size: settings::kib(hot.client_max_packet_size),
        msq_len: hot.max_queued_messages,
        qos_duration: settings::QOS_DURATION,
        keepalive_backoff: CNumber(f64::from(hot.keepalive_backoff)),
        allow_anonymous: hot.allow_anonymous,
        enable_mqtt_stream: false,
        bridge_mode: false,
    }
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

/// Applies a plan and answers NanoMQ's success, listing what was not applied.
pub fn apply(api: &Nanomq, origin: &str, plan: settings::WritePlan) -> Reply {
    let not_applied = settings::apply(api.management.as_ref(), origin, plan);
    Reply::json(&WriteReply {
        code: 0,
        not_applied,
    })
}

#[utoipa::path(
    get,
    path = "/api/v4/reload",
    tag = "v4 reload",
    responses((status = 200, description = "The hot-updatable settings", body = HotConfigReply)),
    security(("basic" = []), ("bearer" = []))
)]
pub fn get_hot_updatable_configuration(api: &Nanomq) -> Reply {
    Reply::json(&HotConfigReply {
        code: 0,
        data: hot_config(api),
    })
}

#[utoipa::path(
    post,
    path = "/api/v4/reload",
    tag = "v4 reload",
    request_body(content = Object, description = "`{\"data\":{...}}` with any keys of GET /reload's data"),
    responses(
        (status = 200, description = "`{\"code\":0}`; `not_applied` lists written values mqgate cannot apply", body = WriteReply),
        (status = 400, description = "`{\"code\":109}`: not a JSON object")
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub fn set_hot_updatable_configuration(
    api: &Nanomq,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let body = json_object(request)?;
    let Some(written) = body.get("data").filter(|d| d.is_object()) else {
        return Ok(Reply::code(0));
    };
    let current = serde_json::to_value(hot_config(api)).unwrap_or(Value::Null);
    Ok(apply(
        api,
        "v4 /reload",
        settings::plan_write(&current, written, HOT_SETTERS),
    ))
}
