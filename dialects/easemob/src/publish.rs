//! Sending messages: one publish per topic, each with its own message id.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use mqgate_kit::http::number::whole_number;
use mqgate_kit::http::payload::PayloadEncoding;
use mqgate_kit::topic::is_valid_topic_name;
use mqgate_kit::{MgmtError, PublishProperties, PublishRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::AppToken;
use crate::client_id::{check_client_id, tenant_mountpoint, ClientIdCheck};
use crate::error::{Error, ErrorBody, ErrorReply, Reply};
use crate::params::hex_id;
use crate::state::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/openapi/v1/rm/chat/publish", post(publish))
}

/// Most topics one call may name.
const MAX_TOPICS: usize = 32;
/// The documented range of `expire`, seconds.
const EXPIRE_MIN_SECS: u64 = 86_400;
const EXPIRE_MAX_SECS: u64 = 259_200;

#[derive(Debug, Deserialize, ToSchema)]
pub struct PublishBody {
    #[schema(schema_with = topics_schema)]
    pub topics: Vec<String>,
    /// The sender, `deviceID@AppID` of this application, at most 64 characters.
    #[schema(
        max_length = 64,
        pattern = r"^[!-~]+@mq7g4e$",
        example = "test1@mq7g4e"
    )]
    pub clientid: String,
    /// The message, written as `encoding` says; not empty.
    #[schema(min_length = 1, example = "hello")]
    pub payload: String,
    /// `plain` (default) or `base64`, any case.
    #[schema(
        pattern = r"^(?:[pP][lL][aA][iI][nN]|[bB][aA][sS][eE]64)$",
        example = "plain"
    )]
    pub encoding: Option<String>,
    /// 0 (default), 1 or 2.
    #[schema(minimum = 0, maximum = 2, example = 1)]
    pub qos: Option<u8>,
    /// 1 to retain, 0 (default) not to.
    #[schema(minimum = 0, maximum = 1, example = 0)]
    pub retain: Option<u8>,
    /// Message expiry in seconds, kept within [86400, 259200] (an expiry
    /// outside is moved to the nearer end).
    #[schema(minimum = 1, maximum = 4294967295u64, example = 86400)]
    pub expire: Option<u64>,
}

/// 1 to 32 topic names, each without `+`, `#` or NUL.
fn topics_schema() -> utoipa::openapi::Array {
    let topic = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(mqgate_kit::topic::MAX_TOPIC_LEN))
        .pattern(Some(r"^[^+#\u0000]+$"));
    utoipa::openapi::ArrayBuilder::new()
        .items(topic)
        .min_items(Some(1))
        .max_items(Some(MAX_TOPICS))
        .description(Some("1 to 32 topic names; one message per topic."))
        .examples([serde_json::json!(["msg", "ll"])])
        .build()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishReply {
    /// One message id per topic, in the order of `topics`.
    #[schema(example = json!(["04D2B21648002000", "04D2B21648002001"]))]
    pub mids: Vec<String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::bad_request(msg).with_body(ErrorBody::EmptyObject)
}

fn missing(name: &str) -> Error {
    bad(format!("Missing required parameters {name}"))
}

/// A checked publish: what goes to the broker for every topic.
#[derive(Debug, PartialEq)]
struct Checked {
    topics: Vec<String>,
    sender: String,
    payload: Bytes,
    qos: u8,
    retain: bool,
    expire: Option<u32>,
}

/// Integers written as JSON numbers (`1`, or `1.0` as JSON Schema allows) or
/// numeric strings.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => whole_number(n),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Checks the body in the order the document lists its errors.
fn check(body: &[u8], app_id: &str) -> Result<Checked, Error> {
    let body: Value = serde_json::from_slice(body).map_err(|_| bad("bad_json"))?;
    let Value::Object(fields) = body else {
        return Err(bad("bad_json"));
    };
    let present = |name: &str| fields.get(name).filter(|v| !v.is_null());

    let sender = match present("clientid") {
        None => return Err(missing("clientid")),
        Some(Value::String(s)) if s.is_empty() => return Err(bad("clientid can not be empty")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("invalid clientid")),
    };
    match check_client_id(&sender, app_id) {
        ClientIdCheck::Ours => {}
        ClientIdCheck::OtherApp => return Err(bad("clientid and appid doesn't match")),
        ClientIdCheck::Invalid => return Err(bad("invalid clientid")),
    }

    let topics = match present("topics") {
        None => return Err(missing("topics")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("topics must be an array")),
    };
    if topics.is_empty() {
        return Err(bad("topics array can not be empty"));
    }
    if topics.len() > MAX_TOPICS {
        return Err(bad("topics array's size can not exceed 32"));
    }
    let topics = topics
        .iter()
        .map(|t| match t {
            Value::String(s) if is_valid_topic_name(s) => Ok(s.clone()),
            _ => Err(bad("error_topics_format")),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let payload = match present("payload") {
        None => return Err(missing("payload")),
        Some(Value::String(s)) if s.is_empty() => return Err(bad("payload can not be empty")),
        Some(Value::String(s)) => s.as_str(),
        // JSON given as an object is sent as its text (the field is "json, xml, raw").
        Some(other) => return check_rest(fields.clone(), sender, topics, other.to_string()),
    };
    check_rest(fields.clone(), sender, topics, payload.to_string())
}

fn check_rest(
    fields: serde_json::Map<String, Value>,
    sender: String,
    topics: Vec<String>,
    payload: String,
) -> Result<Checked, Error> {
    let present = |name: &str| fields.get(name).filter(|v| !v.is_null());
    let encoding = match present("encoding") {
        None => PayloadEncoding::Plain,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("plain") => PayloadEncoding::Plain,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("base64") => PayloadEncoding::Base64,
        Some(_) => return Err(bad("bad_json")),
    };
    let payload = encoding
        .decode(&payload)
        .map_err(|_| bad("bad base64 payload type"))?;
    if payload.is_empty() {
        return Err(bad("payload can not be empty"));
    }
    let qos = match present("qos") {
        None => 0,
        Some(v) => match integer(v) {
            Some(q @ 0..=2) => q as u8,
            _ => return Err(bad("invalid qos")),
        },
    };
    let retain = match present("retain") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => match integer(v) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(bad("bad_json")),
        },
    };
    let expire = match present("expire") {
        None => None,
        Some(v) => match integer(v) {
            Some(s) if s > 0 => Some((s as u64).clamp(EXPIRE_MIN_SECS, EXPIRE_MAX_SECS) as u32),
            _ => return Err(bad("bad_json")),
        },
    };
    Ok(Checked {
        topics,
        sender,
        payload,
        qos,
        retain,
        expire,
    })
}

/// Send a message
///
/// One message per topic, each with its own id; `clientid` is recorded as the
/// sender.
#[utoipa::path(
    post,
    path = "/openapi/v1/rm/chat/publish",
    tag = "message",
    request_body(content = PublishBody, example = json!({"topics": ["msg", "ll"], "clientid": "test1@mq7g4e", "payload": "hello", "qos": 1, "retain": 0, "expire": 86400})),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "One message id per topic", body = Reply<PublishReply>),
        (status = 400, description = "the appid cannnot use the service, clientid can not be empty, invalid clientid, clientid and appid doesn't match, topics array can not be empty, topics must be an array, topics array's size can not exceed 32, payload can not be empty, bad base64 payload type, invalid qos, bad_json, error_topics_format, payload_too_larger, Missing required parameters <name>", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
        (status = 500, description = "fail", body = ErrorReply),
    )
)]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    body: Bytes,
) -> Result<Reply<PublishReply>, Error> {
    auth.path.ensure_ours(ErrorBody::EmptyObject)?;
    let checked = check(&body, &state.config.app_id)?;
    let properties = PublishProperties {
        message_expiry_interval: checked.expire,
        ..PublishProperties::default()
    };
    let mut mids = Vec::with_capacity(checked.topics.len());
    for topic in checked.topics {
        let request = PublishRequest {
            topic,
            payload: checked.payload.clone(),
            qos: checked.qos,
            retain: checked.retain,
            properties: properties.clone(),
            sender: Some(checked.sender.clone()),
            mountpoint: Some(tenant_mountpoint(&state.config.app_id)),
        };
        let id = state
            .management
            .publish(request)
            .await
            .map_err(|e| match e {
                MgmtError::PayloadTooLarge => bad("payload_too_larger"),
                MgmtError::InvalidTopicName(_) => bad("error_topics_format"),
                MgmtError::InvalidQos(_) => bad("invalid qos"),
                other => Error::from(other).with_body(ErrorBody::EmptyObject),
            })?;
        mids.push(hex_id(id));
    }
    Ok(Reply::ok(PublishReply { mids }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> String {
        check(body.as_bytes(), "ab12cd").unwrap_err().msg
    }

    #[test]
    fn every_documented_error() {
        assert_eq!(msg("{"), "bad_json");
        assert_eq!(msg("[1]"), "bad_json");
        assert_eq!(
            msg(r#"{"topics":["a"],"payload":"x"}"#),
            "Missing required parameters clientid"
        );
        assert_eq!(
            msg(r#"{"clientid":"","topics":["a"],"payload":"x"}"#),
            "clientid can not be empty"
        );
        assert_eq!(
            msg(r#"{"clientid":"nodevice","topics":["a"],"payload":"x"}"#),
            "invalid clientid"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@zz99zz","topics":["a"],"payload":"x"}"#),
            "clientid and appid doesn't match"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","payload":"x"}"#),
            "Missing required parameters topics"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","topics":"a","payload":"x"}"#),
            "topics must be an array"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","topics":[],"payload":"x"}"#),
            "topics array can not be empty"
        );
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        let body =
            serde_json::json!({"clientid":"d@ab12cd","topics":many,"payload":"x"}).to_string();
        assert_eq!(msg(&body), "topics array's size can not exceed 32");
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","topics":["a/#"],"payload":"x"}"#),
            "error_topics_format"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","topics":["a"]}"#),
            "Missing required parameters payload"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","topics":["a"],"payload":""}"#),
            "payload can not be empty"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","topics":["a"],"payload":"%%%","encoding":"base64"}"#),
            "bad base64 payload type"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","topics":["a"],"payload":"x","qos":3}"#),
            "invalid qos"
        );
        assert_eq!(
            msg(r#"{"clientid":"d@ab12cd","topics":["a"],"payload":"x","qos":"x"}"#),
            "invalid qos"
        );
    }

    #[test]
    fn accepted_bodies() {
        let ok = check(
            br#"{"clientid":"d@ab12cd","topics":["a","b"],"payload":"aGk=","encoding":"base64","qos":1,"retain":1,"expire":28000}"#,
            "ab12cd",
        )
        .unwrap();
        assert_eq!(ok.payload, Bytes::from_static(b"hi"));
        assert_eq!(ok.topics, vec!["a".to_string(), "b".to_string()]);
        assert_eq!((ok.qos, ok.retain, ok.expire), (1, true, Some(86_400)));
        let ok = check(
            br#"{"clientid":"d@ab12cd","topics":["a"],"payload":"x","expire":999999}"#,
            "ab12cd",
        )
        .unwrap();
        assert_eq!(ok.expire, Some(259_200));
        assert_eq!((ok.qos, ok.retain), (0, false));
        let ok = check(
            br#"{"clientid":"d@ab12cd","topics":["a"],"payload":"x","qos":2.0,"retain":1.0}"#,
            "ab12cd",
        )
        .unwrap();
        assert_eq!((ok.qos, ok.retain), (2, true));
    }
}
