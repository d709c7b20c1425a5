//! `/rules`: answered as a default NanoMQ build (no rule engine) answers, 200
//! `{"code":111}` (plugin closed); writes still need a JSON object body first.

use std::sync::Arc;

use bytes::Bytes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::Error;
use crate::reply::{CodeReply, Reply};
use crate::state::App;
use crate::v4::request::json_object;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule_details, update_rule, delete_rule))
}

/// The rule engine's absence.
fn plugin_closed() -> Reply {
    Reply::code(111)
}

/// List rules
///
/// No rule engine, as a default NanoMQ build: 200 `{"code":111}`.
#[utoipa::path(
    get,
    path = "/api/v4/rules",
    tag = "v4 rules",
    responses((status = 200, description = "No rule engine", body = CodeReply, example = json!({"code": 111}))),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_rules(_: Authorized) -> Reply {
    plugin_closed()
}

/// Get a rule
///
/// No rule engine: 200 `{"code":111}`.
#[utoipa::path(
    get,
    path = "/api/v4/rules/{ruleid}",
    tag = "v4 rules",
    params(("ruleid" = String, Path, description = "`rule:N`", example = "rule:1")),
    responses((status = 200, description = "No rule engine", body = CodeReply, example = json!({"code": 111}))),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn get_rule_details(_: Authorized) -> Reply {
    plugin_closed()
}

/// Create a rule
///
/// No rule engine: 200 `{"code":111}` (the body must still be a JSON object).
#[utoipa::path(
    post,
    path = "/api/v4/rules",
    tag = "v4 rules",
    request_body(content = Object, description = "`{\"rawsql\":...,\"actions\":[...],\"description\":...}`", example = json!({"rawsql": "SELECT * FROM \"abc\"", "actions": [{"name": "repub", "params": {"topic": "repub1"}}], "description": "repub rule"})),
    responses(
        (status = 200, description = "No rule engine", body = CodeReply, example = json!({"code": 111})),
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn create_rule(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    json_object(&body)?;
    Ok(plugin_closed())
}

/// Update a rule
///
/// No rule engine: 200 `{"code":111}` (the body must still be a JSON object).
#[utoipa::path(
    put,
    path = "/api/v4/rules/{ruleid}",
    tag = "v4 rules",
    params(("ruleid" = String, Path, description = "`rule:N`", example = "rule:1")),
    request_body(content = Object, description = "`{\"rawsql\"?,\"enabled\"?,\"actions\"?}`", example = json!({"enabled": false})),
    responses(
        (status = 200, description = "No rule engine", body = CodeReply, example = json!({"code": 111})),
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn update_rule(_: Authorized, body: Bytes) -> Result<Reply, Error> {
    json_object(&body)?;
    Ok(plugin_closed())
}

/// Delete a rule
///
/// No rule engine: 200 `{"code":111}`.
#[utoipa::path(
    delete,
    path = "/api/v4/rules/{ruleid}",
    tag = "v4 rules",
    params(("ruleid" = String, Path, description = "`rule:N`", example = "rule:1")),
    responses((status = 200, description = "No rule engine", body = CodeReply, example = json!({"code": 111}))),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn delete_rule(_: Authorized) -> Reply {
    plugin_closed()
}
