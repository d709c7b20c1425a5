//! Connection and message records, read from the gateway's record keeper
//! ([`mqgate_kit::History`]): a client's connections, a client's uplink and
//! downlink messages, one message's publish and delivery traces, and message
//! contents by id or by topic.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::Router;
use mqgate_kit::history::{
    ConnectionEventKind, ConnectionRecord, Direction, RecordQuery, SortOrder, StoredMessage,
};
use mqgate_kit::http::payload::PayloadEncoding;
use mqgate_kit::http::time::{format_datetime, format_datetime_millis};
use mqgate_kit::{History, Page, PageRequest, Transport};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AppToken;
use crate::error::{Error, ErrorBody, ErrorReply, Reply};
use crate::params::{self, from_query, hex_id, parse_hex_id};
use crate::state::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/openapi/rm/device/record", get(device_records))
        .route("/openapi/rm/message/record", get(message_records))
        .route("/openapi/rm/message/publish", get(publish_records))
        .route("/openapi/rm/message/subscribe", get(delivery_records))
        .route("/openapi/rm/message/message", get(message))
        .route("/openapi/rm/message/messages", get(topic_messages))
}

/// Runs a history query off the async runtime (SQLite reads block).
async fn query<T: Send + 'static>(
    state: &AppState,
    run: impl FnOnce(&dyn History) -> Result<T, mqgate_kit::MgmtError> + Send + 'static,
) -> Result<T, Error> {
    let Some(history) = state.management.history() else {
        tracing::warn!("easemob: the gateway keeps no records");
        return Err(Error::fail());
    };
    tokio::task::spawn_blocking(move || run(history.as_ref()))
        .await
        .map_err(|_| Error::fail())?
        .map_err(Error::from)
}

fn record_query(from_ms: i64, to_ms: i64, page: PageRequest, order: SortOrder) -> RecordQuery {
    RecordQuery {
        client_id: None,
        message_id: None,
        topic: None,
        from_ms,
        to_ms,
        page,
        order,
    }
}

fn empty_page<T>() -> Page<T> {
    Page {
        items: Vec::new(),
        total: 0,
    }
}

/// Easemob's list body with `totalCount`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordList<T> {
    pub data: Vec<T>,
    pub total_count: usize,
}

// ---- device/record ------------------------------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRecordParams {
    /// `deviceID@AppID` of this application.
    #[param(required = true, value_type = String, max_length = 64, pattern = r"^[!-~]+@mq7g4e$", example = "test1@mq7g4e")]
    pub clientid: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, local time.
    #[param(required = true, value_type = String, pattern = r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$", example = "2025-01-01 00:00:00")]
    pub begin_time: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, later than `beginTime`; covers its whole second.
    #[param(required = true, value_type = String, pattern = r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$", example = "2035-12-31 23:59:59")]
    pub end_time: Option<String>,
    /// Default 1.
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub current_page: Option<String>,
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, example = 10)]
    pub page_size: Option<String>,
    /// `ASC` (default) or `DESC`.
    #[param(value_type = Option<String>, pattern = r"^(?:[aA][sS][cC]|[dD][eE][sS][cC])$", example = "ASC")]
    pub order: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceRecord {
    /// Connection id, 16 hex digits.
    pub connid: String,
    /// `yyyy-MM-dd HH:mm:ss.SSS`.
    pub ts: String,
    /// `connect` or `disconnect`.
    pub status: &'static str,
    /// `normal` for a connect; why the connection ended for a disconnect.
    pub reason: String,
    /// The CONNECT's details as a JSON string.
    pub detail: String,
}

/// The keys of `detail`, in the vendor's order.
#[derive(Serialize)]
struct Detail {
    will_properties: serde_json::Map<String, serde_json::Value>,
    will: Option<WillDetail>,
    version: Option<u8>,
    ts: i64,
    properties: serde_json::Map<String, serde_json::Value>,
    network: Option<&'static str>,
    keep_alive: Option<u16>,
    ip: Option<String>,
    clean_start: Option<bool>,
}

#[derive(Serialize)]
struct WillDetail {
    topic: String,
    payload: String,
}

fn device_record(r: ConnectionRecord) -> DeviceRecord {
    let detail = Detail {
        will_properties: Default::default(),
        will: r.will_topic.map(|topic| WillDetail {
            topic,
            payload: String::from_utf8_lossy(r.will_payload.as_deref().unwrap_or_default())
                .into_owned(),
        }),
        version: r.proto_ver,
        ts: r.at_ms,
        properties: Default::default(),
        network: r.transport.map(|t| match t {
            Transport::Tcp => "mod_mqtt",
            Transport::WebSocket => "mod_mqtt_ws",
        }),
        keep_alive: r.keepalive,
        ip: r.peer,
        clean_start: r.clean_start,
    };
    DeviceRecord {
        connid: hex_id(r.connection_id),
        ts: format_datetime_millis(r.at_ms),
        status: match r.kind {
            ConnectionEventKind::Connect => "connect",
            ConnectionEventKind::Disconnect => "disconnect",
        },
        reason: r.reason,
        detail: serde_json::to_string(&detail).unwrap_or_default(),
    }
}

/// The record query of one client's time window, as `device/record` and
/// `message/record` read it.
fn client_record_query(state: &AppState, p: &DeviceRecordParams) -> Result<RecordQuery, Error> {
    let client_id = params::client_id(p.clientid.as_deref(), &state.config.app_id)?;
    let (from_ms, to_ms) = params::window(p.begin_time.as_deref(), p.end_time.as_deref())?;
    let mut q = record_query(
        from_ms,
        to_ms,
        params::page(p.current_page.as_deref(), p.page_size.as_deref()),
        params::order(p.order.as_deref(), SortOrder::Asc),
    );
    q.client_id = Some(client_id);
    Ok(q)
}

/// Get a client's connection records
///
/// Its connects and disconnects within a window.
#[utoipa::path(
    get,
    path = "/openapi/rm/device/record",
    tag = "record",
    params(DeviceRecordParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Found", body = Reply<RecordList<DeviceRecord>>),
        (status = 400, description = "clientid can not be empty, invalid clientid, clientid and appid doesn't match, beginTime and endTime can not be empty, end time must be greater than the start time", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn device_records(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<RecordList<DeviceRecord>>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: DeviceRecordParams = from_query(raw.as_deref());
    let q = client_record_query(&state, &p)?;
    let page = query(&state, move |h| h.connection_records(&q)).await?;
    Ok(Reply::ok(RecordList {
        data: page.items.into_iter().map(device_record).collect(),
        total_count: page.total,
    }))
}

// ---- message/record -----------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientMessageRecord {
    /// `yyyy-MM-dd HH:mm:ss.SSS`.
    pub ts: String,
    /// Message id, 16 hex digits.
    pub mid: String,
    pub cid: String,
    /// `uplink` (client → broker) or `downlink` (broker → client).
    pub direction: &'static str,
}

/// Get a client's message records
///
/// The messages it sent (uplink) and received (downlink) within a window.
#[utoipa::path(
    get,
    path = "/openapi/rm/message/record",
    tag = "record",
    params(DeviceRecordParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Found", body = Reply<RecordList<ClientMessageRecord>>),
        (status = 400, description = "clientid can not be empty, invalid clientid, clientid and appid doesn't match, beginTime and endTime can not be empty, end time must be greater than the start time", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn message_records(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<RecordList<ClientMessageRecord>>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: DeviceRecordParams = from_query(raw.as_deref());
    let q = client_record_query(&state, &p)?;
    let page = query(&state, move |h| h.message_records(&q)).await?;
    Ok(Reply::ok(RecordList {
        data: page
            .items
            .into_iter()
            .map(|m| ClientMessageRecord {
                ts: format_datetime_millis(m.at_ms),
                mid: hex_id(m.message_id),
                cid: m.client_id,
                direction: match m.direction {
                    Direction::Uplink => "uplink",
                    Direction::Downlink => "downlink",
                },
            })
            .collect(),
        total_count: page.total,
    }))
}

// ---- message/publish and message/subscribe ------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct MessageTraceParams {
    /// `deviceID@AppID` of this application (it names the application; it does not
    /// filter).
    #[param(required = true, value_type = String, max_length = 64, pattern = r"^[!-~]+@mq7g4e$", example = "test1@mq7g4e")]
    pub clientid: Option<String>,
    /// The message id, 16 hex digits (one of `mids` of a publish).
    #[param(required = true, value_type = String, min_length = 1)]
    pub messageid: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`; the publish trace takes both times or neither.
    #[param(value_type = Option<String>, pattern = r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$", example = "2025-01-01 00:00:00")]
    pub begin_time: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, later than `beginTime`.
    #[param(value_type = Option<String>, pattern = r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$", example = "2035-12-31 23:59:59")]
    pub end_time: Option<String>,
    /// Default 1.
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub current_page: Option<String>,
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, example = 10)]
    pub page_size: Option<String>,
    /// `ASC` (default) or `DESC`.
    #[param(value_type = Option<String>, pattern = r"^(?:[aA][sS][cC]|[dD][eE][sS][cC])$", example = "ASC")]
    pub order: Option<String>,
}

/// The parameters of `message/subscribe`: those of `message/publish`, with the
/// window required.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryTraceParams {
    /// `deviceID@AppID` of this application (it names the application; it does not
    /// filter).
    #[param(required = true, value_type = String, max_length = 64, pattern = r"^[!-~]+@mq7g4e$", example = "test1@mq7g4e")]
    pub clientid: Option<String>,
    /// The message id, 16 hex digits (one of `mids` of a publish).
    #[param(required = true, value_type = String, min_length = 1)]
    pub messageid: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, local time.
    #[param(required = true, value_type = String, pattern = r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$", example = "2025-01-01 00:00:00")]
    pub begin_time: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, later than `beginTime`.
    #[param(required = true, value_type = String, pattern = r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$", example = "2035-12-31 23:59:59")]
    pub end_time: Option<String>,
    /// Default 1.
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub current_page: Option<String>,
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, example = 10)]
    pub page_size: Option<String>,
    /// `ASC` (default) or `DESC`.
    #[param(value_type = Option<String>, pattern = r"^(?:[aA][sS][cC]|[dD][eE][sS][cC])$", example = "ASC")]
    pub order: Option<String>,
}

impl From<DeliveryTraceParams> for MessageTraceParams {
    fn from(p: DeliveryTraceParams) -> Self {
        MessageTraceParams {
            clientid: p.clientid,
            messageid: p.messageid,
            begin_time: p.begin_time,
            end_time: p.end_time,
            current_page: p.current_page,
            page_size: p.page_size,
            order: p.order,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishRecord {
    /// The sender's connection id; `0000000000000000` for a message sent by REST.
    pub connid: String,
    pub ts: String,
    pub mid: String,
    /// The sender.
    pub cid: String,
    /// Always `normal`.
    pub status: &'static str,
    pub topic: String,
    pub qos: u8,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryRecord {
    pub ts: String,
    /// The receiving client.
    pub cid: String,
    /// Always `normal`.
    pub status: &'static str,
    pub qos: u8,
}

/// The common part of both traces: the checked client id (it selects the
/// application only), the message id, and the window.
fn trace_query(
    state: &AppState,
    p: &MessageTraceParams,
    window_required: bool,
) -> Result<Option<RecordQuery>, Error> {
    params::client_id(p.clientid.as_deref(), &state.config.app_id)?;
    let Some(messageid) = p.messageid.as_deref() else {
        return Err(Error::bad_request("messageid can not be empty"));
    };
    let (from_ms, to_ms) = if window_required || p.begin_time.is_some() || p.end_time.is_some() {
        params::window(p.begin_time.as_deref(), p.end_time.as_deref())?
    } else {
        (i64::MIN, i64::MAX)
    };
    let Some(message_id) = parse_hex_id(messageid) else {
        return Ok(None);
    };
    let mut q = record_query(
        from_ms,
        to_ms,
        params::page(p.current_page.as_deref(), p.page_size.as_deref()),
        params::order(p.order.as_deref(), SortOrder::Asc),
    );
    q.message_id = Some(message_id);
    Ok(Some(q))
}

/// Get a message's publish record
#[utoipa::path(
    get,
    path = "/openapi/rm/message/publish",
    tag = "record",
    params(MessageTraceParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Found", body = Reply<RecordList<PublishRecord>>),
        (status = 400, description = "clientid can not be empty, invalid clientid, clientid and appid doesn't match, messageid can not be empty", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn publish_records(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<RecordList<PublishRecord>>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: MessageTraceParams = from_query(raw.as_deref());
    let page = match trace_query(&state, &p, false)? {
        Some(q) => query(&state, move |h| h.message_trace(&q, Direction::Uplink)).await?,
        None => empty_page(),
    };
    Ok(Reply::ok(RecordList {
        data: page
            .items
            .into_iter()
            .map(|m| PublishRecord {
                connid: hex_id(m.connection_id.unwrap_or(0)),
                ts: format_datetime_millis(m.at_ms),
                mid: hex_id(m.message_id),
                cid: m.client_id,
                status: "normal",
                topic: m.topic,
                qos: m.qos,
            })
            .collect(),
        total_count: page.total,
    }))
}

/// Get a message's delivery records
///
/// One row per client the message was delivered to.
#[utoipa::path(
    get,
    path = "/openapi/rm/message/subscribe",
    tag = "record",
    params(DeliveryTraceParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Found", body = Reply<RecordList<DeliveryRecord>>),
        (status = 400, description = "clientid can not be empty, invalid clientid, clientid and appid doesn't match, messageid can not be empty, beginTime and endTime can not be empty, end time must be greater than the start time", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn delivery_records(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<RecordList<DeliveryRecord>>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: MessageTraceParams = from_query::<DeliveryTraceParams>(raw.as_deref()).into();
    let page = match trace_query(&state, &p, true)? {
        Some(q) => query(&state, move |h| h.message_trace(&q, Direction::Downlink)).await?,
        None => empty_page(),
    };
    Ok(Reply::ok(RecordList {
        data: page
            .items
            .into_iter()
            .map(|m| DeliveryRecord {
                ts: format_datetime_millis(m.at_ms),
                cid: m.client_id,
                status: "normal",
                qos: m.qos,
            })
            .collect(),
        total_count: page.total,
    }))
}

// ---- message/message and message/messages -------------------------------------

/// How message contents are written: `base64` (default) or `utf-8`.
fn content_encoding(encode: Option<&str>) -> Result<PayloadEncoding, Error> {
    match encode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("base64") => Ok(PayloadEncoding::Base64),
        Some("utf-8") => Ok(PayloadEncoding::Plain),
        Some(_) => Err(Error::bad_request("encode can only be utf-8 or base64")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageContent {
    pub message_id: String,
    /// The sender; `null` for a message with none.
    pub client_id: Option<String>,
    /// The sender's connection id; `0000000000000000` for a message sent by REST.
    pub connection_id: String,
    pub qos: u8,
    pub topic: String,
    /// `yyyy-MM-dd HH:mm:ss`.
    pub publish_time_text: String,
    /// The payload, written as `encode` asks.
    pub message: String,
}

fn message_content(m: StoredMessage, encoding: PayloadEncoding) -> MessageContent {
    MessageContent {
        message_id: hex_id(m.message_id),
        client_id: m.client_id,
        connection_id: hex_id(m.connection_id.unwrap_or(0)),
        qos: m.qos,
        topic: m.topic,
        publish_time_text: format_datetime(m.at_ms),
        message: encoding.encode(&m.payload),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct MessageParams {
    /// The message id, 16 hex digits (one of `mids` of a publish).
    #[param(required = true, value_type = String, pattern = r"^[0-9A-Fa-f]{1,16}$")]
    pub message_id: Option<String>,
    /// `base64` (default) or `utf-8`.
    #[param(value_type = Option<String>, pattern = r"^(?:[bB][aA][sS][eE]64|[uU][tT][fF]-8)$", example = "utf-8")]
    pub encode: Option<String>,
}

/// Get a message
///
/// Its content, topic, sender and time.
#[utoipa::path(
    get,
    path = "/openapi/rm/message/message",
    tag = "record",
    params(MessageParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Found", body = Reply<MessageContent>),
        (status = 400, description = "messageId cannot be empty, encode can only be utf-8 or base64, messageId doesn't exist", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn message(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<MessageContent>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: MessageParams = from_query(raw.as_deref());
    let Some(message_id) = p.message_id.as_deref() else {
        return Err(Error::bad_request("messageId cannot be empty"));
    };
    let encoding = content_encoding(p.encode.as_deref())?;
    let not_found = || Error::bad_request("messageId doesn't exist");
    let id = parse_hex_id(message_id).ok_or_else(not_found)?;
    let stored = query(&state, move |h| h.stored_message(id)).await?;
    let stored = stored.ok_or_else(not_found)?;
    Ok(Reply::ok(message_content(stored, encoding)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TopicMessagesParams {
    /// `yyyy-MM-dd HH:mm:ss`, local time.
    #[param(required = true, value_type = String, pattern = r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$", example = "2025-01-01 00:00:00")]
    pub begin_time: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, later than `beginTime`.
    #[param(required = true, value_type = String, pattern = r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$", example = "2035-12-31 23:59:59")]
    pub end_time: Option<String>,
    /// The topic the messages were published to.
    #[param(required = true, value_type = String, min_length = 1, example = "msg")]
    pub topic: Option<String>,
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, example = 10)]
    pub page_size: Option<String>,
    /// Default 1.
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub current_page: Option<String>,
    /// `base64` (default) or `utf-8`.
    #[param(value_type = Option<String>, pattern = r"^(?:[bB][aA][sS][eE]64|[uU][tT][fF]-8)$", example = "utf-8")]
    pub encode: Option<String>,
    /// `DESC` (default, newest first) or `ASC`.
    #[param(value_type = Option<String>, pattern = r"^(?:[aA][sS][cC]|[dD][eE][sS][cC])$", example = "DESC")]
    pub order: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicMessages {
    pub total: usize,
    pub messages: Vec<MessageContent>,
}

/// List a topic's messages
///
/// The messages published to a topic within a window.
#[utoipa::path(
    get,
    path = "/openapi/rm/message/messages",
    tag = "record",
    params(TopicMessagesParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Found", body = Reply<TopicMessages>),
        (status = 400, description = "topic cannot be empty, beginTime and endTime can not be empty, end time must be greater than the start time, encode can only be utf-8 or base64", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn topic_messages(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RawQuery(raw): RawQuery,
) -> Result<Reply<TopicMessages>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: TopicMessagesParams = from_query(raw.as_deref());
    let Some(topic) = p.topic.clone() else {
        return Err(Error::bad_request("topic cannot be empty"));
    };
    let (from_ms, to_ms) = params::window(p.begin_time.as_deref(), p.end_time.as_deref())?;
    let encoding = content_encoding(p.encode.as_deref())?;
    let mut q = record_query(
        from_ms,
        to_ms,
        params::page(p.current_page.as_deref(), p.page_size.as_deref()),
        params::order(p.order.as_deref(), SortOrder::Desc),
    );
    q.topic = Some(topic);
    let page = query(&state, move |h| h.topic_messages(&q)).await?;
    Ok(Reply::ok(TopicMessages {
        total: page.total,
        messages: page
            .items
            .into_iter()
            .map(|m| message_content(m, encoding))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_is_a_json_string_in_vendor_order() {
        let r = ConnectionRecord {
            connection_id: 0x04D2C1DD8B002000,
            client_id: "abc@a0cta0".into(),
            at_ms: 1_630_146_189_718,
            kind: ConnectionEventKind::Connect,
            reason: "normal".into(),
            username: Some("u".into()),
            peer: Some("172.18.1.24:21258".into()),
            transport: Some(Transport::WebSocket),
            proto_ver: Some(4),
            keepalive: Some(60),
            clean_start: Some(true),
            will_topic: None,
            will_payload: None,
        };
        let d = device_record(r);
        assert_eq!(d.connid, "04D2C1DD8B002000");
        assert_eq!(d.status, "connect");
        assert_eq!(
            d.detail,
            r#"{"will_properties":{},"will":null,"version":4,"ts":1630146189718,"properties":{},"network":"mod_mqtt_ws","keep_alive":60,"ip":"172.18.1.24:21258","clean_start":true}"#
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(content_encoding(None).unwrap(), PayloadEncoding::Base64);
        assert_eq!(
            content_encoding(Some("UTF-8")).unwrap(),
            PayloadEncoding::Plain
        );
        assert_eq!(
            content_encoding(Some("hex")).unwrap_err().msg,
            "encode can only be utf-8 or base64"
        );
    }
}
