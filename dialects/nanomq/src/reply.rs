//! What the dialect sends back: bodies with NanoMQ's headers, and nng's HTML pages.
//!
//! NanoMQ's replies carry only `Content-Length` and `Content-Type`. Some replies (most
//! errors, every v1 reply) carry whatever Content-Type the *request* had, because the
//! server hands the request's type to its writer; such a reply is marked with
//! [`EchoRequestContentType`] and [`crate::mount`] copies the request's header in.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;

/// A response about to be written.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: ContentType,
    pub body: Bytes,
}

/// The Content-Type of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentType {
    Fixed(HeaderValue),
    /// The request's Content-Type, or none when the request had none.
    EchoRequest,
    None,
}

/// A reply that is only its result code: `{"code":N}`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct CodeReply {
    /// 0 on success; NanoMQ's result code otherwise.
    #[schema(example = 0)]
    pub code: u16,
}

/// Marks a response whose Content-Type is to be the request's.
#[derive(Debug, Clone, Copy)]
pub struct EchoRequestContentType;

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Reply {
    /// 200 with `value` as compact JSON, labelled `application/json`.
    pub fn json<T: Serialize>(value: &T) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{\"code\":102}".to_vec());
        Reply::json_bytes(Bytes::from(body))
    }

    /// 200 with JSON text composed by hand (where a `Value` would reorder keys).
    pub fn json_text(body: String) -> Reply {
        Reply::json_bytes(Bytes::from(body))
    }

    fn json_bytes(body: Bytes) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: ContentType::Fixed(APPLICATION_JSON),
            body,
        }
    }

    /// 204 without a body.
    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            content_type: ContentType::None,
            body: Bytes::new(),
        }
    }

    /// 200 `{"code":N}`: NanoMQ reports several handler outcomes this way.
    pub fn code(code: u16) -> Reply {
        Reply::json_text(format!("{{\"code\":{code}}}"))
    }

    pub fn text(content_type: &'static str, body: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: ContentType::Fixed(HeaderValue::from_static(content_type)),
            body: Bytes::from(body),
        }
    }
}

impl IntoResponse for Reply {
    /// `Content-Length` is explicit so a HEAD answer keeps it while the body is
    /// dropped, as NanoMQ's does.
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        // A 204 has no body and must not announce one.
        if self.status != StatusCode::NO_CONTENT {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        match self.content_type {
            ContentType::Fixed(value) => {
                headers.insert(CONTENT_TYPE, value);
            }
            ContentType::EchoRequest => {
                response.extensions_mut().insert(EchoRequestContentType);
            }
            ContentType::None => {}
        }
        response
    }
}

/// Gives a response marked [`EchoRequestContentType`] the request's Content-Type.
pub fn echo_request_content_type(response: &mut Response, request_type: Option<HeaderValue>) {
    if response
        .extensions_mut()
        .remove::<EchoRequestContentType>()
        .is_some()
    {
        if let Some(value) = request_type {
            response.headers_mut().insert(CONTENT_TYPE, value);
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
        content_type: ContentType::Fixed(HeaderValue::from_static("text/html; charset=UTF-8")),
        body: Bytes::from(body),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn echoed_content_type() {
        let mut r = Reply {
            status: StatusCode::OK,
            content_type: ContentType::EchoRequest,
            body: Bytes::from_static(b"{}"),
        }
        .into_response();
        assert!(r.headers().get(CONTENT_TYPE).is_none());
        echo_request_content_type(&mut r, Some(HeaderValue::from_static("text/plain")));
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain");
        let mut r = Reply::code(0).into_response();
        echo_request_content_type(&mut r, Some(HeaderValue::from_static("text/plain")));
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    }
}
