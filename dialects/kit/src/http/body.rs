//! JSON request bodies read whatever the Content-Type, with the failure spelled out
//! so each dialect can answer in its vendor's shape.

use axum::http::header::CONNECTION;
use axum::http::HeaderValue;
use axum::response::Response;
use serde::de::DeserializeOwned;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonBodyError {
    /// No body, or only whitespace.
    Empty,
    /// Not JSON at all.
    Syntax(String),
    /// JSON, but not of the expected shape or types.
    Shape(String),
}

/// Parses `body` as JSON into `T`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, JsonBodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonBodyError::Empty);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| JsonBodyError::Syntax(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| JsonBodyError::Shape(e.to_string()))
}

/// Marks an answer given without reading the whole request body (a body over the
/// limit): the connection closes after it, so a client does not send its next
/// request on a connection that still holds the unread rest (it would see the
/// connection drop instead of an answer).
pub fn closing_connection(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
