//! `/bridges`: answered as NanoMQ answers with no bridge configured. mqgate has no
//! bridges, so every named bridge is unknown.

use std::sync::Arc;

use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::Error;
use crate::reply::{CodeReply, Reply};
use crate::state::App;
use crate::v4::request::json_object;

/// `{"data":{"bridge_switch":bool}}` (documentation only: bodies are read field by
/// field, as NanoMQ reads them).
#[derive(Debug, Deserialize, ToSchema)]
pub struct BridgeSwitchBody {
    pub data: BridgeSwitch,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BridgeSwitch {
    pub bridge_switch: bool,
}

/// `{"data":{"subscription":[{"topic","qos"}...]}}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BridgeSubscribeBody {
    pub data: BridgeSubscriptions,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BridgeSubscriptions {
    pub subscription: Vec<BridgeTopic>,
}

/// `{"data":{"unsubscription":[{"topic"}...]}}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BridgeUnsubscribeBody {
    pub data: BridgeUnsubscriptions,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BridgeUnsubscriptions {
    pub unsubscription: Vec<BridgeTopic>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BridgeTopic {
    #[schema(example = "cmd/topic1")]
    pub topic: String,
    #[schema(minimum = 0, maximum = 2, example = 1)]
    pub qos: Option<u8>,
}

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(list_mqtt_bridges))
        .routes(routes!(get_mqtt_bridge, put_mqtt_bridge))
        .routes(routes!(put_mqtt_bridge_switch))
        .routes(routes!(bridge_subscribe))
        .routes(routes!(bridge_unsubscribe))
}

/// List bridges
///
/// mqgate has no bridges: the empty list NanoMQ answers without any.
#[utoipa::path(
    get,
    path = "/api/v4/bridges",
    tag = "v4 bridges",
    responses((status = 200, description = "No bridges", body = Object, example = json!({"code": 0, "data": {"bridge": {"nodes": []}}}))),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_mqtt_bridges(_: Authorized) -> Reply {
    no_bridges()
}

/// Get a bridge
///
/// mqgate has no bridges; an unknown name gets the empty list, as in NanoMQ.
#[utoipa::path(
    get,
    path = "/api/v4/bridges/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path, example = "emqx")),
    responses((status = 200, description = "No bridges", body = Object, example = json!({"code": 0, "data": {"bridge": {"nodes": []}}}))),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn get_mqtt_bridge(_: Authorized) -> Reply {
    no_bridges()
}

fn no_bridges() -> Reply {
    Reply::json_text(r#"{"code":0,"data":{"bridge":{"nodes":[]}}}"#.to_string())
}

/// Edit a bridge
///
/// NanoMQ 0.25.3 answers 404 `{"code":115}` whether or not the body names the bridge.
#[utoipa::path(
    put,
    path = "/api/v4/bridges/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path, example = "emqx")),
    request_body(content = Object, example = json!({"data": {"enable": true, "server": "mqtt-tcp://127.0.0.1:1883", "proto_ver": 4}})),
    responses(
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109})),
        (status = 404, description = "No such bridge", body = CodeReply, example = json!({"code": 115}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn put_mqtt_bridge(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    json_object(&body)?;
    Err(Error::new(StatusCode::NOT_FOUND, 115))
}

/// Switch a bridge on or off
///
/// mqgate has no bridges: 204. (NanoMQ adds a `{"code":108}` body to its 204, which
/// breaks HTTP framing on a kept-alive connection; mqgate sends none.)
#[utoipa::path(
    post,
    path = "/api/v4/bridges/switch/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path, example = "emqx")),
    request_body(content = BridgeSwitchBody, example = json!({"data": {"bridge_switch": true}})),
    responses(
        (status = 204, description = "No such bridge"),
        (status = 400, description = "`{\"code\":109}` not a JSON object; `{\"code\":108}` no `bridge_switch` boolean", body = CodeReply, example = json!({"code": 108}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn put_mqtt_bridge_switch(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    let body = json_object(&body)?;
    let switch = body
        .get("data")
        .and_then(|d| d.get("bridge_switch"))
        .and_then(Value::as_bool);
    if switch.is_none() {
        return Err(Error::bad_param());
    }
    Ok(Reply::no_content())
}

fn data_array(body: &[u8], key: &str) -> Result<(), Error> {
    let body = json_object(body)?;
    match body.get("data").and_then(|d| d.get(key)) {
        Some(Value::Array(_)) => Err(Error::new(StatusCode::NOT_FOUND, 108)),
        _ => Err(Error::not_json()),
    }
}

/// Subscribe a bridge to remote topics
///
/// mqgate has no bridges: 404 `{"code":108}`.
#[utoipa::path(
    post,
    path = "/api/v4/bridges/sub/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path, example = "emqx")),
    request_body(content = BridgeSubscribeBody, example = json!({"data": {"subscription": [{"topic": "cmd/topic1", "qos": 1}]}})),
    responses(
        (status = 400, description = "Not the expected JSON", body = CodeReply, example = json!({"code": 109})),
        (status = 404, description = "No such bridge", body = CodeReply, example = json!({"code": 108}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn bridge_subscribe(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    data_array(&body, "subscription").map(|()| Reply::code(0))
}

/// Unsubscribe a bridge from remote topics
///
/// mqgate has no bridges: 404 `{"code":108}`.
#[utoipa::path(
    post,
    path = "/api/v4/bridges/unsub/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path, example = "emqx")),
    request_body(content = BridgeUnsubscribeBody, example = json!({"data": {"unsubscription": [{"topic": "cmd/topic1"}]}})),
    responses(
        (status = 400, description = "Not the expected JSON", body = CodeReply, example = json!({"code": 109})),
        (status = 404, description = "No such bridge", body = CodeReply, example = json!({"code": 108}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn bridge_unsubscribe(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    data_array(&body, "unsubscription").map(|()| Reply::code(0))
}
