//! The one error type of the dialect. RealMQ documents HTTP statuses but no error
//! body, so errors use EMQX 4's `{"code":<n>,"message":…}` envelope (RealMQ copies
//! EMQX 4 everywhere else); the README has the full table.

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mqgate_kit::http::body::closing_connection;
use mqgate_kit::MgmtError;
use serde::Serialize;
use utoipa::ToSchema;

/// Body of every failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Non-zero result code (see the crate README).
    #[schema(example = 107)]
    pub code: u32,
    #[schema(example = "missing parameter: name")]
    pub message: String,
}

/// A failed request: the HTTP status and the result code that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl Error {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Error {
            status,
            code,
            message: message.into(),
        }
    }

    /// 500 / 101: the broker or the store failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 101, message)
    }

    /// 401 / 103: wrong user or password, bad or expired token.
    pub fn bad_credentials(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 103, message)
    }

    /// 401 / 104: no credentials at all.
    pub fn missing_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            104,
            "missing credentials: use Basic or Bearer authorization",
        )
    }

    /// 404 / 105: no such path or object.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, 105, message)
    }

    /// 400 / 107: a required parameter is absent or empty.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            107,
            format!("missing parameter: {name}"),
        )
    }

    /// 400 / 108: a parameter has the wrong type or an unacceptable value.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 108, message)
    }

    /// 400 / 109: the body is not JSON.
    pub fn not_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 109, message)
    }

    /// 400 / 113: a unique field is already taken.
    pub fn already_exists(field: &str, value: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            113,
            format!("{field} already exists: {value}"),
        )
    }

    /// 400 / 115: not a valid topic name or filter.
    pub fn bad_topic(topic: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            115,
            format!("invalid topic: {topic:?}"),
        )
    }

    /// 400 / 116: QoS outside 0..=2.
    pub fn bad_qos(qos: i64) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            116,
            format!("invalid qos {qos}: must be 0, 1 or 2"),
        )
    }

    /// 400 / 117: the product still owns devices.
    pub fn product_has_devices(count: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            117,
            format!("the product still has {count} device(s): delete them first"),
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone(),
        }
    }
}

impl From<MgmtError> for Error {
    fn from(e: MgmtError) -> Self {
        match e {
            MgmtError::ClientNotFound => Error::not_found("client not found"),
            MgmtError::InvalidTopicName(t) | MgmtError::InvalidTopicFilter(t) => {
                Error::bad_topic(&t)
            }
            MgmtError::InvalidQos(q) => Error::bad_qos(q.into()),
            MgmtError::PayloadTooLarge => Error::invalid_parameter("payload too large"),
            MgmtError::InvalidSetting(s) => Error::invalid_parameter(s),
            other => Error::internal(other.to_string()),
        }
    }
}

impl From<mqgate_kit::store::StoreError> for Error {
    fn from(e: mqgate_kit::store::StoreError) -> Self {
        Error::internal(e.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// The answer to a path the dialect does not serve.
pub async fn no_such_path() -> Error {
    Error::not_found("no such path")
}

/// Answers that axum produces on its own (wrong method, undecodable path,
/// oversized body) are plain text; they are rewritten into the vendor envelope
/// with a status from RealMQ's table, which has no 405 or 413.
pub async fn vendor_envelope(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = response.status();
    if is_json || status.is_success() {
        return response;
    }
    let detail = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => {
            Error::not_found("no such path for this method")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            return closing_connection(
                Error::invalid_parameter("the request body is too large").into_response(),
            );
        }
        s if s.is_client_error() => Error::invalid_parameter(format!("invalid request: {detail}")),
        _ => Error::internal(detail),
    };
    error.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_errors_keep_their_meaning() {
        let e: Error = MgmtError::InvalidTopicName("a/+".into()).into();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, 115));
        let e: Error = MgmtError::InvalidQos(3).into();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, 116));
        let e: Error = MgmtError::Timeout.into();
        assert_eq!((e.status, e.code), (StatusCode::INTERNAL_SERVER_ERROR, 101));
    }
}
