//! `GET /clients`, `/clients/{clientid}`, `/clients/username/{username}`, with the query
//! filters of NanoMQ 0.24.14+ (an unknown key or a bad value is 400 `{"code":108}`).
//!
//! NanoMQ reads the query its own way, kept here: only a query of 3 characters or
//! more is read, pairs without `=`, key or value are skipped, values are not
//! percent-decoded.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use mqgate_kit::{ClientFilter, ClientInfo, PageRequest};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::Error;
use crate::reply::{CodeReply, Reply};
use crate::state::App;
use crate::v4::request::RawSegment;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(list_clients))
        .routes(routes!(lookup_client))
        .routes(routes!(lookup_client_via_username))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub code: u16,
    pub data: Vec<Client>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Client {
    pub client_id: String,
    /// `""` without a username.
    pub username: String,
    pub keepalive: u16,
    /// `connected` or `disconnected` (an offline persistent session).
    pub conn_state: &'static str,
    pub clean_start: bool,
    pub proto_name: String,
    /// 4 for MQTT 3.1.1, 5 for MQTT 5.
    pub proto_ver: u8,
    /// Only for clients with a will.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub will_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub will_msg: Option<String>,
}

impl From<ClientInfo> for Client {
    fn from(c: ClientInfo) -> Client {
        let (will_topic, will_msg) = match c.will {
            Some(will) => (
                Some(will.topic),
                Some(String::from_utf8_lossy(&will.payload).into_owned()),
            ),
            None => (None, None),
        };
        Client {
            client_id: c.client_id,
            username: c.username.unwrap_or_default(),
            keepalive: c.keepalive,
            conn_state: if c.connected {
                "connected"
            } else {
                "disconnected"
            },
            clean_start: c.clean_start,
            proto_name: c.proto_name,
            proto_ver: c.proto_ver,
            will_topic,
            will_msg,
        }
    }
}

/// A client's connection state.
// Documentation only: the query is read as NanoMQ reads it.
#[derive(Debug, Clone, Copy, ToSchema)]
#[allow(non_camel_case_types, dead_code)]
pub enum ConnState {
    connected,
    disconnected,
}

/// The query's pairs as NanoMQ reads them.
pub fn query_pairs(query: Option<&str>) -> Vec<(&str, &str)> {
    let Some(query) = query.filter(|q| q.len() >= 3) else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|item| item.split_once('='))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect()
}

/// The filters of a query, or 400 `{"code":108}`.
pub fn filter_from_query(query: Option<&str>) -> Result<ClientFilter, Error> {
    let mut filter = ClientFilter::default();
    for (key, value) in query_pairs(query) {
        match key {
            "clientid" | "client_id" => filter.client_id = Some(value.to_string()),
            "username" => filter.username = Some(value.to_string()),
            "conn_state" => {
                filter.connected = Some(match value.to_ascii_lowercase().as_str() {
                    "connected" => true,
                    "disconnected" => false,
                    _ => return Err(Error::bad_param()),
                })
            }
            "clean_start" => {
                filter.clean_start = Some(match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(Error::bad_param()),
                })
            }
            "proto_name" => filter.proto_name = Some(value.to_string()),
            "proto_ver" => {
                filter.proto_ver = Some(match value {
                    "3" => 3,
                    "4" => 4,
                    "5" => 5,
                    _ => return Err(Error::bad_param()),
                })
            }
            _ => return Err(Error::bad_param()),
        }
    }
    Ok(filter)
}

async fn clients_matching(app: &App, filter: &ClientFilter) -> Reply {
    let data = app
        .management
        .list_clients(filter, PageRequest::ALL)
        .await
        .items
        .into_iter()
        .map(Client::from)
        .collect();
    Reply::json(&ClientList { code: 0, data })
}

/// Both constraints must hold; a path value and a query value that differ match
/// nothing.
fn narrow(current: &mut Option<String>, value: &str) -> bool {
    match current {
        Some(existing) if existing != value => false,
        _ => {
            *current = Some(value.to_string());
            true
        }
    }
}

/// List clients
///
/// Every client, connected or an offline persistent session, matching the query filters
/// (no paging).
#[utoipa::path(
    get,
    path = "/api/v4/clients",
    tag = "v4 clients",
    params(
        ("clientid" = Option<String>, Query, description = "Also `client_id`. Values are matched as sent, not percent-decoded; an empty value is no filter"),
        ("username" = Option<String>, Query),
        ("conn_state" = inline(Option<ConnState>), Query, description = "Any case"),
        ("clean_start" = Option<bool>, Query, description = "Any case"),
        ("proto_name" = Option<String>, Query, example = "MQTT"),
        ("proto_ver" = Option<u8>, Query, description = "3 (MQTT 3.1), 4 (3.1.1) or 5", minimum = 3, maximum = 5, example = 5)
    ),
    responses(
        (status = 200, description = "Every matching client (no paging)", body = ClientList),
        (status = 400, description = "An unknown filter or a bad value", body = CodeReply, example = json!({"code": 108}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_clients(
    _: Authorized,
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Reply, Error> {
    let filter = filter_from_query(query.as_deref())?;
    Ok(clients_matching(&app, &filter).await)
}

/// Get a client by id
///
/// The client whose id is the raw path segment (not percent-decoded), or `[]`.
#[utoipa::path(
    get,
    path = "/api/v4/clients/{clientid}",
    tag = "v4 clients",
    params(("clientid" = String, Path, description = "Matched literally: not percent-decoded", example = "example")),
    responses((status = 200, description = "The client, or `[]`", body = ClientList)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn lookup_client(
    _: Authorized,
    State(app): State<Arc<App>>,
    RawSegment(client_id): RawSegment,
    RawQuery(query): RawQuery,
) -> Result<Reply, Error> {
    let mut filter = filter_from_query(query.as_deref())?;
    if !narrow(&mut filter.client_id, &client_id) {
        return Ok(Reply::json(&ClientList {
            code: 0,
            data: vec![],
        }));
    }
    Ok(clients_matching(&app, &filter).await)
}

/// List clients by username
///
/// The clients that connected with this username (raw path segment), or `[]`.
#[utoipa::path(
    get,
    path = "/api/v4/clients/username/{username}",
    tag = "v4 clients",
    params(("username" = String, Path, description = "Matched literally: not percent-decoded", example = "example")),
    responses((status = 200, description = "The clients with that username", body = ClientList)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn lookup_client_via_username(
    _: Authorized,
    State(app): State<Arc<App>>,
    RawSegment(username): RawSegment,
    RawQuery(query): RawQuery,
) -> Result<Reply, Error> {
    let mut filter = filter_from_query(query.as_deref())?;
    if !narrow(&mut filter.username, &username) {
        return Ok(Reply::json(&ClientList {
            code: 0,
            data: vec![],
        }));
    }
    Ok(clients_matching(&app, &filter).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_rules() {
        assert!(filter_from_query(Some("username="))
            .unwrap()
            .username
            .is_none());
        assert!(filter_from_query(Some("x")).is_ok());
        assert!(filter_from_query(Some("foo=bar")).is_err());
        assert!(filter_from_query(Some("conn_state=bogus")).is_err());
        assert!(filter_from_query(Some("proto_ver=6")).is_err());
        let f = filter_from_query(Some("conn_state=CONNECTED&proto_ver=5&clientid=a%20b")).unwrap();
        assert_eq!(f.connected, Some(true));
        assert_eq!(f.proto_ver, Some(5));
        assert_eq!(f.client_id.as_deref(), Some("a%20b"));
    }
}
