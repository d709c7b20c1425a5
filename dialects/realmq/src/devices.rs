//! Devices (`/api/v1/devices`): the document's "设备" endpoints, and the status of a
//! device as the live broker and its connection history show it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use mqgate_kit::clock::now_ms;
use mqgate_kit::http::params::Params;
use mqgate_kit::http::time::format_datetime;
use mqgate_kit::{KickOptions, Management};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::registry::{device_not_found, random_hex, Device, DeviceFields};
use crate::wire::{
    bounded, fuzzy_contains, json_object, page_of, paginate, required, Done, LenientBool, Meta,
};
use crate::App;

/// The documented device status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Disabled = 0,
    /// Never connected (未激活).
    NeverConnected = 1,
    Offline = 2,
    Online = 3,
}

impl DeviceStatus {
    fn parse(raw: &str) -> Option<DeviceStatus> {
        match raw.trim() {
            "0" => Some(DeviceStatus::Disabled),
            "1" => Some(DeviceStatus::NeverConnected),
            "2" => Some(DeviceStatus::Offline),
            "3" => Some(DeviceStatus::Online),
            _ => None,
        }
    }
}

/// What the broker says about a device right now, rendered for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    pub status: DeviceStatus,
    pub ip: Option<String>,
    pub connected_at: String,
    pub disconnected_at: String,
    pub online_at: String,
    pub offline_at: String,
}

/// Seconds between two instants, as the duration fields render them.
fn seconds_between(from_ms: i64, to_ms: i64) -> String {
    ((to_ms - from_ms).max(0) / 1000).to_string()
}

/// The live session table decides whether a device is online; its recorded
/// connects and disconnects give the times of the last session otherwise.
pub fn liveness(device: &Device, management: &dyn Management, now: i64) -> Liveness {
    let live = management
        .get_client(&device.fields.mqtt_client_id)
        .filter(|c| c.connected && c.username.as_deref() == Some(device.fields.username.as_str()));
    let p = &device.presence;
    let format = |ms: Option<i64>| ms.map(format_datetime).unwrap_or_default();
    if let Some(client) = live {
        return Liveness {
            status: if device.fields.enabled {
                DeviceStatus::Online
            } else {
                DeviceStatus::Disabled
            },
            ip: Some(client.peer.ip().to_string()),
            connected_at: format_datetime(client.connected_at_ms),
            disconnected_at: String::new(),
            online_at: seconds_between(client.connected_at_ms, now),
            offline_at: String::new(),
        };
    }
    let status = if !device.fields.enabled {
        DeviceStatus::Disabled
    } else if p.connected_at_ms.is_some() {
        DeviceStatus::Offline
    } else {
        DeviceStatus::NeverConnected
    };
    let online_at = match (p.connected_at_ms, p.disconnected_at_ms) {
        (Some(c), Some(d)) => seconds_between(c, d),
        _ => String::new(),
    };
    Liveness {
        status,
        ip: p.ip.clone(),
        connected_at: format(p.connected_at_ms),
        disconnected_at: format(p.disconnected_at_ms),
        online_at,
        offline_at: p
            .disconnected_at_ms
            .map(|d| seconds_between(d, now))
            .unwrap_or_default(),
    }
}

/// Body of create and update.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceRequest {
    /// Unique device name.
    #[serde(default)]
    #[schema(example = "test")]
    pub name: Option<String>,
    /// Key of an existing product.
    #[serde(default)]
    #[schema(example = "0d2bf1f69d")]
    pub product_key: Option<String>,
    /// Unique MQTT username of the device.
    #[serde(default)]
    #[schema(example = "test")]
    pub username: Option<String>,
    /// Unique MQTT client id the device must connect with.
    #[serde(default)]
    #[schema(example = "test")]
    pub mqtt_client_id: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    /// MQTT password; generated (32 hex digits) on create when absent or empty,
    /// kept on update when absent or empty.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub device_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// mqgate extension: `false` (or 0) disables the device, `true` (or 1) enables it.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub enable: Option<LenientBool>,
}

impl DeviceRequest {
    /// The device's fields after this request. On create every required field must
    /// be present; on update only `name` is, the rest keep `current`.
    fn fields(self, current: Option<&DeviceFields>) -> Result<DeviceFields, ApiError> {
        let name = required(self.name, "name")?;
        let pick = |value: Option<String>, name: &str, keep: Option<&String>| match (value, keep) {
            (Some(v), _) if !v.trim().is_empty() => Ok(v),
            (_, Some(k)) => Ok(k.clone()),
            _ => Err(ApiError::missing_parameter(name)),
        };
        let product_key = pick(
            self.product_key,
            "product_key",
            current.map(|c| &c.product_key),
        )?;
        let username = pick(self.username, "username", current.map(|c| &c.username))?;
        let mqtt_client_id = pick(
            self.mqtt_client_id,
            "mqtt_client_id",
            current.map(|c| &c.mqtt_client_id),
        )?;
        let password = match (self.password, current) {
            (Some(p), _) if !p.is_empty() => p,
            (_, Some(c)) => c.password.clone(),
            (_, None) => random_hex(32),
        };
        let fields = DeviceFields {
            name,
            product_key,
            username,
            mqtt_client_id,
            nickname: self
                .nickname
                .or_else(|| current.map(|c| c.nickname.clone()))
                .unwrap_or_default(),
            password,
            device_type: self
                .device_type
                .or_else(|| current.and_then(|c| c.device_type.clone())),
            description: self
                .description
                .or_else(|| current.and_then(|c| c.description.clone())),
            enabled: self
                .enable
                .map(|LenientBool(b)| b)
                .or(current.map(|c| c.enabled))
                .unwrap_or(true),
        };
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
            return Err(ApiError::invalid_parameter(
                "username and mqtt_client_id must not contain NUL characters",
            ));
        }
        Ok(fields)
    }
}

/// A device as the list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSummary {
    pub username: String,
    /// 0 disabled, 1 never connected, 2 offline, 3 online.
    #[schema(example = 1)]
    pub status: u8,
    pub stats: bool,
    pub product_key: String,
    /// Seconds the current (or last) session has lasted; "" if none.
    pub online_at: String,
    /// Seconds since the last disconnect, while offline; "".
    pub offline_at: String,
    pub nickname: String,
    pub name: String,
    pub mqtt_client_id: String,
    pub log_trace: bool,
    /// Address of the current or last connection; null if it never connected.
    pub ip: Option<String>,
    pub id: i64,
    pub enable: bool,
    pub display_username: String,
    /// `YYYY-MM-DD HH:MM:SS` of the last disconnect while offline; "".
    pub disconnected_at: String,
    pub description: Option<String>,
    #[schema(example = "2025-08-05 04:07:14")]
    pub create_at: String,
    /// `YYYY-MM-DD HH:MM:SS` of the current or last connect; "" if never.
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
    pub status: u8,
}

/// A device as its detail shows it: with its password and product type.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDetail {
    pub username: String,
    pub tags: Vec<String>,
    pub status: u8,
    pub stats: bool,
    pub shadow: Shadow,
    pub product_type: i64,
    pub product_key: String,
    #[schema(example = "abd04e1adbd1a959c7dd41c3a581eb06")]
    pub password: String,
    pub online_at: String,
    pub offline_at: String,
    pub nickname: String,
    pub name: String,
    pub mqtt_client_id: String,
    pub log_trace: bool,
    pub ip: Option<String>,
    pub id: i64,
    pub enable: bool,
    pub display_username: String,
    pub disconnected_at: String,
    pub description: Option<String>,
    pub create_at: String,
    pub connected_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDetailResponse {
    /// Always one element.
    pub data: Vec<DeviceDetail>,
    #[schema(example = 0)]
    pub code: u32,
}

fn summary(device: Device, live: Liveness) -> DeviceSummary {
    let f = device.fields;
    DeviceSummary {
        display_username: f.username.clone(),
        username: f.username,
        status: live.status as u8,
        stats: false,
        product_key: f.product_key,
        online_at: live.online_at,
        offline_at: live.offline_at,
        nickname: f.nickname,
        name: f.name,
        mqtt_client_id: f.mqtt_client_id,
        log_trace: false,
        ip: live.ip,
        id: device.id,
        enable: f.enabled,
        disconnected_at: live.disconnected_at,
        description: f.description,
        create_at: format_datetime(device.created_at_ms),
        connected_at: live.connected_at,
    }
}

fn device_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("device {raw:?} not found")))
}

/// Ends the live session of a device whose credentials no longer admit it.
async fn kick(app: &App, client_id: &str, discard_session: bool) {
    if let Err(e) = app
        .management
        .kick(client_id, KickOptions { discard_session })
        .await
    {
        tracing::warn!(client_id, error = %e, "realmq: could not disconnect a device");
    }
}

/// Register a device.
#[utoipa::path(
    post,
    path = "/api/v1/devices",
    operation_id = "create_device",
    tag = "devices",
    request_body = DeviceRequest,
    responses(
        (status = 200, description = "Created", body = Done),
        (status = 400, description = "Missing or invalid parameter, unknown product_key, name, username or client id taken (113)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn create(State(app): State<Arc<App>>, body: Bytes) -> Result<Json<Done>, ApiError> {
    let fields = json_object::<DeviceRequest>(&body)?.fields(None)?;
    app.registry.create_device(fields).await?;
    Ok(Json(Done::OK))
}

/// List devices, filtered by product, a fragment of the name, or status.
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    operation_id = "list_devices",
    tag = "devices",
    params(
        ("_page" = Option<i64>, Query, description = "Page number, from 1 (default 1)"),
        ("_limit" = Option<i64>, Query, description = "Page size (default 10)"),
        ("product_key" = Option<String>, Query, description = "Only the devices of this product"),
        ("device_name" = Option<String>, Query, description = "Part of the device name, any case"),
        ("status" = Option<String>, Query, description = "0 disabled, 1 never connected, 2 offline, 3 online"),
    ),
    responses(
        (status = 200, description = "One page of devices, in id order", body = DeviceList),
        (status = 400, description = "Invalid status", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeviceList>, ApiError> {
    let params = Params::from_query(query.as_deref());
    let page = page_of(&params);
    let product_key = params.get("product_key");
    let name = params.get("device_name");
    let status = match params.get("status") {
        None => None,
        Some(raw) => Some(DeviceStatus::parse(raw).ok_or_else(|| {
            ApiError::invalid_parameter(format!("invalid status {raw:?}: must be 0, 1, 2 or 3"))
        })?),
    };
    let now = now_ms();
    let management = app.management.as_ref();
    let (data, meta) = match status {
        // Status depends on the live broker: every candidate is looked at.
        Some(wanted) => {
            let candidates = app.registry.read(|s| {
                s.devices()
                    .filter(|d| product_key.is_none_or(|k| d.fields.product_key == k))
                    .filter(|d| name.is_none_or(|n| fuzzy_contains(&d.fields.name, n)))
                    .cloned()
                    .collect::<Vec<_>>()
            });
            let matching: Vec<(Device, Liveness)> = candidates
                .into_iter()
                .map(|d| {
                    let live = liveness(&d, management, now);
                    (d, live)
                })
                .filter(|(_, live)| live.status == wanted)
                .collect();
            let (rows, meta) = paginate(matching, page);
            (rows.into_iter().map(|(d, l)| summary(d, l)).collect(), meta)
        }
        None => {
            let (rows, meta) = app.registry.read(|s| {
                let matching: Vec<&Device> = s
                    .devices()
                    .filter(|d| product_key.is_none_or(|k| d.fields.product_key == k))
                    .filter(|d| name.is_none_or(|n| fuzzy_contains(&d.fields.name, n)))
                    .collect();
                let (rows, meta) = paginate(matching, page);
                (rows.into_iter().cloned().collect::<Vec<_>>(), meta)
            });
            let data = rows
                .into_iter()
                .map(|d| {
                    let live = liveness(&d, management, now);
                    summary(d, live)
                })
                .collect();
            (data, meta)
        }
    };
    Ok(Json(DeviceList {
        meta,
        data,
        code: 0,
    }))
}

/// One device, with its password.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}",
    operation_id = "get_device",
    tag = "devices",
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 200, description = "The device, as a one-element array", body = DeviceDetailResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
    )
)]
pub async fn detail(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<DeviceDetailResponse>, ApiError> {
    let id = device_id(&id)?;
    let (device, product_type) = app.registry.read(|s| {
        let device = s.device(id).cloned();
        let product_type = device
            .as_ref()
            .and_then(|d| s.product_by_key(&d.fields.product_key))
            .map_or(1, |p| p.kind);
        (device, product_type)
    });
    let device = device.ok_or_else(|| device_not_found(id))?;
    let live = liveness(&device, app.management.as_ref(), now_ms());
    let password = device.fields.password.clone();
    let s = summary(device, live);
    Ok(Json(DeviceDetailResponse {
        data: vec![DeviceDetail {
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
        }],
        code: 0,
    }))
}

/// Update a device. `name` is required; other absent fields keep their value.
/// Disabling it, or changing its password, username or client id, disconnects
/// its live session.
#[utoipa::path(
    put,
    path = "/api/v1/devices/{id}",
    operation_id = "update_device",
    tag = "devices",
    params(("id" = i64, Path, description = "Device id")),
    request_body = DeviceRequest,
    responses(
        (status = 200, description = "Updated", body = Done),
        (status = 400, description = "Missing or invalid parameter, unknown product_key, value taken (113)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Done>, ApiError> {
    let id = device_id(&id)?;
    let request = json_object::<DeviceRequest>(&body)?;
    let (before, after) = app
        .registry
        .update_device(id, |current| request.fields(Some(current)))
        .await?;
    let (b, a) = (&before.fields, &after.fields);
    let locked_out = (b.enabled && !a.enabled)
        || b.password != a.password
        || b.username != a.username
        || b.mqtt_client_id != a.mqtt_client_id;
    if locked_out {
        kick(&app, &b.mqtt_client_id, false).await;
    }
    Ok(Json(Done::OK))
}

/// Delete a device; its live session is disconnected and discarded.
#[utoipa::path(
    delete,
    path = "/api/v1/devices/{id}",
    operation_id = "delete_device",
    tag = "devices",
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 200, description = "Deleted", body = Done),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
    )
)]
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Done>, ApiError> {
    let id = device_id(&id)?;
    let device = app.registry.delete_device(id).await?;
    kick(&app, &device.fields.mqtt_client_id, true).await;
    Ok(Json(Done::OK))
}
