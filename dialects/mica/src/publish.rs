//! `POST /api/v1/mqtt/publish` and `/publish/batch`: publishing as if an MQTT
//! client had sent the message, routed by topic to every matching subscriber.

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use mqgate_kit::http::payload::PayloadEncoding;
use mqgate_kit::topic::is_valid_topic_name;
use mqgate_kit::{PublishProperties, PublishRequest};
use serde::Deserialize;
use utoipa::ToSchema;

use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::{ok_without_data, CodeResponse, Error};
use crate::form::{self, batch_of, lenient, RawBody};
use crate::routes::Routes;
use crate::state::App;

pub fn router() -> Routes {
    Routes::new()
        .route(routes!(publish))
        .route(routes!(publish_batch))
}

/// Prefix of a retained message with a lifetime: `$retain/<seconds>/<topic>`.
const RETAIN_TTL_PREFIX: &str = "$retain/";

/// mica's `PublishForm`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishForm {
    /// Topic to publish to; no wildcards. With `retain`, `$retain/<seconds>/<topic>`
    /// stores the retained message for that many seconds.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "a/b/c", min_length = 1, max_length = 65535, pattern = "^[^+#\\u0000\\s][^+#\\u0000]*$")]
    pub topic: Option<String>,
    /// Names the sender; must not be blank, does not select any receiver.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "httpApi", pattern = "[^\\s]")]
    pub client_id: Option<String>,
    /// Message body, in `encoding`; blank means an empty payload.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, example = "Hello World")]
    pub payload: Option<String>,
    /// `plain` (default), `hex` or `base64`, any case; anything else means `plain`.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = Option<PayloadEncodingName>, default = "plain", example = "plain")]
    pub encoding: Option<String>,
    /// QoS 0, 1 or 2; any other value is accepted and delivers nothing (as mica).
    #[serde(default, deserialize_with = "lenient::int")]
    #[schema(value_type = i32, default = 0, minimum = 0, maximum = 2, example = 0)]
    pub qos: Option<i32>,
    /// Store as the topic's retained message (live subscribers get RETAIN=0).
    #[serde(default, deserialize_with = "lenient::boolean")]
    #[schema(value_type = bool, default = false)]
    pub retain: Option<bool>,
}

batch_of!(PublishBatch, PublishForm);

/// How `payload` is written.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEncodingName {
    Plain,
    Hex,
    Base64,
}

impl PublishForm {
    /// Validates the form and decodes its payload, so that nothing can fail any
    /// more except the broker. `None`: mica accepts the message and delivers
    /// nothing (qos out of range).
    fn prepare(&self) -> Result<Option<PublishRequest>, Error> {
        let client_id = non_blank(&self.client_id)?;
        let topic = non_blank(&self.topic)?;
        if !is_valid_topic_name(topic) {
            return Err(Error::InvalidParam);
        }
        let retain = self.retain.unwrap_or(false);
        let (topic, expiry) = if retain && topic.starts_with(RETAIN_TTL_PREFIX) {
            retain_with_ttl(topic)?
        } else {
            (topic.to_string(), None)
        };
        let payload = match self.payload.as_deref().filter(|p| !p.trim().is_empty()) {
            None => Bytes::new(),
            Some(text) => self
                .encoding
                .as_deref()
                .and_then(PayloadEncoding::parse)
                .unwrap_or_default()
                .decode(text)
                .map_err(|_| Error::Unknown)?,
        };
        let qos = self.qos.unwrap_or(0);
        Ok((0..=2).contains(&qos).then(|| PublishRequest {
            topic,
            payload,
            qos: qos as u8,
            retain,
            properties: PublishProperties {
                message_expiry_interval: expiry,
                ..PublishProperties::default()
            },
            sender: Some(client_id.to_string()),
            mountpoint: None,
        }))
    }
}

fn non_blank(value: &Option<String>) -> Result<&str, Error> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or(Error::MissingParam)
}

/// Splits `$retain/<seconds>/<topic>` into the topic and its lifetime (`None`:
/// forever, for a lifetime ≤ 0).
fn retain_with_ttl(topic: &str) -> Result<(String, Option<u32>), Error> {
    let rest = &topic[RETAIN_TTL_PREFIX.len()..];
    let (ttl, real_topic) = rest.split_once('/').ok_or(Error::InvalidParam)?;
    let ttl: i64 = ttl.parse().map_err(|_| Error::InvalidParam)?;
    if !is_valid_topic_name(real_topic) {
        return Err(Error::InvalidParam);
    }
    let expiry = (ttl > 0).then(|| ttl.min(u32::MAX as i64) as u32);
    Ok((real_topic.to_string(), expiry))
}

async fn send(app: &App, requests: Vec<Option<PublishRequest>>) -> Result<(), Error> {
    for request in requests.into_iter().flatten() {
        app.management.publish(request).await?;
    }
    Ok(())
}

/// Publish a message
///
/// Publishes one message to every subscriber of its topic, as if an MQTT client had
/// sent it.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/publish",
    tag = "messages",
    operation_id = "publish",
    request_body(content = PublishForm, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "Published: `{\"code\":1}`", body = CodeResponse, content_type = "application/json", example = json!({"code": 1})),
        (status = 400, description = "`{\"code\":101}` no body, blank clientId or topic; `{\"code\":102}` topic with wildcards", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
        (status = 500, description = "`{\"code\":105}` malformed JSON, wrong JSON type, undecodable hex/base64 payload", body = CodeResponse, content_type = "application/json", example = json!({"code": 105})),
    )
)]
pub async fn publish(
    _: Authorized,
    State(app): State<App>,
    RawBody(body): RawBody,
) -> Result<Response, Error> {
    let form: PublishForm = form::json_object(&body)?;
    send(&app, vec![form.prepare()?]).await?;
    Ok(ok_without_data())
}

/// Publish several messages
///
/// The whole batch is validated, payloads decoded, before the first message is sent:
/// one bad element and nothing is published.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/publish/batch",
    tag = "messages",
    operation_id = "publishBatch",
    request_body(content = PublishBatch, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "All published: `{\"code\":1}`", body = CodeResponse, content_type = "application/json", example = json!({"code": 1})),
        (status = 400, description = "`{\"code\":101}` no body, empty array, blank clientId or topic; `{\"code\":102}` topic with wildcards. Nothing published.", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
        (status = 500, description = "`{\"code\":105}` malformed JSON, not an array, undecodable payload. Nothing published.", body = CodeResponse, content_type = "application/json", example = json!({"code": 105})),
    )
)]
pub async fn publish_batch(
    _: Authorized,
    State(app): State<App>,
    RawBody(body): RawBody,
) -> Result<Response, Error> {
    let forms: Vec<PublishForm> = form::json_array(&body)?;
    let outgoing = forms
        .iter()
        .map(PublishForm::prepare)
        .collect::<Result<Vec<_>, _>>()?;
    send(&app, outgoing).await?;
    Ok(ok_without_data())
}
