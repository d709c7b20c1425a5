//! Devices (`/api/v1/devices`): the document's "设备" endpoints, with each device's
//! status from [`crate::status`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use mqgate_kit::clock::now_ms;
use mqgate_kit::http::params::Params;
use mqgate_kit::http::time::format_datetime;
use mqgate_kit::KickOptions;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::{Error, ErrorBody};
use crate::registry::{device_not_found, random_hex, Device, DeviceFields};
use crate::state::AppState;
use crate::status::{self, liveness, DeviceStatus, Liveness};
use crate::wire::{
    bounded, fuzzy_contains, json_object, lenient_bool_schema, page_of, paginate, required, Done,
    LenientBool, Meta,
};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/devices", get(list).post(create))
        .route(
            "/api/v1/devices/:id",
            get(detail).put(update).delete(delete),
        )
}

/// Body of a device registration.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewDevice {
    /// Unique device name.
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, max_length = 1024, pattern = r"\S", example = "test")]
    pub name: Option<String>,
    /// Key of an existing product.
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, max_length = 1024, pattern = r"\S", example = "d9c44706a4")]
    pub product_key: Option<String>,
    /// Unique MQTT username of the device.
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, max_length = 1024, pattern = r"^[^\u0000]*\S[^\u0000]*$", example = "test")]
    pub username: Option<String>,
    /// Unique MQTT client id the device must connect with.
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, max_length = 1024, pattern = r"^[^\u0000]*\S[^\u0000]*$", example = "test")]
    pub mqtt_client_id: Option<String>,
    #[serde(flatten)]
    pub details: DeviceDetails,
}

/// Body of a device update: absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceChange {
    /// Unique device name.
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, max_length = 1024, pattern = r"\S", example = "test1")]
    pub name: Option<String>,
    /// Key of an existing product; absent or blank keeps the current one.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub product_key: Option<String>,
    /// Unique MQTT username; absent or blank keeps the current one.
    #[serde(default)]
    #[schema(max_length = 1024, pattern = r"^[^\u0000]*$")]
    pub username: Option<String>,
    /// Unique MQTT client id; absent or blank keeps the current one.
    #[serde(default)]
    #[schema(max_length = 1024, pattern = r"^[^\u0000]*$")]
    pub mqtt_client_id: Option<String>,
    #[serde(flatten)]
    pub details: DeviceDetails,
}

/// The optional fields of both bodies.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeviceDetails {
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub nickname: Option<String>,
    /// MQTT password; generated (32 hex digits) on registration when absent or
    /// empty, kept on update when absent or empty.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub password: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub device_type: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = enable_schema)]
    pub enable: Option<LenientBool>,
}

fn enable_schema() -> utoipa::openapi::Object {
    lenient_bool_schema(
        "mqgate extension: false (or 0) disables the device, true (or 1) enables it (default on registration: enabled).",
        true,
    )
}

/// `value` when it is not blank, else what `keep` holds, else a missing parameter.
fn pick(value: Option<String>, name: &str, keep: Option<&String>) -> Result<String, Error> {
    match (value, keep) {
        (Some(v), _) if !v.trim().is_empty() => Ok(v),
        (_, Some(k)) => Ok(k.clone()),
        _ => Err(Error::missing_parameter(name)),
    }
}

/// The device's fields after a request. On registration (`current` is `None`)
/// the name, product key, username and client id must be given; on update only
/// the name.
fn device_fields(
    name: Option<String>,
    product_key: Option<String>,
    username: Option<String>,
    mqtt_client_id: Option<String>,
    details: DeviceDetails,
    current: Option<&DeviceFields>,
) -> Result<DeviceFields, Error> {
    let fields = DeviceFields {
        name: required(name, "name")?,
        product_key: pick(product_key, "product_key", current.map(|c| &c.product_key))?,
        username: pick(username, "username", current.map(|c| &c.username))?,
        mqtt_client_id: pick(
            mqtt_client_id,
            "mqtt_client_id",
            current.map(|c| &c.mqtt_client_id),
        )?,
        nickname: details
            .nickname
            .or_else(|| current.map(|c| c.nickname.clone()))
            .unwrap_or_default(),
        password: match (details.password, current) {
            (Some(p), _) if !p.is_empty() => p,
            (_, Some(c)) => c.password.clone(),
            (_, None) => random_hex(32),
        },
        device_type: details
            .device_type
            .or_else(|| current.and_then(|c| c.device_type.clone())),
        description: details
            .description
            .or_else(|| current.and_then(|c| c.description.clone())),
        enabled: details
            .enable
            .map(|LenientBool(b)| b)
            .or(current.map(|c| c.enabled))
            .unwrap_or(true),
    };
    check_lengths(&fields)?;
    Ok(fields)
}

fn check_lengths(fields: &DeviceFields) -> Result<(), Error> {
    for (value, name) in [
        (&fields.name, "name"),
        (&fields.product_key, "product_key"),
        (&fields.username, "username"),
        (&fields.mqtt_client_id, "mqtt_client_id"),
        (&fields.nickname, "nickname"),
        (&fields.password, "password"),
    ] {
        bounded(value, name)?;
    }
    for (value, name) in [
        (&fields.device_type, "device_type"),
        (&fields.description, "description"),
    ] {
        if let Some(v) = value {
            bounded(v, name)?;
        }
    }
    if fields.mqtt_client_id.contains('\0') || fields.username.contains('\0') {
        return Err(Error::invalid_parameter(
            "username and mqtt_client_id must not contain NUL characters",
        ));
    }
    Ok(())
}

/// A device as the list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSummary {
    #[schema(example = "test")]
    pub username: String,
    /// 0 disabled, 1 never connected, 2 offline, 3 online.
    #[schema(example = 1, minimum = 0, maximum = 3)]
    pub status: u8,
    pub stats: bool,
    #[schema(example = "d9c44706a4")]
    pub product_key: String,
    /// Seconds the current (or last) session has lasted; "" if none.
    #[schema(example = "")]
    pub online_at: String,
    /// Seconds since the last disconnect, while offline; "".
    #[schema(example = "")]
    pub offline_at: String,
    #[schema(example = "")]
    pub nickname: String,
    #[schema(example = "test")]
    pub name: String,
    #[schema(example = "test")]
    pub mqtt_client_id: String,
    pub log_trace: bool,
    /// Address of the current or last connection; null if it never connected.
    #[schema(example = json!(null))]
    pub ip: Option<String>,
    #[schema(example = 1, minimum = 1)]
    pub id: i64,
    pub enable: bool,
    #[schema(example = "test")]
    pub display_username: String,
    /// `YYYY-MM-DD HH:MM:SS` of the last disconnect while offline; "".
    #[schema(example = "")]
    pub disconnected_at: String,
    #[schema(example = json!(null))]
    pub description: Option<String>,
    #[schema(example = "2025-08-05 04:07:14")]
    pub create_at: String,
    /// `YYYY-MM-DD HH:MM:SS` of the current or last connect; "" if never.
    #[schema(example = "")]
    pub connected_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub meta: Meta,
    pub data: Vec<DeviceSummary>,
    #[schema(example = 0)]
    pub code: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Shadow {
    #[schema(example = 0)]
    pub status: u8,
}

/// A device as its detail shows it: the list's fields with its password and its
/// product's type, in the order of the document's example.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDetail {
    #[schema(example = "test")]
    pub username: String,
    pub tags: Vec<String>,
    /// 0 disabled, 1 never connected, 2 offline, 3 online.
    #[schema(example = 1, minimum = 0, maximum = 3)]
    pub status: u8,
    pub stats: bool,
    pub shadow: Shadow,
    /// 1 direct device, 2 gateway.
    #[schema(example = 1, minimum = 1, maximum = 2)]
    pub product_type: i64,
    #[schema(example = "d9c44706a4")]
    pub product_key: String,
    #[schema(example = "abd04e1adbd1a959c7dd41c3a581eb06")]
    pub password: String,
    #[schema(example = "")]
    pub online_at: String,
    #[schema(example = "")]
    pub offline_at: String,
    #[schema(example = "")]
    pub nickname: String,
    #[schema(example = "test")]
    pub name: String,
    #[schema(example = "test")]
    pub mqtt_client_id: String,
    pub log_trace: bool,
    #[schema(example = json!(null))]
    pub ip: Option<String>,
    #[schema(example = 1, minimum = 1)]
    pub id: i64,
    pub enable: bool,
    #[schema(example = "test")]
    pub display_username: String,
    #[schema(example = "")]
    pub disconnected_at: String,
    #[schema(example = json!(null))]
    pub description: Option<String>,
    #[schema(example = "2025-08-05 04:07:14")]
    pub create_at: String,
    #[schema(example = "")]
    pub connected_at: String,
}

impl DeviceDetail {
    fn new(s: DeviceSummary, product_type: i64, password: String) -> DeviceDetail {
        DeviceDetail {
            username: s.username,
            tags: Vec::new(),
            status: s.status,
            stats: s.stats,
            shadow: Shadow { status: 0 },
            product_type,
            product_key: s.product_key,
            password,
            online_at: s.online_at,
            offline_at: s.offline_at,
            nickname: s.nickname,
            name: s.name,
            mqtt_client_id: s.mqtt_client_id,
            log_trace: s.log_trace,
            ip: s.ip,
            id: s.id,
            enable: s.enable,
            display_username: s.display_username,
            disconnected_at: s.disconnected_at,
            description: s.description,
            create_at: s.create_at,
            connected_at: s.connected_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDetailResponse {
    /// Always one element.
    pub data: Vec<DeviceDetail>,
    #[schema(example = 0)]
    pub code: u32,
}

fn summary(device: &Device, live: Liveness) -> DeviceSummary {
    let f = &device.fields;
    DeviceSummary {
        display_username: f.username.clone(),
        username: f.username.clone(),
        status: live.status as u8,
        stats: false,
        product_key: f.product_key.clone(),
        online_at: live.online_at,
        offline_at: live.offline_at,
        nickname: f.nickname.clone(),
        name: f.name.clone(),
        mqtt_client_id: f.mqtt_client_id.clone(),
        log_trace: false,
        ip: live.ip,
        id: device.id,
        enable: f.enabled,
        disconnected_at: live.disconnected_at,
        description: f.description.clone(),
        create_at: format_datetime(device.created_at_ms),
        connected_at: live.connected_at,
    }
}

fn device_id(raw: &str) -> Result<i64, Error> {
    raw.parse()
        .map_err(|_| Error::not_found(format!("device {raw:?} not found")))
}

/// Ends the live session of a device whose credentials no longer admit it.
async fn kick(state: &AppState, client_id: &str, discard_session: bool) {
    if let Err(e) = state
        .management
        .kick(client_id, KickOptions { discard_session })
        .await
    {
        tracing::warn!(client_id, error = %e, "realmq: could not disconnect a device");
    }
}

/// Register a device
///
/// `password` is generated when absent. The device may connect over MQTT with its
/// `username`, `password` and `mqtt_client_id` at once.
#[utoipa::path(
    post,
    path = "/api/v1/devices",
    operation_id = "create_device",
    tag = "devices",
    request_body(content = NewDevice, example = json!({"name": "test", "product_key": "d9c44706a4", "username": "test", "mqtt_client_id": "test"})),
    responses(
        (status = 200, description = "Created", body = Done),
        (status = 400, description = "Missing or invalid parameter, unknown product_key, name, username or client id taken (113)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn create(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Done>, Error> {
    let r = json_object::<NewDevice>(&body)?;
    let fields = device_fields(
        r.name,
        r.product_key,
        r.username,
        r.mqtt_client_id,
        r.details,
        None,
    )?;
    state.registry.create_device(fields).await?;
    Ok(Json(Done::OK))
}

/// List devices
///
/// Filtered by product, a fragment of the name, or status; in id order.
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    operation_id = "list_devices",
    tag = "devices",
    params(
        ("_page" = Option<i64>, Query, minimum = 1, example = 1, description = "Page number, from 1 (default 1)"),
        ("_limit" = Option<i64>, Query, minimum = 1, example = 10, description = "Page size (default 10)"),
        ("product_key" = Option<String>, Query, description = "Only the devices of this product"),
        ("device_name" = Option<String>, Query, description = "Part of the device name, any case"),
        ("status" = Option<String>, Query, description = "0 disabled, 1 never connected, 2 offline, 3 online (empty: any)",
            pattern = r"^(?:\s*[0-3]\s*)?$"),
    ),
    responses(
        (status = 200, description = "One page of devices, in id order", body = DeviceList),
        (status = 400, description = "Invalid status", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn list(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeviceList>, Error> {
    let params = Params::from_query(query.as_deref());
    let page = page_of(&params);
    let product_key = params.get("product_key");
    let name = params.get("device_name");
    let wanted = match params.get("status") {
        None => None,
        Some(raw) => Some(DeviceStatus::parse(raw).ok_or_else(|| {
            Error::invalid_parameter(format!("invalid status {raw:?}: must be 0, 1, 2 or 3"))
        })?),
    };
    let wanted_device = |d: &Device| {
        product_key.is_none_or(|k| d.fields.product_key == k)
            && name.is_none_or(|n| fuzzy_contains(&d.fields.name, n))
    };
    let management = state.management.as_ref();
    state.registry.synced().await?;
    let (rows, meta) = match wanted {
        None => {
            let (devices, meta) = state.registry.read(|c| {
                let matching: Vec<&Arc<Device>> =
                    c.devices().filter(|d| wanted_device(d)).collect();
                let (devices, meta) = paginate(matching, page);
                (devices.into_iter().cloned().collect::<Vec<_>>(), meta)
            });
            let sessions = status::sessions(devices.iter().map(|d| d.as_ref()), management).await;
            (devices.into_iter().zip(sessions).collect(), meta)
        }
        // The status depends on the live broker: every candidate is looked up,
        // all of them at once, outside the registry's lock.
        Some(wanted) => {
            let candidates: Vec<Arc<Device>> = state
                .registry
                .read(|c| c.devices().filter(|d| wanted_device(d)).cloned().collect());
            let sessions =
                status::sessions(candidates.iter().map(|d| d.as_ref()), management).await;
            let matching: Vec<_> = candidates
                .into_iter()
                .zip(sessions)
                .filter(|(d, session)| status::status(d, session.as_ref()) == wanted)
                .collect();
            paginate(matching, page)
        }
    };
    let now = now_ms();
    let data = rows
        .iter()
        .map(|(d, session)| summary(d, liveness(d, session.as_ref(), now)))
        .collect();
    Ok(Json(DeviceList {
        meta,
        data,
        code: 0,
    }))
}

/// Get a device
///
/// With its password and its product's type.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}",
    operation_id = "get_device",
    tag = "devices",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Device id")),
    responses(
        (status = 200, description = "The device, as a one-element array", body = DeviceDetailResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
    )
)]
pub async fn detail(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<DeviceDetailResponse>, Error> {
    let id = device_id(&id)?;
    state.registry.synced().await?;
    let (device, product_type) = state.registry.read(|c| {
        let device = c.device(id).cloned();
        let product_type = device
            .as_ref()
            .and_then(|d| c.product_by_key(&d.fields.product_key))
            .map_or(1, |p| p.kind);
        (device, product_type)
    });
    let device = device.ok_or_else(|| device_not_found(id))?;
    let session = state
        .management
        .get_client(&device.fields.mqtt_client_id)
        .await;
    let live = liveness(&device, session.as_ref(), now_ms());
    Ok(Json(DeviceDetailResponse {
        data: vec![DeviceDetail::new(
            summary(&device, live),
            product_type,
            device.fields.password.clone(),
        )],
        code: 0,
    }))
}

/// Update a device
///
/// Only `name` is required; absent fields keep their value. Disabling the device,
/// or changing its password, username or client id, disconnects its live session.
#[utoipa::path(
    put,
    path = "/api/v1/devices/{id}",
    operation_id = "update_device",
    tag = "devices",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Device id")),
    request_body(content = DeviceChange, example = json!({"name": "test1"})),
    responses(
        (status = 200, description = "Updated", body = Done),
        (status = 400, description = "Missing or invalid parameter, unknown product_key, value taken (113)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
    )
)]
pub async fn update(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Done>, Error> {
    let id = device_id(&id)?;
    let r = json_object::<DeviceChange>(&body)?;
    let (before, after) = state
        .registry
        .update_device(id, |current| {
            device_fields(
                r.name,
                r.product_key,
                r.username,
                r.mqtt_client_id,
                r.details,
                Some(current),
            )
        })
        .await?;
    let (b, a) = (&before.fields, &after.fields);
    let locked_out = (b.enabled && !a.enabled)
        || b.password != a.password
        || b.username != a.username
        || b.mqtt_client_id != a.mqtt_client_id;
    if locked_out {
        kick(&state, &b.mqtt_client_id, false).await;
    }
    Ok(Json(Done::OK))
}

/// Delete a device
///
/// Its live session is disconnected and discarded.
#[utoipa::path(
    delete,
    path = "/api/v1/devices/{id}",
    operation_id = "delete_device",
    tag = "cleanup",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Device id")),
    responses(
        (status = 200, description = "Deleted", body = Done),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
    )
)]
pub async fn delete(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Done>, Error> {
    let id = device_id(&id)?;
    let device = state.registry.delete_device(id).await?;
    kick(&state, &device.fields.mqtt_client_id, true).await;
    Ok(Json(Done::OK))
}
