//! The one error type of both APIs, rendering NanoMQ's envelope: `{"code":C}` for v4,
//! `{"code":C,"seq":S[,"rep":R]}` for v1. Most errors carry the request's Content-Type
//! (none when the request had none); the handlers' own (`/ctrl/{bad}`,
//! `/configuration/{bad}`) say `application/json`, as NanoMQ's do.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::cjson;
use crate::reply::{ContentType, Reply};

/// Which Content-Type an error carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorLabel {
    /// The request's own Content-Type, or none (most errors).
    EchoRequest,
    /// `application/json`, for the errors NanoMQ's handlers write themselves.
    Json,
}

/// A failed request of either API.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub status: StatusCode,
    pub code: u16,
    pub label: ErrorLabel,
    /// v1's request sequence number and request code, echoed back.
    pub rpc: Option<(u64, i32)>,
    /// `"data":{}` after the code (`/configuration/{unknown}`).
    pub empty_data: bool,
}

impl Error {
    pub fn new(status: StatusCode, code: u16) -> Error {
        Error {
            status,
            code,
            label: ErrorLabel::EchoRequest,
            rpc: None,
            empty_data: false,
        }
    }

    /// 401: 103 wrong credentials, 104 no usable credentials, 116 expired token.
    pub fn unauthorized(code: u16) -> Error {
        Error::new(StatusCode::UNAUTHORIZED, code)
    }

    /// 400 `{"code":109}`: the body is not the JSON the endpoint needs.
    pub fn not_json() -> Error {
        Error::new(StatusCode::BAD_REQUEST, 109)
    }

    /// 400 `{"code":108}`: a parameter has a wrong value.
    pub fn bad_param() -> Error {
        Error::new(StatusCode::BAD_REQUEST, 108)
    }

    /// 404 `{"code":102}`: no such route.
    pub fn no_route() -> Error {
        Error::new(StatusCode::NOT_FOUND, 102)
    }

    /// 405 `{"code":102}`: a method other than GET, POST, PUT and DELETE.
    pub fn bad_method() -> Error {
        Error::new(StatusCode::METHOD_NOT_ALLOWED, 102)
    }

    pub fn labelled_json(mut self) -> Error {
        self.label = ErrorLabel::Json;
        self
    }

    pub fn with_empty_data(mut self) -> Error {
        self.empty_data = true;
        self
    }

    pub fn in_rpc(mut self, seq: u64, rep: i32) -> Error {
        self.rpc = Some((seq, rep));
        self
    }

    pub fn body(&self) -> String {
        let mut body = format!("{{\"code\":{}", self.code);
        if let Some((seq, rep)) = self.rpc {
            body.push_str(&format!(",\"seq\":{}", cjson::format_number(seq as f64)));
            if rep > 0 {
                body.push_str(&format!(",\"rep\":{rep}"));
            }
        }
        if self.empty_data {
            body.push_str(",\"data\":{}");
        }
        body.push('}');
        body
    }

    pub fn reply(&self) -> Reply {
        Reply {
            status: self.status,
            content_type: match self.label {
                ErrorLabel::EchoRequest => ContentType::EchoRequest,
                ErrorLabel::Json => {
                    ContentType::Fixed(HeaderValue::from_static("application/json"))
                }
            },
            body: Bytes::from(self.body()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.reply().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let r = Error::not_json().reply();
        assert_eq!(&r.body[..], b"{\"code\":109}");
        assert_eq!(r.content_type, ContentType::EchoRequest);
        let e = Error::new(StatusCode::NOT_FOUND, 108).in_rpc(1 << 63, i32::MIN);
        assert_eq!(e.body(), "{\"code\":108,\"seq\":9.2233720368547758e+18}");
        let e = Error::new(StatusCode::NOT_FOUND, 101)
            .labelled_json()
            .with_empty_data();
        assert_eq!(e.body(), "{\"code\":101,\"data\":{}}");
        assert_eq!(
            e.reply().content_type,
            ContentType::Fixed(HeaderValue::from_static("application/json"))
        );
    }
}
