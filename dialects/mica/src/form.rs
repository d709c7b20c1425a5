//! Reading request input the way mica-mqtt does.
//!
//! JSON endpoints take the raw body whatever its Content-Type and ignore the
//! query string; the `clientId` / `_page` / `_limit` endpoints take the query
//! string or a urlencoded body ([`FormParams`]). mica reads JSON with Jackson, which
//! coerces scalars (`"qos":"1"`, `"topic":123`, `"retain":"true"`); the
//! [`lenient`] field readers accept the same and refuse what Jackson refuses.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mqgate_kit::http::body::{closing_connection, parse_json, JsonBodyError};
use mqgate_kit::http::params::Params;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;

use crate::error::Error;

/// The request body as bytes. A body over the size limit (2 MiB, as mica's) is a
/// 500 `{"code":105}` rather than axum's plain-text 413 (mica drops the
/// connection instead; we answer, then close it, as the rest is unread).
pub struct RawBody(pub Bytes);

#[axum::async_trait]
impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|_| closing_connection(Error::Unknown.into_response()))
    }
}

/// Parameters of the query string and of a urlencoded body: mica reads
/// `clientId`, `_page`, `_limit` and `delay` from either.
pub struct FormParams(pub Params);

#[axum::async_trait]
impl<S: Send + Sync> FromRequest<S> for FormParams {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().map(str::to_owned);
        let headers = req.headers().clone();
        let RawBody(body) = RawBody::from_request(req, state).await?;
        Ok(FormParams(Params::from_query_and_form(
            query.as_deref(),
            &headers,
            &body,
        )))
    }
}

/// The OpenAPI schema of a batch body: an array of one or more `T` (an empty batch is
/// 400 `{"code":101}`).
pub(crate) fn batch_schema<T: ToSchema>() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(RefOr::Ref(Ref::from_schema_name(T::name())))
        .min_items(Some(1))
        .into()
}

/// Declares `$batch`, the OpenAPI schema of a batch of `$form`s.
macro_rules! batch_of {
    ($batch:ident, $form:ty) => {
        #[doc = concat!("A batch of one or more `", stringify!($form), "`s.")]
        pub struct $batch;

        impl utoipa::PartialSchema for $batch {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::form::batch_schema::<$form>()
            }
        }

        impl utoipa::ToSchema for $batch {
            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                schemas.push((
                    <$form as utoipa::ToSchema>::name().into_owned(),
                    <$form as utoipa::PartialSchema>::schema(),
                ));
                <$form as utoipa::ToSchema>::schemas(schemas);
            }
        }
    };
}
pub(crate) use batch_of;

/// A required parameter: missing or blank (whitespace only) is 400 `{"code":101}`.
pub fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, Error> {
    params
        .get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(Error::MissingParam)
}

/// An integer parameter as Java's `Integer.parseInt` reads it: anything that is
/// not a 32-bit decimal integer counts as absent (the caller's default applies).
pub fn int_param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).filter(|v| v.trim().parse::<i32>().is_ok())
}

/// Reads a JSON body holding one object.
///
/// No body at all or JSON `null` is 400 `{"code":101}`; anything that is not a
/// JSON object (whitespace only, malformed JSON, an array, a field of the wrong
/// type) is 500 `{"code":105}`.
pub fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    match json_value(body)? {
        Value::Null => Err(Error::MissingParam),
        value @ Value::Object(_) => serde_json::from_value(value).map_err(|_| Error::Unknown),
        _ => Err(Error::Unknown),
    }
}

/// Reads a JSON body holding an array of objects, as [`json_object`] reads one.
/// An empty array, or a `null` element, is 400 `{"code":101}`.
pub fn json_array<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, Error> {
    let items = match json_value(body)? {
        Value::Null => return Err(Error::MissingParam),
        Value::Array(items) => items,
        _ => return Err(Error::Unknown),
    };
    if items.is_empty() {
        return Err(Error::MissingParam);
    }
    let mut forms = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Null => return Err(Error::MissingParam),
            value @ Value::Object(_) => {
                forms.push(serde_json::from_value(value).map_err(|_| Error::Unknown)?)
            }
            _ => return Err(Error::Unknown),
        }
    }
    Ok(forms)
}

fn json_value(body: &[u8]) -> Result<Value, Error> {
    if body.is_empty() {
        return Err(Error::MissingParam);
    }
    parse_json::<Value>(body).map_err(|e| match e {
        // Only whitespace: mica hands it to Jackson, which fails.
        JsonBodyError::Empty | JsonBodyError::Syntax(_) | JsonBodyError::Shape(_) => Error::Unknown,
    })
}

/// Field readers with Jackson's default scalar coercions. Each takes JSON `null`
/// (and an absent field, with `#[serde(default)]`) as `None`.
pub mod lenient {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A string; numbers and booleans are taken as their text.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            _ => Err(D::Error::custom("expected a string")),
        }
    }

    /// A 32-bit integer; a fraction is truncated, a numeric string is parsed, an
    /// empty string is absent.
    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
        let number = match Value::deserialize(d)? {
            Value::Null => return Ok(None),
            Value::Number(n) => n.as_i64().map(|i| i as f64).or_else(|| n.as_f64()),
            Value::String(s) if s.trim().is_empty() => return Ok(None),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match number {
            Some(n)
                if n.is_finite()
                    && n.trunc() >= i32::MIN as f64
                    && n.trunc() <= i32::MAX as f64 =>
            {
                Ok(Some(n.trunc() as i32))
            }
            _ => Err(D::Error::custom("expected a 32-bit integer")),
        }
    }

    /// A boolean; `"true"`/`"false"` in any case and integers (0 is false) too.
    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(b)),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(n.as_f64() != Some(0.0))),
            _ => Err(D::Error::custom("expected a boolean")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Probe {
        #[serde(default, deserialize_with = "lenient::string")]
        topic: Option<String>,
        #[serde(default, deserialize_with = "lenient::int")]
        qos: Option<i32>,
        #[serde(default, deserialize_with = "lenient::boolean")]
        retain: Option<bool>,
    }

    fn probe(json: &str) -> Result<Probe, Error> {
        json_object(json.as_bytes())
    }

    #[test]
    fn jackson_coercions() {
        let p = probe(r#"{"topic":123,"qos":"1","retain":"TRUE","other":[1]}"#).unwrap();
        assert_eq!(
            p,
            Probe {
                topic: Some("123".into()),
                qos: Some(1),
                retain: Some(true)
            }
        );
        let p = probe(r#"{"qos":1.9,"retain":0}"#).unwrap();
        assert_eq!((p.qos, p.retain, p.topic), (Some(1), Some(false), None));
        let p = probe(r#"{"topic":null,"qos":null,"retain":""}"#).unwrap();
        assert_eq!((p.qos, p.retain, p.topic), (None, None, None));
        assert_eq!(probe(r#"{"qos":"abc"}"#), Err(Error::Unknown));
        assert_eq!(probe(r#"{"qos":true}"#), Err(Error::Unknown));
        assert_eq!(probe(r#"{"qos":4294967296}"#), Err(Error::Unknown));
        assert_eq!(probe(r#"{"topic":{"a":1}}"#), Err(Error::Unknown));
        assert_eq!(probe(r#"{"retain":"yes"}"#), Err(Error::Unknown));
    }

    #[test]
    fn body_shapes() {
        assert_eq!(probe(""), Err(Error::MissingParam));
        assert_eq!(probe("null"), Err(Error::MissingParam));
        assert_eq!(probe("  \n"), Err(Error::Unknown));
        assert_eq!(probe("{"), Err(Error::Unknown));
        assert_eq!(probe(r#"[{"topic":"a"}]"#), Err(Error::Unknown));
        assert_eq!(probe("42"), Err(Error::Unknown));
        let batch = |s: &str| json_array::<Probe>(s.as_bytes());
        assert_eq!(batch("[]"), Err(Error::MissingParam));
        assert_eq!(batch("null"), Err(Error::MissingParam));
        assert_eq!(batch(r#"[{"topic":"a"},null]"#), Err(Error::MissingParam));
        assert_eq!(batch(r#"{"topic":"a"}"#), Err(Error::Unknown));
        assert_eq!(batch(r#"[{"topic":"a"},"b"]"#), Err(Error::Unknown));
        assert_eq!(batch(r#"[{"topic":"a"},{"qos":"x"}]"#), Err(Error::Unknown));
        assert_eq!(batch(r#"[{"topic":"a"},{}]"#).unwrap().len(), 2);
    }

    #[test]
    fn query_parameters() {
        let p = Params::from_query(Some("clientId=%20&_page=abc&_limit=99999999999"));
        assert_eq!(required(&p, "clientId"), Err(Error::MissingParam));
        assert_eq!(int_param(&p, "_page"), None);
        assert_eq!(int_param(&p, "_limit"), None);
        let p = Params::from_query_and_form(
            None,
            &axum::http::HeaderMap::new(),
            b"clientId=c1&_page=-2",
        );
        assert_eq!(required(&p, "clientId"), Ok("c1"));
        assert_eq!(int_param(&p, "_page"), Some("-2"));
    }
}
