//! The one error type of the dialect. RealMQ documents HTTP statuses but no error
//! body, so errors use EMQX 4's `{"code":<n>,"message":…}` envelope (RealMQ copies
//! EMQX 4 everywhere else); the README has the full table.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
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

impl From<MgmtError> for ApiError {
    fn from(e: MgmtError) -> Self {
        match e {
            MgmtError::ClientNotFound => ApiError::not_found("client not found"),
            MgmtError::InvalidTopicName(t) | MgmtError::InvalidTopicFilter(t) => {
                ApiError::bad_topic(&t)
            }
            MgmtError::InvalidQos(q) => ApiError::bad_qos(q.into()),
            MgmtError::PayloadTooLarge => ApiError::invalid_parameter("payload too large"),
            MgmtError::InvalidSetting(s) => ApiError::invalid_parameter(s),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<mqgate_kit::store::StoreError> for ApiError {
    fn from(e: mqgate_kit::store::StoreError) -> Self {
        ApiError::internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_errors_keep_their_meaning() {
        let e: ApiError = MgmtError::InvalidTopicName("a/+".into()).into();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, 115));
        let e: ApiError = MgmtError::InvalidQos(3).into();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, 116));
        let e: ApiError = MgmtError::Timeout.into();
        assert_eq!((e.status, e.code), (StatusCode::INTERNAL_SERVER_ERROR, 101));
    }
}
