//! `/rules`: answered as a default NanoMQ build (no rule engine) answers, 200
//! `{"code":111}` (plugin closed); writes still need a JSON object body first.

use crate::reply::{ApiError, Reply};
use crate::server::ApiRequest;
use crate::v4::json_object;

/// GET `/rules`, GET and DELETE `/rules/{id}`.
#[utoipa::path(
    get,
    path = "/api/v4/rules",
    tag = "v4 rules",
    responses((status = 200, description = "`{\"code\":111}`: no rule engine")),
    security(("basic" = []), ("bearer" = []))
)]
pub fn no_rule_engine() -> Reply {
    Reply::code(111)
}

/// POST `/rules`, PUT `/rules/{id}`.
#[utoipa::path(
    post,
    path = "/api/v4/rules",
    tag = "v4 rules",
    request_body(content = Object),
    responses(
        (status = 200, description = "`{\"code\":111}`: no rule engine"),
        (status = 400, description = "`{\"code\":109}`: not a JSON object")
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub fn rule_write(request: &ApiRequest) -> Result<Reply, ApiError> {
    json_object(request)?;
    Ok(Reply::code(111))
}
