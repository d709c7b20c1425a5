//! MQTT operations (`/api/v1/mqtt/*`): publish, and subscribe or unsubscribe on a
//! client's behalf, one at a time or in batches, in EMQX 4's request shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use mqgate_kit::http::number::optional_whole;
use mqgate_kit::http::payload::PayloadEncoding;
use mqgate_kit::topic::{is_valid_topic_filter, is_valid_topic_name};
use mqgate_kit::{MgmtError, OnBehalf, PublishProperties, SubscriptionRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::{Error, ErrorBody};
use crate::state::AppState;
use crate::wire::{json_array, json_object, object_from, required, Done, LenientBool, LenientInt};

mod schemas;

use schemas::{
    filter_schema, filters_schema, publish_topic_schema, publish_topics_schema, qos_schema,
    retain_schema,
};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/mqtt/publish", post(publish))
        .route("/api/v1/mqtt/subscribe", post(subscribe))
        .route("/api/v1/mqtt/unsubscribe", post(unsubscribe))
        .route("/api/v1/mqtt/publish_batch", post(publish_batch))
        .route("/api/v1/mqtt/subscribe_batch", post(subscribe_batch))
        .route("/api/v1/mqtt/unsubscribe_batch", post(unsubscribe_batch))
}

/// One publish: to `topic`, to each of the comma-separated `topics`, or both.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PublishRequest {
    #[serde(default)]
    #[schema(schema_with = publish_topic_schema)]
    pub topic: Option<String>,
    #[serde(default)]
    #[schema(schema_with = publish_topics_schema)]
    pub topics: Option<String>,
    /// Recorded as the sender; never used for routing.
    #[serde(default)]
    #[schema(example = "root")]
    pub clientid: Option<String>,
    /// The message, written as `encoding` says.
    #[schema(required, value_type = String, example = "Hello World")]
    #[serde(default)]
    pub payload: Option<String>,
    /// `plain` (default) or `base64`, any case.
    #[serde(default)]
    #[schema(
        pattern = r"^(?:[pP][lL][aA][iI][nN]|[bB][aA][sS][eE]64)$",
        example = "plain"
    )]
    pub encoding: Option<String>,
    #[serde(default)]
    #[schema(schema_with = qos_schema)]
    pub qos: Option<LenientInt>,
    #[serde(default)]
    #[schema(schema_with = retain_schema)]
    pub retain: Option<LenientBool>,
    #[serde(default)]
    pub properties: Option<PublishPropertiesRequest>,
}

/// MQTT 5 PUBLISH properties.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPropertiesRequest {
    /// 0 unspecified bytes, 1 UTF-8 text.
    #[serde(default, deserialize_with = "optional_whole")]
    #[schema(minimum = 0, maximum = 1, example = 1)]
    pub payload_format_indicator: Option<u8>,
    /// Seconds.
    #[serde(default, deserialize_with = "optional_whole")]
    #[schema(minimum = 0, maximum = 4294967295u32, example = 3600)]
    pub message_expiry_interval: Option<u32>,
    #[serde(default)]
    #[schema(example = "text/plain")]
    pub content_type: Option<String>,
    /// A topic name (no `+`, `#` or NUL).
    #[serde(default)]
    #[schema(pattern = r"^[^+#\u0000]+$", example = "reply/topic")]
    pub response_topic: Option<String>,
    /// Sent as the UTF-8 bytes of this string.
    #[serde(default)]
    pub correlation_data: Option<String>,
    #[serde(default)]
    pub user_properties: Option<BTreeMap<String, String>>,
}

/// One subscription on behalf of `clientid`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscribeRequest {
    #[serde(default)]
    #[schema(schema_with = filter_schema)]
    pub topic: Option<String>,
    #[serde(default)]
    #[schema(schema_with = filters_schema)]
    pub topics: Option<String>,
    /// The client to subscribe; it need not be connected yet.
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, pattern = r"\S", example = "root")]
    pub clientid: Option<String>,
    #[serde(default)]
    #[schema(schema_with = qos_schema)]
    pub qos: Option<LenientInt>,
}

/// One unsubscription on behalf of `clientid`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UnsubscribeRequest {
    #[serde(default)]
    #[schema(schema_with = filter_schema)]
    pub topic: Option<String>,
    /// mqgate extension, as for subscribe.
    #[serde(default)]
    #[schema(schema_with = filters_schema)]
    pub topics: Option<String>,
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, pattern = r"\S", example = "root")]
    pub clientid: Option<String>,
}

/// Outcome of one topic of a batch publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicResult {
    pub topic: String,
    /// 0 published; otherwise the error code a single publish would give.
    pub code: u32,
    /// Why it failed; absent on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishBatchResponse {
    pub data: Vec<TopicResult>,
    #[schema(example = 0)]
    pub code: u32,
}

/// `topic` followed by each of `topics`, blanks skipped, duplicates dropped.
fn topic_list(topic: Option<&str>, topics: Option<&str>) -> Vec<String> {
    let mut list: Vec<String> = Vec::new();
    let pieces = topic
        .into_iter()
        .chain(topics.into_iter().flat_map(|t| t.split(',')))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    for t in pieces {
        if !list.iter().any(|seen| seen == t) {
            list.push(t.to_string());
        }
    }
    list
}

fn qos_of(qos: Option<LenientInt>) -> Result<u8, Error> {
    match qos {
        None => Ok(0),
        Some(LenientInt(q)) if (0..=2).contains(&q) => Ok(q as u8),
        Some(LenientInt(q)) => Err(Error::bad_qos(q)),
    }
}

/// A publish request checked and ready to hand to the broker, once per topic.
struct Publication {
    topics: Vec<String>,
    message: mqgate_kit::PublishRequest,
}

impl PublishRequest {
    fn check(self) -> Result<Publication, Error> {
        let topics = topic_list(self.topic.as_deref(), self.topics.as_deref());
        if topics.is_empty() {
            return Err(Error::missing_parameter("topic"));
        }
        if let Some(bad) = topics.iter().find(|t| !is_valid_topic_name(t)) {
            return Err(Error::bad_topic(bad));
        }
        let payload = self
            .payload
            .ok_or_else(|| Error::missing_parameter("payload"))?;
        let encoding = match self.encoding.as_deref().map(PayloadEncoding::parse) {
            None => PayloadEncoding::Plain,
            Some(Some(e @ (PayloadEncoding::Plain | PayloadEncoding::Base64))) => e,
            Some(_) => {
                return Err(Error::invalid_parameter(
                    "invalid encoding: must be plain or base64",
                ))
            }
        };
        let payload = encoding
            .decode(&payload)
            .map_err(|e| Error::invalid_parameter(e.to_string()))?;
        let properties = self.properties.unwrap_or_default();
        if properties.payload_format_indicator.is_some_and(|p| p > 1) {
            return Err(Error::invalid_parameter(
                "invalid properties.payload_format_indicator: must be 0 or 1",
            ));
        }
        if let Some(t) = &properties.response_topic {
            if !is_valid_topic_name(t) {
                return Err(Error::bad_topic(t));
            }
        }
        Ok(Publication {
            topics,
            message: mqgate_kit::PublishRequest {
                topic: String::new(),
                payload,
                qos: qos_of(self.qos)?,
                retain: self.retain.is_some_and(|LenientBool(b)| b),
                properties: PublishProperties {
                    payload_format_indicator: properties.payload_format_indicator,
                    message_expiry_interval: properties.message_expiry_interval,
                    content_type: properties.content_type,
                    response_topic: properties.response_topic,
                    correlation_data: properties.correlation_data.map(bytes::Bytes::from),
                    user_properties: properties
                        .user_properties
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                },
                sender: self.clientid.filter(|c| !c.is_empty()),
                mountpoint: None,
            },
        })
    }
}

impl Publication {
    /// Publishes to every topic; one result per topic.
    async fn send(self, state: &AppState) -> Vec<(String, Result<(), Error>)> {
        let mut results = Vec::with_capacity(self.topics.len());
        for topic in self.topics {
            let mut message = self.message.clone();
            message.topic = topic.clone();
            let outcome = state
                .management
                .publish(message)
                .await
                .map(|_| ())
                .map_err(Error::from);
            results.push((topic, outcome));
        }
        results
    }
}

/// Checked subscriptions of one client.
struct Subscription {
    client_id: String,
    filters: Vec<String>,
    qos: u8,
}

impl SubscribeRequest {
    fn check(self) -> Result<Subscription, Error> {
        let client_id = required(self.clientid, "clientid")?;
        let filters = topic_list(self.topic.as_deref(), self.topics.as_deref());
        if filters.is_empty() {
            return Err(Error::missing_parameter("topic"));
        }
        if let Some(bad) = filters.iter().find(|f| !is_valid_topic_filter(f)) {
            return Err(Error::bad_topic(bad));
        }
        Ok(Subscription {
            client_id,
            filters,
            qos: qos_of(self.qos)?,
        })
    }
}

impl Subscription {
    async fn apply(self, state: &AppState) -> Result<(), Error> {
        let requests = self
            .filters
            .into_iter()
            .map(|topic_filter| SubscriptionRequest {
                topic_filter,
                qos: self.qos,
            })
            .collect();
        // A client that is not connected yet gets the subscription when it does,
        // so scripts may subscribe devices before they come online.
        state
            .management
            .subscribe(&self.client_id, requests, OnBehalf::CreateIfAbsent)
            .await?;
        Ok(())
    }
}

/// Checked unsubscriptions of one client.
struct Unsubscription {
    client_id: String,
    filters: Vec<String>,
}

impl UnsubscribeRequest {
    fn check(self) -> Result<Unsubscription, Error> {
        let client_id = required(self.clientid, "clientid")?;
        let filters = topic_list(self.topic.as_deref(), self.topics.as_deref());
        if filters.is_empty() {
            return Err(Error::missing_parameter("topic"));
        }
        if let Some(bad) = filters.iter().find(|f| !is_valid_topic_filter(f)) {
            return Err(Error::bad_topic(bad));
        }
        Ok(Unsubscription { client_id, filters })
    }
}

impl Unsubscription {
    async fn apply(self, state: &AppState) -> Result<(), Error> {
        match state
            .management
            .unsubscribe(&self.client_id, self.filters)
            .await
        {
            // Nothing subscribed is what the caller asked for.
            Ok(_) | Err(MgmtError::ClientNotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Publish a message
///
/// To `topic`, to each of the comma-separated `topics`, or both.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/publish",
    operation_id = "publish",
    tag = "mqtt",
    request_body(content = PublishRequest, example = json!({"topic": "test/topic", "payload": "Hello World", "qos": 1, "retain": false, "clientid": "root"})),
    responses(
        (status = 200, description = "Published", body = Done),
        (status = 400, description = "Missing parameter (107), invalid value (108), bad topic (115), bad QoS (116)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn publish(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Done>, Error> {
    let publication = json_object::<PublishRequest>(&body)?.check()?;
    for (_, outcome) in publication.send(&state).await {
        outcome?;
    }
    Ok(Json(Done::OK))
}

/// Subscribe a client
///
/// To one or more topic filters, on the client's behalf. A client that is not
/// connected yet gets the subscription when it connects.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/subscribe",
    operation_id = "subscribe",
    tag = "mqtt",
    request_body(content = SubscribeRequest, example = json!({"topics": "topic1,topic2,topic3", "qos": 1, "clientid": "root"})),
    responses(
        (status = 200, description = "Subscribed (kept for the client id until it connects)", body = Done),
        (status = 400, description = "Missing parameter (107), bad topic filter (115), bad QoS (116)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn subscribe(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Done>, Error> {
    json_object::<SubscribeRequest>(&body)?
        .check()?
        .apply(&state)
        .await?;
    Ok(Json(Done::OK))
}

/// Unsubscribe a client
///
/// From one or more topic filters, on the client's behalf. Unsubscribing from
/// something not subscribed succeeds.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/unsubscribe",
    operation_id = "unsubscribe",
    tag = "mqtt",
    request_body(content = UnsubscribeRequest, example = json!({"topic": "topic1", "clientid": "root"})),
    responses(
        (status = 200, description = "Not subscribed any more", body = Done),
        (status = 400, description = "Missing parameter (107), bad topic filter (115)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn unsubscribe(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Done>, Error> {
    json_object::<UnsubscribeRequest>(&body)?
        .check()?
        .apply(&state)
        .await?;
    Ok(Json(Done::OK))
}

/// Publish several messages
///
/// Each topic gets its own result code.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/publish_batch",
    operation_id = "publish_batch",
    tag = "mqtt",
    request_body(content = Vec<PublishRequest>, example = json!([{"topic": "topic1", "payload": "Hello World1", "qos": 1, "retain": false, "clientid": "root"}, {"topic": "topic2", "payload": "Hello World2", "qos": 1, "retain": false, "clientid": "root2"}])),
    responses(
        (status = 200, description = "One result per topic, in request order", body = PublishBatchResponse),
        (status = 400, description = "The body is not a JSON array", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn publish_batch(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<PublishBatchResponse>, Error> {
    let mut data = Vec::new();
    for value in json_array(&body)? {
        let named = topic_list(
            value.get("topic").and_then(|t| t.as_str()),
            value.get("topics").and_then(|t| t.as_str()),
        );
        match object_from::<PublishRequest>(value).and_then(PublishRequest::check) {
            Ok(publication) => {
                for (topic, outcome) in publication.send(&state).await {
                    data.push(topic_result(topic, outcome));
                }
            }
            Err(e) if named.is_empty() => data.push(topic_result(String::new(), Err(e))),
            Err(e) => {
                for topic in named {
                    data.push(topic_result(topic, Err(e.clone())));
                }
            }
        }
    }
    Ok(Json(PublishBatchResponse { data, code: 0 }))
}

fn topic_result(topic: String, outcome: Result<(), Error>) -> TopicResult {
    match outcome {
        Ok(()) => TopicResult {
            topic,
            code: 0,
            message: None,
        },
        Err(e) => TopicResult {
            topic,
            code: e.code,
            message: Some(e.message),
        },
    }
}

/// Subscribe several clients
///
/// Every element is checked before any is applied.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/subscribe_batch",
    operation_id = "subscribe_batch",
    tag = "mqtt",
    request_body(content = Vec<SubscribeRequest>, example = json!([{"topic": "topic1", "qos": 1, "clientid": "root1"}, {"topic": "topic2", "qos": 1, "clientid": "root2"}, {"topic": "topic3", "qos": 1, "clientid": "root3"}])),
    responses(
        (status = 200, description = "All subscribed", body = Done),
        (status = 400, description = "An element is invalid; nothing was subscribed", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn subscribe_batch(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Done>, Error> {
    let checked = json_array(&body)?
        .into_iter()
        .map(|v| object_from::<SubscribeRequest>(v).and_then(SubscribeRequest::check))
        .collect::<Result<Vec<_>, _>>()?;
    for subscription in checked {
        subscription.apply(&state).await?;
    }
    Ok(Json(Done::OK))
}

/// Unsubscribe several clients
///
/// Every element is checked before any is applied.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/unsubscribe_batch",
    operation_id = "unsubscribe_batch",
    tag = "mqtt",
    request_body(content = Vec<UnsubscribeRequest>, example = json!([{"topic": "topic1", "clientid": "root1"}, {"topic": "topic2", "clientid": "root2"}])),
    responses(
        (status = 200, description = "None of them subscribed any more", body = Done),
        (status = 400, description = "An element is invalid; nothing was unsubscribed", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn unsubscribe_batch(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Done>, Error> {
    let checked = json_array(&body)?
        .into_iter()
        .map(|v| object_from::<UnsubscribeRequest>(v).and_then(UnsubscribeRequest::check))
        .collect::<Result<Vec<_>, _>>()?;
    for unsubscription in checked {
        unsubscription.apply(&state).await?;
    }
    Ok(Json(Done::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_combine_and_dedupe() {
        assert_eq!(topic_list(Some("a"), Some("b, a,,c")), vec!["a", "b", "c"]);
        assert!(topic_list(None, Some(" , ")).is_empty());
    }

    #[test]
    fn publish_checks() {
        let check = |body: &str| {
            json_object::<PublishRequest>(body.as_bytes()).and_then(PublishRequest::check)
        };
        let p = check(r#"{"topics":"a,b","payload":"SGk=","encoding":"base64","qos":"1","retain":true,"clientid":"c","properties":{"user_properties":{"k":"v"},"message_expiry_interval":5}}"#).unwrap();
        assert_eq!(p.topics, vec!["a", "b"]);
        assert_eq!(&p.message.payload[..], b"Hi");
        assert_eq!((p.message.qos, p.message.retain), (1, true));
        assert_eq!(p.message.sender.as_deref(), Some("c"));
        assert_eq!(
            p.message.properties.user_properties,
            vec![("k".to_string(), "v".to_string())]
        );
        assert_eq!(p.message.properties.message_expiry_interval, Some(5));
        // JSON Schema's integers include a zero fraction; so do ours.
        let p = check(r#"{"topic":"a","payload":"x","qos":1.0,"properties":{"message_expiry_interval":60.0}}"#)
            .unwrap();
        assert_eq!(p.message.qos, 1);
        assert_eq!(p.message.properties.message_expiry_interval, Some(60));
        assert_eq!(check(r#"{"payload":"x"}"#).err().unwrap().code, 107);
        assert_eq!(check(r#"{"topic":"a"}"#).err().unwrap().code, 107);
        assert_eq!(
            check(r#"{"topic":"a/#","payload":"x"}"#)
                .err()
                .unwrap()
                .code,
            115
        );
        assert_eq!(
            check(r#"{"topic":"a","payload":"x","qos":3}"#)
                .err()
                .unwrap()
                .code,
            116
        );
        assert_eq!(
            check(r#"{"topic":"a","payload":"x","encoding":"hex"}"#)
                .err()
                .unwrap()
                .code,
            108
        );
        assert_eq!(
            check(r#"{"topic":"a","payload":"***","encoding":"base64"}"#)
                .err()
                .unwrap()
                .code,
            108
        );
        assert_eq!(
            check(r#"{"topic":"a","payload":"x","properties":{"bogus":1}}"#)
                .err()
                .unwrap()
                .code,
            108
        );
        assert_eq!(
            check(r#"{"topic":"a","payload":""}"#)
                .unwrap()
                .message
                .payload
                .len(),
            0
        );
    }
}
