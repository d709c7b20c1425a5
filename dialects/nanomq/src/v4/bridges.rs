//! `/bridges`: answered as NanoMQ answers with no bridge configured. mqgate has no
//! bridges, so every named bridge is unknown.

use axum::http::StatusCode;
use serde_json::Value;

use crate::reply::{ApiError, Reply};
use crate::server::ApiRequest;
use crate::v4::json_object;

#[utoipa::path(
    get,
    path = "/api/v4/bridges",
    tag = "v4 bridges",
    responses((status = 200, description = "`{\"code\":0,\"data\":{\"bridge\":{\"nodes\":[]}}}`")),
    security(("basic" = []), ("bearer" = []))
)]
pub fn list_mqtt_bridges() -> Reply {
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
pub fn get_mqtt_bridge(_name: &str) -> Reply {
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
pub fn put_mqtt_bridge(request: &ApiRequest, _name: &str) -> Result<Reply, ApiError> {
    json_object(request)?;
    Err(ApiError::new(StatusCode::NOT_FOUND, 115))
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
pub fn put_mqtt_bridge_switch(request: &ApiRequest, _name: &str) -> Result<Reply, ApiError> {
    let body = json_object(request)?;
    let switch = body
        .get("data")
        .and_then(|d| d.get("bridge_switch"))
        .and_then(Value::as_bool);
    if switch.is_none() {
        return Err(ApiError::bad_param());
    }
    Ok(Reply::no_content())
}

fn data_array(request: &ApiRequest, key: &str) -> Result<(), ApiError> {
    let body = json_object(request)?;
    match body.get("data").and_then(|d| d.get(key)) {
        Some(Value::Array(_)) => Err(ApiError::new(StatusCode::NOT_FOUND, 108)),
        _ => Err(ApiError::not_json()),
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
pub fn bridge_subscribe(request: &ApiRequest, _name: &str) -> Result<Reply, ApiError> {
    data_array(request, "subscription").map(|()| Reply::code(0))
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
pub fn bridge_unsubscribe(request: &ApiRequest, _name: &str) -> Result<Reply, ApiError> {
    data_array(request, "unsubscription").map(|()| Reply::code(0))
}
