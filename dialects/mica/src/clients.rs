//! Connected clients: one page of them (`GET /api/v1/clients`), one of them
//! (`GET /api/v1/clients/info`), the kick (`POST /api/v1/clients/delete`), and the
//! subscriptions a client's session holds (`GET /api/v1/client/subscriptions`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use mqgate_kit::http::paging::page_request;
use mqgate_kit::{
    ClientFilter, ClientInfo as BrokerClient, KickOptions, MgmtError, PageRequest,
    SubscriptionFilter, SubscriptionInfo, Transport,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::{json_response, ok_without_data, CodeResponse, Error, CODE_OK};
use crate::form::{self, FormParams};
use crate::routes::Routes;
use crate::state::App;

pub fn router() -> Routes {
    Routes::new()
        .route(routes!(client_info))
        .route(routes!(list_clients))
        .route(routes!(kick_client))
        .route(routes!(client_subscriptions))
}

/// `_limit` when absent or not a number.
const DEFAULT_LIMIT: usize = 10000;
/// `_limit` when zero or negative (mica-net since Dec 2025).
const LIMIT_IF_NOT_POSITIVE: usize = 20;

/// mica's `ClientInfo`: one connected client.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    pub client_id: String,
    /// Left out when the client connected without a username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The keep-alive the client asked for in CONNECT, seconds.
    pub keep_alive: u64,
    pub connected: bool,
    /// `MQTT` (3.1.1, 5) or `MQIsdp` (3.1).
    pub proto_name: String,
    /// 3, 4 or 5.
    pub proto_ver: u8,
    /// `MQTT 3.1`, `MQTT 3.1.1` or `MQTT 5.0`.
    pub proto_full_name: String,
    pub web_socket: bool,
    pub ssl: bool,
    pub ip_address: String,
    pub port: u16,
    /// Epoch ms of the TCP accept (mica sets both times there).
    pub connected_at: i64,
    /// Epoch ms of the TCP accept.
    pub created_at: i64,
    /// Always 0: mqgate has no decode queue.
    pub decode_queue_size: u64,
    /// Always 0: mqgate has no handler queue.
    pub handler_queue_size: u64,
    /// Outgoing messages waiting to be written to the client.
    pub send_queue_size: u64,
}

impl ClientInfo {
    pub fn from_broker(client: &BrokerClient) -> ClientInfo {
        let proto_full_name = match client.proto_ver {
            3 => "MQTT 3.1",
            5 => "MQTT 5.0",
            _ => "MQTT 3.1.1",
        };
        ClientInfo {
            client_id: client.client_id.clone(),
            username: client.username.clone().filter(|u| !u.trim().is_empty()),
            keep_alive: u64::from(client.keepalive),
            connected: client.connected,
            proto_name: client.proto_name.clone(),
            proto_ver: client.proto_ver,
            proto_full_name: proto_full_name.to_string(),
            web_socket: client.transport == Transport::WebSocket,
            ssl: false,
            ip_address: client.peer.ip().to_string(),
            port: client.peer.port(),
            connected_at: client.created_at_ms,
            created_at: client.created_at_ms,
            decode_queue_size: 0,
            handler_queue_size: 0,
            send_queue_size: client.send_queue_len as u64,
        }
    }
}

/// mica-net's `Page`, with the properties Jackson derives from its getters.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientPage {
    pub list: Vec<ClientInfo>,
    /// The page asked for (1 when `_page` was below 1).
    pub page_number: u64,
    /// `min(_limit, totalRow)`, not the limit asked for.
    pub page_size: u64,
    /// Connected clients in all.
    pub total_row: u64,
    /// `ceil(totalRow / pageSize)`; 0 when there are no clients.
    pub total_page: u64,
    pub first_page: bool,
    pub last_page: bool,
}

impl ClientPage {
    fn new(list: Vec<ClientInfo>, page_number: usize, limit: usize, total: usize) -> ClientPage {
        let page_size = limit.min(total) as u64;
        let total_row = total as u64;
        let total_page = if page_size == 0 {
            0
        } else {
            total_row.div_ceil(page_size)
        };
        let page_number = page_number as u64;
        ClientPage {
            list,
            page_number,
            page_size,
            total_row,
            total_page,
            first_page: page_number <= 1,
            last_page: page_number >= total_page,
        }
    }
}

/// `{"data":ClientPage,"code":1}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientPageResponse {
    pub data: ClientPage,
    /// 1.
    pub code: i32,
}

/// `{"data":ClientInfo,"code":1}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientInfoResponse {
    pub data: ClientInfo,
    /// 1.
    pub code: i32,
}

/// List connected clients
///
/// One page of the connected clients, in no particular order.
#[utoipa::path(
    get,
    path = "/api/v1/clients",
    tag = "clients",
    operation_id = "listClients",
    params(
        ("_page" = Option<i32>, Query, description = "1-based page (default 1; below 1 means 1). Query string or urlencoded body.", minimum = 1, example = 1),
        ("_limit" = Option<i32>, Query, description = "Page size (default 10000; below 1 means 20). Query string or urlencoded body.", minimum = 1, example = 20),
    ),
    responses(
        (status = 200, description = "One page", body = ClientPageResponse, content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
    )
)]
pub async fn list_clients(
    _: Authorized,
    State(app): State<App>,
    FormParams(params): FormParams,
) -> Response {
    let request = page_request(
        form::int_param(&params, "_page"),
        form::int_param(&params, "_limit"),
        DEFAULT_LIMIT,
        LIMIT_IF_NOT_POSITIVE,
    );
    let filter = ClientFilter {
        connected: Some(true),
        ..ClientFilter::default()
    };
    let page = app.management.list_clients(&filter, request).await;
    let list = page.items.iter().map(ClientInfo::from_broker).collect();
    let data = ClientPage::new(list, request.page, request.limit, page.total);
    json_response(
        StatusCode::OK,
        &ClientPageResponse {
            data,
            code: CODE_OK,
        },
    )
}

/// Get a connected client
///
/// The client must be connected now (connect one with any MQTT client first).
#[utoipa::path(
    get,
    path = "/api/v1/clients/info",
    tag = "clients",
    operation_id = "clientInfo",
    params(
        ("clientId" = String, Query, description = "Client id (query string or urlencoded body)", pattern = "[^\\s]", example = "example"),
    ),
    responses(
        (status = 200, description = "The client", body = ClientInfoResponse, content_type = "application/json"),
        (status = 400, description = "`{\"code\":101}` no clientId, or no connected client with it", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
    )
)]
pub async fn client_info(
    _: Authorized,
    State(app): State<App>,
    FormParams(params): FormParams,
) -> Result<Response, Error> {
    let client_id = form::required(&params, "clientId")?;
    let client = app
        .management
        .get_client(client_id)
        .await
        .filter(|c| c.connected)
        .ok_or(Error::MissingParam)?;
    let data = ClientInfo::from_broker(&client);
    Ok(json_response(
        StatusCode::OK,
        &ClientInfoResponse {
            data,
            code: CODE_OK,
        },
    ))
}

/// Kick a client
///
/// Closes the client's connection (its will is published) and discards its session.
/// `{"code":1}` whether or not such a client exists.
#[utoipa::path(
    post,
    path = "/api/v1/clients/delete",
    tag = "clients",
    operation_id = "kickClient",
    params(
        ("clientId" = String, Query, description = "Client id (query string or urlencoded body)", pattern = "[^\\s]", example = "example"),
    ),
    responses(
        (status = 200, description = "Kicked, or nothing to kick: `{\"code\":1}`", body = CodeResponse, content_type = "application/json", example = json!({"code": 1})),
        (status = 400, description = "`{\"code\":101}` no clientId", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
        (status = 500, description = "`{\"code\":105}` the broker failed (shutting down, no answer)", body = CodeResponse, content_type = "application/json", example = json!({"code": 105})),
    )
)]
pub async fn kick_client(
    _: Authorized,
    State(app): State<App>,
    FormParams(params): FormParams,
) -> Result<Response, Error> {
    let client_id = form::required(&params, "clientId")?;
    let options = KickOptions {
        discard_session: true,
    };
    match app.management.kick(client_id, options).await {
        Ok(_) | Err(MgmtError::ClientNotFound) => Ok(ok_without_data()),
        Err(e) => Err(e.into()),
    }
}

/// mica's `Subscribe`: one subscription of a client.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscribe {
    /// The filter, `$share/<group>/` prefix included.
    pub topic_filter: String,
    pub client_id: String,
    #[serde(rename = "mqttQoS")]
    pub mqtt_qos: u8,
    pub no_local: bool,
}

/// `{"data":[Subscribe…],"code":1}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionsResponse {
    pub data: Vec<Subscribe>,
    /// 1.
    pub code: i32,
}

/// List a client's subscriptions
///
/// The subscriptions the client's session holds, connected or not, including those
/// made on its behalf; `[]` for an unknown client.
#[utoipa::path(
    get,
    path = "/api/v1/client/subscriptions",
    tag = "subscriptions",
    operation_id = "clientSubscriptions",
    params(
        ("clientId" = String, Query, description = "Client id (query string or urlencoded body)", pattern = "[^\\s]", example = "example"),
    ),
    responses(
        (status = 200, description = "The subscriptions", body = SubscriptionsResponse, content_type = "application/json"),
        (status = 400, description = "`{\"code\":101}` no clientId", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
    )
)]
pub async fn client_subscriptions(
    _: Authorized,
    State(app): State<App>,
    FormParams(params): FormParams,
) -> Result<Response, Error> {
    let client_id = form::required(&params, "clientId")?;
    let page = app
        .management
        .list_subscriptions(
            &SubscriptionFilter {
                client_id: Some(client_id.to_string()),
                ..SubscriptionFilter::default()
            },
            PageRequest::ALL,
        )
        .await;
    let data = page.items.iter().map(Subscribe::from_info).collect();
    Ok(json_response(
        StatusCode::OK,
        &SubscriptionsResponse {
            data,
            code: CODE_OK,
        },
    ))
}

impl Subscribe {
    fn from_info(info: &SubscriptionInfo) -> Subscribe {
        Subscribe {
            topic_filter: info.topic_filter.clone(),
            client_id: info.client_id.clone(),
            mqtt_qos: info.qos,
            no_local: info.no_local,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(page: usize, limit: usize, total: usize) -> serde_json::Value {
        serde_json::to_value(ClientPage::new(Vec::new(), page, limit, total)).unwrap()
    }

    #[test]
    fn page_properties_as_jackson_derives_them() {
        assert_eq!(
            page(1, 10000, 0),
            serde_json::json!({"list":[],"pageNumber":1,"pageSize":0,"totalRow":0,
                "totalPage":0,"firstPage":true,"lastPage":true})
        );
        assert_eq!(
            page(1, 20, 3),
            serde_json::json!({"list":[],"pageNumber":1,"pageSize":3,"totalRow":3,
                "totalPage":1,"firstPage":true,"lastPage":true})
        );
        assert_eq!(
            page(2, 2, 3),
            serde_json::json!({"list":[],"pageNumber":2,"pageSize":2,"totalRow":3,
                "totalPage":2,"firstPage":false,"lastPage":true})
        );
        assert_eq!(
            page(1, 2, 5),
            serde_json::json!({"list":[],"pageNumber":1,"pageSize":2,"totalRow":5,
                "totalPage":3,"firstPage":true,"lastPage":false})
        );
        assert_eq!(page(7, 2, 5)["lastPage"], true);
    }

    #[test]
    fn subscribe_json_names() {
        let s = Subscribe::from_info(&SubscriptionInfo {
            client_id: "123".into(),
            topic_filter: "#".into(),
            qos: 1,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        });
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r##"{"topicFilter":"#","clientId":"123","mqttQoS":1,"noLocal":false}"##
        );
    }
}
