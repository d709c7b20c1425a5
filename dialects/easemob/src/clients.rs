//! Live views of this application's clients: one client's session, and the online
//! clients by topic, by user id, or all of them.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::Router;
use mqgate_kit::http::time::format_datetime;
use mqgate_kit::{ClientFilter, ClientInfo, PageRequest, SubscriptionFilter, Transport};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AppToken;
use crate::client_id::{check_client_id, tenant_mountpoint, ClientIdCheck};
use crate::error::{Error, ErrorBody, ErrorReply, Reply};
use crate::params::{self, from_query, hex_id};
use crate::state::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/openapi/rm/broker/clientInfo", get(client_info))
        .route("/openapi/rm/users/topic", get(clients_by_topic))
        .route("/openapi/rm/users/userid", get(clients_by_user))
        .route("/openapi/rm/users/appid", get(clients_of_app))
}

// ---- broker/clientInfo ----------------------------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfoParams {
    /// `deviceID@AppID` of this application.
    #[param(required = true, value_type = String, max_length = 64, pattern = r"^[!-~]+@mq7g4e$", example = "test1@mq7g4e")]
    pub clientid: Option<String>,
    /// Page of the subscriptions, default 1.
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub current_page: Option<String>,
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, example = 10)]
    pub page_size: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionItem {
    pub topic: String,
    pub qos: u8,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSession {
    /// Always `null`, as the vendor answers.
    #[serde(rename = "clientID")]
    #[schema(value_type = Option<String>)]
    pub client_id: Option<String>,
    /// `online` or `offline`.
    pub status: &'static str,
    /// Latest connect time, epoch ms as a string.
    pub time: String,
    /// The user name the client logged in with.
    pub user: Option<String>,
    pub keepalive: u16,
    pub cleansession: bool,
    /// `true` when the client registered a will, otherwise `null`.
    pub will: Option<bool>,
    /// 4 (MQTT 3.1.1) or 5.
    pub version: u8,
    /// This page of the client's subscriptions.
    pub dataobject: Vec<SubscriptionItem>,
    pub page_size: usize,
    pub current_page: usize,
    /// Number of subscriptions.
    pub total: usize,
}

/// Get a client's session
///
/// Its status, login and subscriptions (paged). The client must be known to the
/// broker: connected, or an offline persistent session.
#[utoipa::path(
    get,
    path = "/openapi/rm/broker/clientInfo",
    tag = "client",
    params(ClientInfoParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "The session", body = Reply<ClientSession>),
        (status = 400, description = "clientid can not be empty, invalid clientid, clientid and appid doesn't match, clientId doesn't exist", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn client_info(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<ClientSession>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: ClientInfoParams = from_query(raw.as_deref());
    let client_id = params::client_id(p.clientid.as_deref(), &state.config.app_id)?;
    let Some(client) = state.management.get_client(&client_id).await else {
        return Err(Error::bad_request("clientId doesn't exist"));
    };
    let page = params::page(p.current_page.as_deref(), p.page_size.as_deref());
    let subscriptions = state
        .management
        .list_subscriptions(
            &SubscriptionFilter {
                client_id: Some(client_id),
                ..SubscriptionFilter::default()
            },
            page,
        )
        .await;
    let mount = tenant_mountpoint(&state.config.app_id);
    Ok(Reply::ok(ClientSession {
        client_id: None,
        status: if client.connected {
            "online"
        } else {
            "offline"
        },
        time: client.connected_at_ms.to_string(),
        user: client.username,
        keepalive: client.keepalive,
        cleansession: client.clean_start,
        will: client.will.map(|_| true),
        version: client.proto_ver,
        dataobject: subscriptions
            .items
            .into_iter()
            .map(|s| SubscriptionItem {
                // what the client subscribed to, without its tenant's prefix
                topic: match s.topic_filter.strip_prefix(mount.as_str()) {
                    Some(own) => own.to_string(),
                    None => s.topic_filter,
                },
                qos: s.qos,
            })
            .collect(),
        page_size: page.limit,
        current_page: page.page,
        total: subscriptions.total,
    }))
}

// ---- users/topic, users/userid, users/appid -------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct OnlineList<T> {
    /// Number of matching online clients (all pages).
    pub total: usize,
    pub data: Vec<T>,
}

impl<T> OnlineList<T> {
    /// The requested page of all matching rows.
    fn page(rows: Vec<T>, current_page: Option<&str>, page_size: Option<&str>) -> Self {
        let page = mqgate_kit::http::paging::slice(rows, params::page(current_page, page_size));
        OnlineList {
            total: page.total,
            data: page.items,
        }
    }
}

fn protocol(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        Transport::WebSocket => "ws",
    }
}

/// This application's connected clients matching `filter`.
async fn online_clients(state: &AppState, mut filter: ClientFilter) -> Vec<ClientInfo> {
    filter.connected = Some(true);
    state
        .management
        .list_clients(&filter, PageRequest::ALL)
        .await
        .items
        .into_iter()
        .filter(|c| check_client_id(&c.client_id, &state.config.app_id) == ClientIdCheck::Ours)
        .collect()
}

/// A comma-separated list, blanks and repeats removed.
fn comma_list(value: Option<&str>) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in value.unwrap_or("").split(',').map(str::trim) {
        if !item.is_empty() && !items.iter().any(|i| i == item) {
            items.push(item.to_string());
        }
    }
    items
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TopicClientsParams {
    /// One topic, or several separated by commas.
    #[param(required = true, value_type = String, pattern = r"[^\s,]", example = "msg")]
    pub topic: Option<String>,
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, example = 10)]
    pub page_size: Option<String>,
    /// Default 1.
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub current_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicClient {
    pub client_id: String,
    pub userid: Option<String>,
    pub keepalive: u16,
    /// `tcp` or `ws`.
    pub protocol: &'static str,
    /// `yyyy-MM-dd HH:mm:ss`.
    pub conntime: String,
    /// The subscribed topic this row is for.
    pub topic: String,
    pub version: u8,
    pub connid: String,
}

/// List online clients by topic
///
/// The application's online clients subscribed to the given topics, one row per
/// client and topic.
#[utoipa::path(
    get,
    path = "/openapi/rm/users/topic",
    tag = "client",
    params(TopicClientsParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "One page of rows", body = Reply<OnlineList<TopicClient>>),
        (status = 400, description = "topic cannot be empty", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn clients_by_topic(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<OnlineList<TopicClient>>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: TopicClientsParams = from_query(raw.as_deref());
    let topics = comma_list(p.topic.as_deref());
    if topics.is_empty() {
        return Err(Error::bad_request("topic cannot be empty"));
    }
    let mount = tenant_mountpoint(&state.config.app_id);
    let mut rows = Vec::new();
    for topic in topics {
        let filter = ClientFilter {
            // the application's clients subscribe inside its tenant
            subscribed_filter: Some(format!("{mount}{topic}")),
            ..ClientFilter::default()
        };
        rows.extend(
            online_clients(&state, filter)
                .await
                .into_iter()
                .map(|c| TopicClient {
                    client_id: c.client_id,
                    userid: c.username,
                    keepalive: c.keepalive,
                    protocol: protocol(c.transport),
                    conntime: format_datetime(c.connected_at_ms),
                    topic: topic.clone(),
                    version: c.proto_ver,
                    connid: hex_id(c.connection_id),
                }),
        );
    }
    Ok(Reply::ok(OnlineList::page(
        rows,
        p.current_page.as_deref(),
        p.page_size.as_deref(),
    )))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UserClientsParams {
    /// One user id (MQTT user name), or several separated by commas.
    #[param(required = true, value_type = String, pattern = r"[^\s,]", example = "test1")]
    pub userid: Option<String>,
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, example = 10)]
    pub page_size: Option<String>,
    /// Default 1.
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub current_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserClient {
    pub client_id: String,
    pub userid: Option<String>,
    pub conntime: String,
    pub keepalive: u16,
    pub version: u8,
    pub protocol: &'static str,
    pub connid: String,
}

/// List online clients by user id
///
/// The application's online clients logged in as the given user ids.
#[utoipa::path(
    get,
    path = "/openapi/rm/users/userid",
    tag = "client",
    params(UserClientsParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "One page of clients", body = Reply<OnlineList<UserClient>>),
        (status = 400, description = "userid cannot be empty", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn clients_by_user(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<OnlineList<UserClient>>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: UserClientsParams = from_query(raw.as_deref());
    let users = comma_list(p.userid.as_deref());
    if users.is_empty() {
        return Err(Error::bad_request("userid cannot be empty"));
    }
    let mut rows = Vec::new();
    for user in users {
        let filter = ClientFilter {
            username: Some(user),
            ..ClientFilter::default()
        };
        rows.extend(
            online_clients(&state, filter)
                .await
                .into_iter()
                .map(|c| UserClient {
                    client_id: c.client_id,
                    userid: c.username,
                    conntime: format_datetime(c.connected_at_ms),
                    keepalive: c.keepalive,
                    version: c.proto_ver,
                    protocol: protocol(c.transport),
                    connid: hex_id(c.connection_id),
                }),
        );
    }
    Ok(Reply::ok(OnlineList::page(
        rows,
        p.current_page.as_deref(),
        p.page_size.as_deref(),
    )))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AppClientsParams {
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, example = 10)]
    pub page_size: Option<String>,
    /// Default 1.
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub current_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppClient {
    pub client_id: String,
    pub userid: Option<String>,
    pub conntime: String,
    pub keepalive: u16,
    pub cleansession: bool,
    pub version: u8,
    pub protocol: &'static str,
    pub connid: String,
}

/// List the application's online clients
#[utoipa::path(
    get,
    path = "/openapi/rm/users/appid",
    tag = "client",
    params(AppClientsParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "One page of clients", body = Reply<OnlineList<AppClient>>),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn clients_of_app(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<OnlineList<AppClient>>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: AppClientsParams = from_query(raw.as_deref());
    let rows: Vec<AppClient> = online_clients(&state, ClientFilter::default())
        .await
        .into_iter()
        .map(|c| AppClient {
            client_id: c.client_id,
            userid: c.username,
            conntime: format_datetime(c.connected_at_ms),
            keepalive: c.keepalive,
            cleansession: c.clean_start,
            version: c.proto_ver,
            protocol: protocol(c.transport),
            connid: hex_id(c.connection_id),
        })
        .collect();
    Ok(Reply::ok(OnlineList::page(
        rows,
        p.current_page.as_deref(),
        p.page_size.as_deref(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_lists() {
        assert_eq!(
            comma_list(Some("a, b,,a")),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(comma_list(Some(" , ")).is_empty());
        assert!(comma_list(None).is_empty());
    }
}
