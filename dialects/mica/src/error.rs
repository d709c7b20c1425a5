//! mica-mqtt's result codes, the one error type that renders them, and the JSON
//! envelope successes share with it.
//!
//! Every answer of the API is JSON with a `code`: `1` on success, otherwise one of
//! the failure codes below, each tied to one HTTP status (mica's `ResultCode`).

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mqgate_kit::MgmtError;
use serde::Serialize;
use utoipa::ToSchema;

/// The `code` of a successful answer.
pub const CODE_OK: i32 = 1;

/// The realm mica-mqtt names in its 401 challenge.
pub const BASIC_REALM: &str = "Basic realm=\"Mica mqtt realm\"";

/// A failed call, rendered as `{"code":N}` with N's HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 400 `{"code":101}`: a key parameter is missing or blank. mica also uses it
    /// for "client not connected" and "subscription qos out of range".
    MissingParam,
    /// 400 `{"code":102}`: a parameter is present but invalid (topic syntax).
    InvalidParam,
    /// 401 `{"code":103}` with the Basic challenge.
    Unauthorized,
    /// 500 `{"code":105}`: anything that went wrong while handling the request
    /// (malformed JSON, undecodable payload, broker failure).
    Unknown,
    /// 404 `{"code":404}`: no route has this path and method.
    NotFound,
}

impl Error {
    pub fn code(&self) -> i32 {
        match self {
            Error::MissingParam => 101,
            Error::InvalidParam => 102,
            Error::Unauthorized => 103,
            Error::Unknown => 105,
            Error::NotFound => 404,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::MissingParam | Error::InvalidParam => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            Error::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

impl From<MgmtError> for Error {
    fn from(error: MgmtError) -> Self {
        match error {
            MgmtError::ClientNotFound | MgmtError::InvalidQos(_) => Error::MissingParam,
            MgmtError::InvalidTopicName(_)
            | MgmtError::InvalidTopicFilter(_)
            | MgmtError::PayloadTooLarge
            | MgmtError::InvalidSetting(_) => Error::InvalidParam,
            MgmtError::Unsupported(_)
            | MgmtError::Timeout
            | MgmtError::ShuttingDown
            | MgmtError::Store(_)
            | MgmtError::Internal(_) => Error::Unknown,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status(), &CodeResponse { code: self.code() });
        if self == Error::Unauthorized {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(BASIC_REALM));
        }
        response
    }
}

/// An answer that carries only its result code: `{"code":1}` on success, or a
/// failure code.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"code": 1}))]
pub struct CodeResponse {
    /// 1 on success; 101, 102, 103, 105 or 404 on failure.
    pub code: i32,
}

/// `{"code":1}`.
pub fn ok_without_data() -> Response {
    json_response(StatusCode::OK, &CodeResponse { code: CODE_OK })
}

/// `value` as JSON with mica's bare `application/json` content type (no charset).
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        // Only a non-string map key or a failing Serialize impl gets here; neither
        // exists in this crate, but a panic would be worse than a 500.
        Err(_) => {
            let mut response =
                (StatusCode::INTERNAL_SERVER_ERROR, r#"{"code":105}"#).into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_errors_map_onto_result_codes() {
        assert_eq!(Error::from(MgmtError::ClientNotFound).code(), 101);
        assert_eq!(
            Error::from(MgmtError::InvalidTopicFilter("a#".into())).code(),
            102
        );
        assert_eq!(Error::from(MgmtError::Timeout).code(), 105);
        assert_eq!(Error::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(Error::Unauthorized.status(), StatusCode::UNAUTHORIZED);
    }
}
