//! The Easemob envelope, `{"code":…,"msg":…,"body":…}`, for answers and errors.
//! The HTTP status always equals the body's `code`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mqgate_kit::MgmtError;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// A successful answer: `{"code":200,"msg":"success","body":…}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reply<T> {
    /// Always 200.
    pub code: u16,
    /// Always "success".
    pub msg: String,
    pub body: T,
}

impl<T: Serialize> Reply<T> {
    pub fn ok(body: T) -> Reply<T> {
        Reply {
            code: 200,
            msg: "success".into(),
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// The error envelope as documented: `code` repeats the HTTP status, `msg` is one of
/// the vendor's error strings; `body` is `null`, `{}`, or absent (403).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorReply {
    pub code: u16,
    pub msg: String,
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// What `body` holds in an error answer. The vendor's examples differ per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorBody {
    /// `"body":null`, most operations.
    Null,
    /// `"body":{}`, the publish operation.
    EmptyObject,
    /// no `body` key, the 403 answer.
    Absent,
}

/// An error in the vendor's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: StatusCode,
    pub msg: String,
    pub body: ErrorBody,
}

impl Error {
    /// 400 with `"body":null`.
    pub fn bad_request(msg: impl Into<String>) -> Error {
        Error {
            status: StatusCode::BAD_REQUEST,
            msg: msg.into(),
            body: ErrorBody::Null,
        }
    }

    /// 403 `access deny`: missing, unknown or expired app token.
    pub fn access_deny() -> Error {
        Error {
            status: StatusCode::FORBIDDEN,
            msg: "access deny".into(),
            body: ErrorBody::Absent,
        }
    }

    pub fn page_not_found() -> Error {
        Error {
            status: StatusCode::NOT_FOUND,
            msg: "page not found".into(),
            body: ErrorBody::Null,
        }
    }

    /// 500 `fail`: the broker or the store could not answer.
    pub fn fail() -> Error {
        Error {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            msg: "fail".into(),
            body: ErrorBody::Null,
        }
    }

    pub fn with_body(mut self, body: ErrorBody) -> Error {
        self.body = body;
        self
    }
}

impl From<MgmtError> for Error {
    fn from(e: MgmtError) -> Self {
        tracing::warn!("easemob: broker error: {e}");
        Error::fail()
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.status.as_u16();
        let value = match self.body {
            ErrorBody::Null => json!({"code": code, "msg": self.msg, "body": null}),
            ErrorBody::EmptyObject => json!({"code": code, "msg": self.msg, "body": {}}),
            ErrorBody::Absent => json!({"code": code, "msg": self.msg}),
        };
        (self.status, Json(value)).into_response()
    }
}

/// The JSON 404 for any path the dialect does not serve.
pub async fn page_not_found() -> Error {
    Error::page_not_found()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: Error) -> (StatusCode, String) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn envelopes_render_as_documented() {
        assert_eq!(
            body_of(Error::access_deny()).await,
            (
                StatusCode::FORBIDDEN,
                r#"{"code":403,"msg":"access deny"}"#.into()
            )
        );
        let (status, body) = body_of(
            Error::bad_request("clientid and appid doesn't match")
                .with_body(ErrorBody::EmptyObject),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            json!({"code":400,"msg":"clientid and appid doesn't match","body":{}})
        );
        let (_, body) = body_of(Error::page_not_found()).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v, json!({"code":404,"msg":"page not found","body":null}));
    }
}
