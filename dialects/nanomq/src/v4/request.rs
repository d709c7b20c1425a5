//! Reading a v4 request as NanoMQ reads it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::{Map, Value};

use crate::error::Error;

/// The body as a JSON object, or 400 `{"code":109}`.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::not_json()),
    }
}

/// The body as a JSON array, or 400 `{"code":109}`.
pub fn json_array(body: &[u8]) -> Result<Vec<Value>, Error> {
    match serde_json::from_slice(body) {
        Ok(Value::Array(items)) => Ok(items),
        _ => Err(Error::not_json()),
    }
}

/// The last path segment as it was sent: NanoMQ never percent-decodes
/// (`/clients/client%2Dv5` names the client `client%2Dv5`). Every v4 path parameter is
/// a last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSegment(pub String);

#[axum::async_trait]
impl<S: Send + Sync> FromRequestParts<S> for RawSegment {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let path = parts.uri.path();
        let segment = path.rsplit('/').next().unwrap_or_default();
        Ok(RawSegment(segment.to_string()))
    }
}
