//! `/rules`: answered as a default NanoMQ build (no rule engine) answers, 200
//! `{"code":111}` (plugin closed); writes still need a JSON object body first.

use crate::reply::{ApiError, Reply};
use crate::server::ApiRequest;
use crate::v4::json_object;

/// The rule engine's absence.
fn plugin_closed() -> Reply {
    Reply::code(111)
}

#[utoipa::path(
    get,
    path = "/api/v4/rules",
    tag = "v4 rules",
    responses((status = 200, description = "`{\"code\":111}`: no rule engine")),
    security(("basic" = []), ("bearer" = []))
)]
pub fn list_rules() -> Reply {
    plugin_closed()
}

#[utoipa::path(
    get,
    path = "/api/v4/rules/{ruleid}",
    tag = "v4 rules",
    params(("ruleid" = String, Path, description = "`rule:N`")),
    responses((status = 200, description = "`{\"code\":111}`: no rule engine")),
    security(("basic" = []), ("bearer" = []))
)]
pub fn get_rule_details(_rule_id: &str) -> Reply {
    plugin_closed()
}

#[utoipa::path(
    post,
    path = "/api/v4/rules",
    tag = "v4 rules",
    request_body(content = Object, description = "`{\"rawsql\":...,\"actions\":[...],\"description\":...}`"),
    responses(
        (status = 200, description = "`{\"code\":111}`: no rule engine"),
        (status = 400, description = "`{\"code\":109}`: not a JSON object")
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub fn create_rule(request: &ApiRequest) -> Result<Reply, ApiError> {
    json_object(request)?;
    Ok(plugin_closed())
}

#[utoipa::path(
    put,
    path = "/api/v4/rules/{ruleid}",
    tag = "v4 rules",
    params(("ruleid" = String, Path, description = "`rule:N`")),
    request_body(content = Object, description = "`{\"rawsql\"?,\"enabled\"?,\"actions\"?}`"),
    responses(
        (status = 200, description = "`{\"code\":111}`: no rule engine"),
        (status = 400, description = "`{\"code\":109}`: not a JSON object")
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub fn update_rule(request: &ApiRequest, _rule_id: &str) -> Result<Reply, ApiError> {
    json_object(request)?;
    Ok(plugin_closed())
}

#[utoipa::path(
    delete,
    path = "/api/v4/rules/{ruleid}",
    tag = "v4 rules",
    params(("ruleid" = String, Path, description = "`rule:N`")),
    responses((status = 200, description = "`{\"code\":111}`: no rule engine")),
    security(("basic" = []), ("bearer" = []))
)]
pub fn delete_rule(_rule_id: &str) -> Reply {
    plugin_closed()
}
