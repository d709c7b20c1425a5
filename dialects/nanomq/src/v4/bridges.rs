//! `/bridges`: answered as NanoMQ answers with no bridge configured. mqgate has no
//! bridges, so every named bridge is unknown.

use std::sync::Arc;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::Error;
use crate::reply::Reply;
use crate::state::App;
use crate::v4::request::json_object;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(list_mqtt_bridges))
        .routes(routes!(get_mqtt_bridge, put_mqtt_bridge))
        .routes(routes!(put_mqtt_bridge_switch))
        .routes(routes!(bridge_subscribe))
        .routes(routes!(bridge_unsubscribe))
}

#[utoipa::path(
    get,
    path = "/api/v4/bridges",
    tag = "v4 bridges",
    responses((status = 200, description = "`{\"code\":0,\"data\":{\"bridge\":{\"nodes\":[]}}}`")),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_mqtt_bridges(_: Authorized) -> Reply {
    no_bridges()
}

/// An unknown name gets the same empty list, as in NanoMQ.
#[utoipa::path(
    get,
    path = "/api/v4/bridges/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path)),
    responses((status = 200, description = "`{\"code\":0,\"data\":{\"bridge\":{\"nodes\":[]}}}`")),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn get_mqtt_bridge(_: Authorized) -> Reply {
    no_bridges()
}

fn no_bridges() -> Reply {
    Reply::json_text(r#"{"code":0,"data":{"bridge":{"nodes":[]}}}"#.to_string())
}

/// NanoMQ 0.25.3: 404 `{"code":115}` whether or not the body names the bridge.
#[utoipa::path(
    put,
    path = "/api/v4/bridges/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path)),
    request_body(content = Object),
    responses(
        (status = 400, description = "`{\"code\":109}`: not a JSON object"),
        (status = 404, description = "`{\"code\":115}`: no such bridge")
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn put_mqtt_bridge(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    json_object(&body)?;
    Err(Error::new(StatusCode::NOT_FOUND, 115))
}

/// NanoMQ answers an unknown bridge with 204 and a `{"code":108}` body, which breaks
/// HTTP framing on a kept-alive connection; mqgate sends the 204 without a body.
#[utoipa::path(
    post,
    path = "/api/v4/bridges/switch/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path)),
    request_body(content = Object, description = "`{\"data\":{\"bridge_switch\":bool}}`"),
    responses(
        (status = 204, description = "No such bridge"),
        (status = 400, description = "`{\"code\":109}` not a JSON object; `{\"code\":108}` no `bridge_switch` boolean")
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

#[utoipa::path(
    post,
    path = "/api/v4/bridges/sub/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path)),
    request_body(content = Object, description = "`{\"data\":{\"subscription\":[...]}}`"),
    responses(
        (status = 400, description = "`{\"code\":109}`: not the expected JSON"),
        (status = 404, description = "`{\"code\":108}`: no such bridge")
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn bridge_subscribe(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    data_array(&body, "subscription").map(|()| Reply::code(0))
}

#[utoipa::path(
    post,
    path = "/api/v4/bridges/unsub/{name}",
    tag = "v4 bridges",
    params(("name" = String, Path)),
    request_body(content = Object, description = "`{\"data\":{\"unsubscription\":[...]}}`"),
    responses(
        (status = 400, description = "`{\"code\":109}`: not the expected JSON"),
        (status = 404, description = "`{\"code\":108}`: no such bridge")
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn bridge_unsubscribe(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    data_array(&body, "unsubscription").map(|()| Reply::code(0))
}
