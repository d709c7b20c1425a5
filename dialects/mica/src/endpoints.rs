//! `GET /api/v1/endpoints`: the list of routes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::{json_response, CodeResponse, CODE_OK};
use crate::routes::Routes;
use crate::state::App;

pub fn router() -> Routes {
    Routes::new().route(routes!(list_endpoints))
}

/// One route of the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RouteInfo {
    /// The path, e.g. `/api/v1/stats`.
    pub path: String,
    /// The one method the path accepts: `GET` or `POST`.
    pub method: &'static str,
}

/// `{"data":[RouteInfo…],"code":1}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointsResponse {
    pub data: Vec<RouteInfo>,
    /// 1.
    pub code: i32,
}

/// List the API's routes
///
/// Every route with its one method, in mica 2.6.8.3's fixed order.
#[utoipa::path(
    get,
    path = "/api/v1/endpoints",
    tag = "endpoints",
    operation_id = "listEndpoints",
    responses(
        (status = 200, description = "Every route", body = EndpointsResponse, content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
    )
)]
pub async fn list_endpoints(_: Authorized, State(app): State<App>) -> Response {
    let data = app
        .routes
        .iter()
        .map(|r| RouteInfo {
            path: r.path.clone(),
            method: r.method,
        })
        .collect();
    json_response(
        StatusCode::OK,
        &EndpointsResponse {
            data,
            code: CODE_OK,
        },
    )
}
