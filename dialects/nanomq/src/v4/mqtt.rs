//! `/mqtt/*`: publishing, and subscribing on a client's behalf.
//!
//! Publish follows NanoMQ 0.25: a body that is not a JSON object (array for the batch)
//! is 400 `{"code":109}`; a missing or bad field is 200 `{"code":108}`; a failed send
//! is 200 `{"code":102}`.
//!
//! `subscribe`, `unsubscribe` and their `_batch` forms are listed by NanoMQ 0.25 but
//! unrouted since 0.13; mqgate implements them for real, as 0.9.5–0.12 did: the
//! subscription is made on behalf of an existing session (connected, or offline with a
//! persistent session) and the client receives matching messages from then on.
//! Unknown client: 200 `{"code":112}`; bad filter: 200 `{"code":115}`.

use std::sync::Arc;

use axum::extract::State;
use bytes::Bytes;
use mqgate_kit::http::payload::PayloadEncoding;
use mqgate_kit::topic::is_valid_topic_filter;
use mqgate_kit::{
    Management, MgmtError, OnBehalf, PublishProperties, PublishRequest, SubscriptionRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::Error;
use crate::reply::{CodeReply, Reply};
use crate::state::App;
use crate::v4::request::{json_array, json_object};

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(publish))
        .routes(routes!(publish_batch))
        .routes(routes!(subscribe))
        .routes(routes!(unsubscribe))
        .routes(routes!(subscribe_batch))
        .routes(routes!(unsubscribe_batch))
}

/// The sender NanoMQ names when the request gives no `clientid`.
pub const DEFAULT_CLIENT_ID: &str = "NanoMQ-HTTP-Client";

const SUCCEED: u16 = 0;
const UNKNOWN_MISTAKE: u16 = 102;
const REQ_PARAM_ERROR: u16 = 108;
const CLIENT_IS_OFFLINE: u16 = 112;
const ILLEGAL_SUBJECT: u16 = 115;

/// A publish request (documentation only: the body is read field by field, as NanoMQ
/// reads it).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PublishBody {
    /// One topic; or use `topics`.
    #[schema(example = "a/b/c", pattern = "^[^+#\\u0000]+$")]
    pub topic: Option<String>,
    /// Several topics, comma-separated.
    #[schema(example = "a/b/c,sensor/1/temp")]
    pub topics: Option<String>,
    #[schema(example = "Hello World")]
    pub payload: String,
    /// Sender recorded with the message (default `NanoMQ-HTTP-Client`).
    #[schema(example = "example")]
    pub clientid: Option<String>,
    /// `base64`: the payload text is base64-encoded before publishing.
    pub encoding: Option<String>,
    /// `base64`: the payload is base64 and is decoded before publishing.
    pub decoding: Option<String>,
    #[schema(minimum = 0, maximum = 2, example = 1)]
    pub qos: Option<u8>,
    pub retain: Option<bool>,
    /// MQTT 5 properties.
    pub properties: Option<PublishPropertiesBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PublishPropertiesBody {
    /// 0 unspecified bytes, 1 UTF-8 text.
    #[schema(minimum = 0, maximum = 1)]
    pub payload_format_indicator: Option<u8>,
    /// Seconds.
    pub message_expiry_interval: Option<u32>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<String>,
    pub content_type: Option<String>,
    /// Accepted and ignored: the broker assigns subscription identifiers.
    pub subscription_identifier: Option<u32>,
    /// Values may be strings, numbers or booleans.
    #[schema(value_type = Object)]
    pub user_properties: Option<Value>,
}

/// A subscribe or unsubscribe request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscribeBody {
    /// An existing session's client id.
    #[schema(example = "example", min_length = 1)]
    pub clientid: String,
    /// One filter; or use `topics`.
    #[schema(example = "a/b/c")]
    pub topic: Option<String>,
    /// Several filters, comma-separated.
    #[schema(example = "sensor/+/temp,cmd/#")]
    pub topics: Option<String>,
    /// Subscribe only; default 0.
    #[schema(minimum = 0, maximum = 2, example = 1)]
    pub qos: Option<u8>,
}

/// One result of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// Present for subscribe batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clientid: Option<String>,
    /// The request's `topic` or `topics`, omitted if it had neither.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub code: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchReply {
    pub data: Vec<BatchItem>,
    pub code: u16,
}

fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// `topic`, else `topics` split on commas; `None` when neither names a topic.
fn topics_of(body: &Map<String, Value>) -> Option<Vec<String>> {
    let topics: Vec<String> = match str_field(body, "topic") {
        Some(topic) => vec![topic.to_string()],
        None => str_field(body, "topics")?
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
    };
    (!topics.is_empty()).then_some(topics)
}

/// What a batch item echoes: the `topic` or `topics` text.
fn topic_echo(body: &Value) -> Option<String> {
    ["topic", "topics"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

/// QoS 0 when absent; anything but 0, 1 or 2 is a parameter error.
fn qos_of(body: &Map<String, Value>) -> Result<u8, u16> {
    match body.get("qos") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_u64() {
            Some(q @ 0..=2) => Ok(q as u8),
            _ => Err(REQ_PARAM_ERROR),
        },
    }
}

fn property_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn properties_of(body: &Map<String, Value>) -> Result<PublishProperties, u16> {
    let Some(props) = body.get("properties") else {
        return Ok(PublishProperties::default());
    };
    let props = props.as_object().ok_or(REQ_PARAM_ERROR)?;
    let number = |key: &str| -> Result<Option<u64>, u16> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(REQ_PARAM_ERROR),
        }
    };
    let text = |key: &str| props.get(key).and_then(Value::as_str).map(str::to_string);
    let payload_format_indicator = match number("payload_format_indicator")? {
        Some(v @ 0..=1) => Some(v as u8),
        Some(_) => return Err(REQ_PARAM_ERROR),
        None => None,
    };
    let message_expiry_interval = match number("message_expiry_interval")? {
        Some(v) => Some(u32::try_from(v).map_err(|_| REQ_PARAM_ERROR)?),
        None => None,
    };
    let user_properties = match props.get("user_properties") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(pairs)) => pairs
            .iter()
            .map(|(k, v)| property_text(v).map(|v| (k.clone(), v)))
            .collect::<Option<Vec<_>>>()
            .ok_or(REQ_PARAM_ERROR)?,
        Some(_) => return Err(REQ_PARAM_ERROR),
    };
    Ok(PublishProperties {
        payload_format_indicator,
        message_expiry_interval,
        content_type: text("content_type"),
        response_topic: text("response_topic"),
        correlation_data: text("correlation_data").map(Bytes::from),
        user_properties,
    })
}

/// The messages one publish object asks for, or its result code.
fn publish_requests(body: &Value) -> Result<Vec<PublishRequest>, u16> {
    let body = body.as_object().ok_or(REQ_PARAM_ERROR)?;
    let topics = topics_of(body).ok_or(REQ_PARAM_ERROR)?;
    let text = str_field(body, "payload").ok_or(REQ_PARAM_ERROR)?;
    let base64 = |key: &str| str_field(body, key).is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    let payload = if base64("decoding") {
        PayloadEncoding::Base64
            .decode(text)
            .map_err(|_| REQ_PARAM_ERROR)?
    } else if base64("encoding") {
        Bytes::from(PayloadEncoding::Base64.encode(text.as_bytes()))
    } else {
        Bytes::copy_from_slice(text.as_bytes())
    };
    let qos = qos_of(body)?;
    let retain = body.get("retain").and_then(Value::as_bool).unwrap_or(false);
    let properties = properties_of(body)?;
    let sender = str_field(body, "clientid").unwrap_or(DEFAULT_CLIENT_ID);
    Ok(topics
        .into_iter()
        .map(|topic| PublishRequest {
            topic,
            payload: payload.clone(),
            qos,
            retain,
            properties: properties.clone(),
            sender: Some(sender.to_string()),
            mountpoint: None,
        })
        .collect())
}

fn publish_error_code(error: &MgmtError) -> u16 {
    match error {
        MgmtError::InvalidTopicName(_) | MgmtError::InvalidQos(_) | MgmtError::PayloadTooLarge => {
            REQ_PARAM_ERROR
        }
        _ => UNKNOWN_MISTAKE,
    }
}

async fn publish_one(management: &dyn Management, body: &Value) -> u16 {
    let requests = match publish_requests(body) {
        Ok(requests) => requests,
        Err(code) => return code,
    };
    for request in requests {
        if let Err(e) = management.publish(request).await {
            return publish_error_code(&e);
        }
    }
    SUCCEED
}

/// Publish a message
///
/// Publishes to every subscriber of the topic (or of each of `topics`). Field errors
/// are 200 `{"code":108}`, as in NanoMQ.
#[utoipa::path(
    post,
    path = "/api/v4/mqtt/publish",
    tag = "v4 mqtt",
    request_body(content = PublishBody, example = json!({"topic": "a/b/c", "payload": "Hello World", "qos": 1, "retain": false, "clientid": "example", "properties": {"user_properties": {"id": 10010, "name": "example"}, "content_type": "text/plain"}})),
    responses(
        (status = 200, description = "`{\"code\":0}` published; `{\"code\":108}` a missing or bad field; `{\"code\":102}` the send failed", body = CodeReply, example = json!({"code": 0})),
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn publish(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let body = Value::Object(json_object(&body)?);
    Ok(Reply::code(
        publish_one(app.management.as_ref(), &body).await,
    ))
}

/// Publish several messages
///
/// One result per message, in order.
#[utoipa::path(
    post,
    path = "/api/v4/mqtt/publish_batch",
    tag = "v4 mqtt",
    request_body(content = Vec<PublishBody>, example = json!([{"topic": "a/b/c", "payload": "Hello World", "qos": 1, "clientid": "example"}, {"topics": "a/b/c,sensor/1/temp", "payload": "SGVsbG8=", "decoding": "base64"}])),
    responses(
        (status = 200, description = "One result per message", body = BatchReply),
        (status = 400, description = "Not a JSON array", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn publish_batch(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let items = json_array(&body)?;
    let mut data = Vec::with_capacity(items.len());
    for item in &items {
        data.push(BatchItem {
            clientid: None,
            topic: topic_echo(item),
            code: publish_one(app.management.as_ref(), item).await,
        });
    }
    Ok(Reply::json(&BatchReply {
        data,
        code: SUCCEED,
    }))
}

fn subscription_error_code(error: &MgmtError) -> u16 {
    match error {
        MgmtError::ClientNotFound => CLIENT_IS_OFFLINE,
        MgmtError::InvalidTopicFilter(_) => ILLEGAL_SUBJECT,
        MgmtError::InvalidQos(_) => REQ_PARAM_ERROR,
        _ => UNKNOWN_MISTAKE,
    }
}

/// `(clientid, filters)` of a subscribe or unsubscribe object.
fn subscription_target(body: &Value) -> Result<(String, Vec<String>), u16> {
    let body = body.as_object().ok_or(REQ_PARAM_ERROR)?;
    let client_id = str_field(body, "clientid")
        .filter(|c| !c.is_empty())
        .ok_or(REQ_PARAM_ERROR)?;
    let filters = topics_of(body).ok_or(REQ_PARAM_ERROR)?;
    if !filters.iter().all(|f| is_valid_topic_filter(f)) {
        return Err(ILLEGAL_SUBJECT);
    }
    Ok((client_id.to_string(), filters))
}

async fn subscribe_one(management: &dyn Management, body: &Value) -> u16 {
    let (client_id, filters) = match subscription_target(body) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let qos = match body.as_object().map(qos_of) {
        Some(Ok(qos)) => qos,
        _ => return REQ_PARAM_ERROR,
    };
    let requests = filters
        .into_iter()
        .map(|topic_filter| SubscriptionRequest { topic_filter, qos })
        .collect();
    match management
        .subscribe(&client_id, requests, OnBehalf::ExistingSession)
        .await
    {
        Ok(_) => SUCCEED,
        Err(e) => subscription_error_code(&e),
    }
}

async fn unsubscribe_one(management: &dyn Management, body: &Value) -> u16 {
    let (client_id, filters) = match subscription_target(body) {
        Ok(target) => target,
        Err(code) => return code,
    };
    match management.unsubscribe(&client_id, filters).await {
        Ok(_) => SUCCEED,
        Err(e) => subscription_error_code(&e),
    }
}

fn batch_item(body: &Value, code: u16) -> BatchItem {
    BatchItem {
        clientid: body
            .get("clientid")
            .and_then(Value::as_str)
            .map(str::to_string),
        topic: topic_echo(body),
        code,
    }
}

/// Subscribe a client to topic filters
///
/// A subscription on behalf of an existing session (connected, or offline and
/// persistent): no SUBACK, messages from then on. Unknown client: 200 `{"code":112}`.
#[utoipa::path(
    post,
    path = "/api/v4/mqtt/subscribe",
    tag = "v4 mqtt",
    request_body(content = SubscribeBody, example = json!({"clientid": "example", "topic": "a/b/c", "qos": 1})),
    responses(
        (status = 200, description = "`{\"code\":0}` subscribed; `{\"code\":112}` no such session; `{\"code\":115}` bad filter; `{\"code\":108}` missing or bad field", body = CodeReply, example = json!({"code": 0})),
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn subscribe(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let body = Value::Object(json_object(&body)?);
    Ok(Reply::code(
        subscribe_one(app.management.as_ref(), &body).await,
    ))
}

/// Unsubscribe a client from topic filters
///
/// Removes the session's subscriptions to exactly these filters. Unknown client: 200
/// `{"code":112}`.
#[utoipa::path(
    post,
    path = "/api/v4/mqtt/unsubscribe",
    tag = "v4 mqtt",
    request_body(content = SubscribeBody, example = json!({"clientid": "example", "topic": "a/b/c"})),
    responses(
        (status = 200, description = "`{\"code\":0}` unsubscribed; `{\"code\":112}` no such session; `{\"code\":115}` bad filter; `{\"code\":108}` missing field", body = CodeReply, example = json!({"code": 0})),
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn unsubscribe(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let body = Value::Object(json_object(&body)?);
    Ok(Reply::code(
        unsubscribe_one(app.management.as_ref(), &body).await,
    ))
}

/// Subscribe clients to topic filters
///
/// One result per request, in order.
#[utoipa::path(
    post,
    path = "/api/v4/mqtt/subscribe_batch",
    tag = "v4 mqtt",
    request_body(content = Vec<SubscribeBody>, example = json!([{"clientid": "example", "topic": "a/b/c", "qos": 1}, {"clientid": "example", "topics": "sensor/+/temp,cmd/#", "qos": 0}])),
    responses(
        (status = 200, description = "One result per request", body = BatchReply),
        (status = 400, description = "Not a JSON array", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn subscribe_batch(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let items = json_array(&body)?;
    let mut data = Vec::with_capacity(items.len());
    for item in &items {
        data.push(batch_item(
            item,
            subscribe_one(app.management.as_ref(), item).await,
        ));
    }
    Ok(Reply::json(&BatchReply {
        data,
        code: SUCCEED,
    }))
}

/// Unsubscribe clients from topic filters
///
/// One result per request, in order.
#[utoipa::path(
    post,
    path = "/api/v4/mqtt/unsubscribe_batch",
    tag = "v4 mqtt",
    request_body(content = Vec<SubscribeBody>, example = json!([{"clientid": "example", "topic": "a/b/c"}, {"clientid": "example", "topics": "sensor/+/temp,cmd/#"}])),
    responses(
        (status = 200, description = "One result per request", body = BatchReply),
        (status = 400, description = "Not a JSON array", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn unsubscribe_batch(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let items = json_array(&body)?;
    let mut data = Vec::with_capacity(items.len());
    for item in &items {
        data.push(batch_item(
            item,
            unsubscribe_one(app.management.as_ref(), item).await,
        ));
    }
    Ok(Reply::json(&BatchReply {
        data,
        code: SUCCEED,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_publish_bodies() {
        let r = publish_requests(&json!({"topic":"a/b/c","payload":"Hello World","qos":1,
            "clientid":"example","properties":{"user_properties":{"id":10010,"name":"emqx"},
            "content_type":"text/plain"}}))
        .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].qos, 1);
        assert_eq!(r[0].sender.as_deref(), Some("example"));
        assert_eq!(r[0].properties.content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            r[0].properties.user_properties,
            vec![
                ("id".to_string(), "10010".to_string()),
                ("name".to_string(), "emqx".to_string())
            ]
        );
        let r = publish_requests(
            &json!({"topics":"a/b/c,sensor/1/temp","payload":"SGVsbG8=","decoding":"base64"}),
        )
        .unwrap();
        assert_eq!(
            r.iter().map(|p| p.topic.as_str()).collect::<Vec<_>>(),
            ["a/b/c", "sensor/1/temp"]
        );
        assert_eq!(&r[1].payload[..], b"Hello");
        assert_eq!(r[1].sender.as_deref(), Some(DEFAULT_CLIENT_ID));
        let r = publish_requests(&json!({"topic":"t","payload":"Hi","encoding":"base64"})).unwrap();
        assert_eq!(&r[0].payload[..], b"SGk=");
        assert_eq!(
            publish_requests(&json!({"topic":"a/b/c"})).unwrap_err(),
            108
        );
        assert_eq!(publish_requests(&json!({"payload":"x"})).unwrap_err(), 108);
        assert_eq!(
            publish_requests(&json!({"topic":"t","payload":"x","qos":3})).unwrap_err(),
            108
        );
        assert_eq!(
            publish_requests(
                &json!({"topic":"t","payload":"x","properties":{"user_properties":{"a":[1]}}})
            )
            .unwrap_err(),
            108
        );
    }
}
