//! What the dialect sends back: successful bodies, the one error type rendering
//! NanoMQ's `{"code":N}` envelope, and nng's HTML pages.
//!
//! NanoMQ's replies carry only `Content-Length` and `Content-Type`; an error's
//! Content-Type is whatever the request's was (none when the request had none), because
//! the server passes the request's content type to its error writer.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use crate::cjson;

/// A response about to be written.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Reply {
    /// 200 with `value` as compact JSON, labelled `application/json`.
    pub fn json<T: Serialize>(value: &T) -> Reply {
        Reply::json_with_status(StatusCode::OK, value)
    }

    pub fn json_with_status<T: Serialize>(status: StatusCode, value: &T) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{\"code\":102}".to_vec());
        Reply {
            status,
            content_type: Some(APPLICATION_JSON),
            body: Bytes::from(body),
        }
    }

    /// 200 with JSON text composed by hand (where a `Value` would reorder keys).
    pub fn json_text(body: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: Some(APPLICATION_JSON),
            body: Bytes::from(body),
        }
    }

    /// 204 without a body.
    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            content_type: None,
            body: Bytes::new(),
        }
    }

    /// 200 `{"code":N}`: NanoMQ reports several handler outcomes this way.
    pub fn code(code: u16) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: Some(APPLICATION_JSON),
            body: Bytes::from(format!("{{\"code\":{code}}}")),
        }
    }

    pub fn text(content_type: &'static str, body: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: Some(HeaderValue::from_static(content_type)),
            body: Bytes::from(body),
        }
    }

    /// Writes the response; `Content-Length` is explicit so a HEAD answer keeps it
    /// while the body is dropped, as NanoMQ's does.
    pub fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        // A 204 has no body and must not announce one.
        if self.status != StatusCode::NO_CONTENT {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        if let Some(content_type) = self.content_type {
            headers.insert(CONTENT_TYPE, content_type);
        }
        response
    }
}

/// Which Content-Type an error carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorLabel {
    /// The request's own Content-Type, or none (most errors).
    EchoRequest,
    /// `application/json`, for the errors NanoMQ's handlers write themselves.
    Json,
}

/// Every failure of either API, rendered as NanoMQ renders it:
/// `{"code":C}` for v4, `{"code":C,"seq":S[,"rep":R]}` for v1.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u16,
    pub label: ErrorLabel,
    /// v1's request sequence number and request code, echoed back.
    pub rpc: Option<(u64, i32)>,
    /// `"data":{}` after the code (`/configuration/{unknown}`).
    pub empty_data: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u16) -> ApiError {
        ApiError {
            status,
            code,
            label: ErrorLabel::EchoRequest,
            rpc: None,
            empty_data: false,
        }
    }

    /// 401: 103 wrong credentials, 104 no usable credentials, 116 expired token.
    pub fn unauthorized(code: u16) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code)
    }

    /// 400 `{"code":109}`: the body is not the JSON the endpoint needs.
    pub fn not_json() -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, 109)
    }

    /// 400 `{"code":108}`: a parameter has a wrong value.
    pub fn bad_param() -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, 108)
    }

    /// 404 `{"code":102}`: no such route.
    pub fn no_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, 102)
    }

    /// 405 `{"code":102}`: a method other than GET, POST, PUT and DELETE.
    pub fn bad_method() -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, 102)
    }

    pub fn labelled_json(mut self) -> ApiError {
        self.label = ErrorLabel::Json;
        self
    }

    pub fn with_empty_data(mut self) -> ApiError {
        self.empty_data = true;
        self
    }

    pub fn in_rpc(mut self, seq: u64, rep: i32) -> ApiError {
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

    /// The reply for a request that carried `request_content_type`.
    pub fn reply(&self, request_content_type: Option<&HeaderValue>) -> Reply {
        let content_type = match self.label {
            ErrorLabel::EchoRequest => request_content_type.cloned(),
            ErrorLabel::Json => Some(APPLICATION_JSON),
        };
        Reply {
            status: self.status,
            content_type,
            body: Bytes::from(self.body()),
        }
    }
}

/// nng's built-in HTML error page, which NanoMQ's listener answers for paths outside
/// its APIs (404 for GET, 405 otherwise) and for oversized bodies (400).
pub fn html_error(status: StatusCode) -> Response {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title>\n\
         <style>body {{ font-family: Arial, sans serif; text-align: center }}\n\
         h1 {{ font-size: 36px; }}span {{ background-color: gray; color: white; padding: 7px; \
         border-radius: 5px }}h2 {{ font-size: 24px; }}p {{ font-size: 20px; }}</style></head>\
         <body><p>&nbsp;</p><h1><span>{code}</span></h1><h2>{reason}</h2><p></p></body></html>"
    );
    Reply {
        status,
        content_type: Some(HeaderValue::from_static("text/html; charset=UTF-8")),
        body: Bytes::from(body),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let ct = HeaderValue::from_static("application/x-www-form-urlencoded");
        let r = ApiError::not_json().reply(Some(&ct));
        assert_eq!(&r.body[..], b"{\"code\":109}");
        assert_eq!(r.content_type, Some(ct.clone()));
        assert_eq!(ApiError::no_route().reply(None).content_type, None);
        let e = ApiError::new(StatusCode::NOT_FOUND, 108).in_rpc(1 << 63, i32::MIN);
        assert_eq!(e.body(), "{\"code\":108,\"seq\":9.2233720368547758e+18}");
        let e = ApiError::new(StatusCode::NOT_FOUND, 101)
            .labelled_json()
            .with_empty_data();
        assert_eq!(e.body(), "{\"code\":101,\"data\":{}}");
        assert_eq!(
            e.reply(Some(&ct)).content_type,
            Some(HeaderValue::from_static("application/json"))
        );
    }

    #[test]
    fn html_pages_have_nng_lengths() {
        for (status, len) in [
            (StatusCode::NOT_FOUND, 369),
            (StatusCode::METHOD_NOT_ALLOWED, 387),
            (StatusCode::BAD_REQUEST, 373),
        ] {
            let r = html_error(status);
            assert_eq!(r.headers()[CONTENT_LENGTH], len.to_string().as_str());
        }
    }
}
