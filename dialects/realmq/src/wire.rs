//! Wire mechanics shared by the resources: JSON bodies whose numeric flags come as
//! `"1"` or `1` and booleans as `true` or `1` (and the OpenAPI schemas that say
//! so), `_page`/`_limit` answered with string `meta.page`/`meta.limit`, and the
//! bare `{"code":0}` success reply.

use mqgate_kit::http::body::{parse_json, JsonBodyError};
use mqgate_kit::http::number::whole_number;
use mqgate_kit::http::paging::{self, page_request};
use mqgate_kit::http::params::Params;
use mqgate_kit::{Page, PageRequest};
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::openapi::schema::{SchemaType, Type};
use utoipa::ToSchema;

use crate::error::Error;

fn json_value(body: &[u8]) -> Result<serde_json::Value, Error> {
    parse_json(body).map_err(|e| match e {
        JsonBodyError::Empty => Error::not_json("the request body is empty: send a JSON document"),
        JsonBodyError::Syntax(m) | JsonBodyError::Shape(m) => {
            Error::not_json(format!("the request body is not valid JSON: {m}"))
        }
    })
}

/// Parses a body that must be one JSON object into `T`.
pub fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    object_from(json_value(body)?)
}

/// Parses a body that must be a JSON array; its elements are read one by one.
pub fn json_array(body: &[u8]) -> Result<Vec<serde_json::Value>, Error> {
    match json_value(body)? {
        serde_json::Value::Array(items) => Ok(items),
        _ => Err(Error::invalid_parameter(
            "the request body must be a JSON array",
        )),
    }
}

/// Reads one JSON object into `T`, naming the offending field on a type error.
pub fn object_from<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Error> {
    // serde would also read a struct from an array, positionally; nobody means that.
    if !value.is_object() {
        return Err(Error::invalid_parameter("expected a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::invalid_parameter(format!("invalid request body: {inner}"))
        } else {
            Error::invalid_parameter(format!("invalid parameter {path}: {inner}"))
        }
    })
}

/// A required string: absent, null or blank is a missing parameter.
pub fn required(value: Option<String>, name: &str) -> Result<String, Error> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(Error::missing_parameter(name)),
    }
}

/// Longest text accepted in any field, in characters (JSON Schema's `maxLength`
/// counts characters too); keeps one request from bloating the store.
pub const MAX_FIELD_LEN: usize = 1024;

/// Rejects a value longer than [`MAX_FIELD_LEN`] characters.
pub fn bounded(value: &str, name: &str) -> Result<(), Error> {
    // Only a value over MAX_FIELD_LEN bytes can be over MAX_FIELD_LEN characters.
    if value.len() > MAX_FIELD_LEN && value.chars().count() > MAX_FIELD_LEN {
        return Err(Error::invalid_parameter(format!(
            "{name} is longer than {MAX_FIELD_LEN} characters"
        )));
    }
    Ok(())
}

/// An integer sent as a JSON number (`1`, or `1.0` as JSON Schema allows) or as a
/// decimal string (`"1"`), as the
/// document's "String" typed flags and integer typed QoS both appear in the wild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenientInt(pub i64);

impl<'de> Deserialize<'de> for LenientInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => whole_number(&n)
                .map(LenientInt)
                .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
            serde_json::Value::String(s) => s
                .trim()
                .parse()
                .map(LenientInt)
                .map_err(|_| D::Error::custom(format!("expected an integer, got {s:?}"))),
            other => Err(D::Error::custom(format!(
                "expected an integer, got {other}"
            ))),
        }
    }
}

/// A boolean sent as `true`/`false`, `1`/`0` or their string forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenientBool(pub bool);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let parsed = match &value {
            serde_json::Value::Bool(b) => Some(*b),
            serde_json::Value::Number(n) => match whole_number(n) {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            serde_json::Value::String(s) => match s.trim() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed
            .map(LenientBool)
            .ok_or_else(|| D::Error::custom(format!("expected a boolean, got {value}")))
    }
}

/// Checks a numeric flag against its allowed values.
pub fn flag(
    value: Option<LenientInt>,
    name: &str,
    allowed: &[i64],
    default: i64,
) -> Result<i64, Error> {
    match value {
        None => Ok(default),
        Some(LenientInt(v)) if allowed.contains(&v) => Ok(v),
        Some(LenientInt(v)) => Err(Error::invalid_parameter(format!(
            "invalid {name} {v}: must be one of {allowed:?}"
        ))),
    }
}

/// The schema of a [`LenientInt`] flag: one of `values`, as a JSON number or a
/// decimal string, or null (the default).
pub fn flag_schema(description: &str, values: &[i64], example: i64) -> utoipa::openapi::Object {
    let allowed = values
        .iter()
        .map(|v| json!(v))
        .chain(values.iter().map(|v| json!(v.to_string())))
        .chain([Value::Null]);
    one_of_values(
        &[Type::Integer, Type::String],
        allowed,
        description,
        json!(example),
    )
}

/// The schema of a [`LenientBool`]: `true`/`false`, 1/0, their string forms, or
/// null (the default).
pub fn lenient_bool_schema(description: &str, example: bool) -> utoipa::openapi::Object {
    let allowed = [
        json!(true),
        json!(false),
        json!(1),
        json!(0),
        json!("true"),
        json!("false"),
        json!("1"),
        json!("0"),
        Value::Null,
    ];
    one_of_values(
        &[Type::Boolean, Type::Integer, Type::String],
        allowed,
        description,
        json!(example),
    )
}

/// A schema whose values are `allowed` (null among them), of `types` or null.
fn one_of_values(
    types: &[Type],
    allowed: impl IntoIterator<Item = Value>,
    description: &str,
    example: Value,
) -> utoipa::openapi::Object {
    let types = types.iter().cloned().chain([Type::Null]);
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter(types))
        .description(Some(description))
        .enum_values(Some(allowed))
        .examples([example])
        .build()
}

/// The reply of every operation that returns nothing but success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Done {
    #[schema(example = 0)]
    pub code: u32,
}

impl Done {
    pub const OK: Done = Done { code: 0 };
}

/// `meta` of every list response: page and limit are strings, as RealMQ sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Meta {
    #[schema(example = "1")]
    pub page: String,
    #[schema(example = "10")]
    pub limit: String,
    pub hasnext: bool,
    /// Matching items on all pages.
    #[schema(example = 1)]
    pub count: usize,
}

/// Default `_limit` of the product and device lists.
pub const DEFAULT_LIMIT: usize = 10;

/// The `_page`/`_limit` of a list request.
pub fn page_of(params: &Params) -> PageRequest {
    page_request(
        params.get("_page"),
        params.get("_limit"),
        DEFAULT_LIMIT,
        DEFAULT_LIMIT,
    )
}

/// Cuts one page out of `items` and describes it.
pub fn paginate<T>(items: Vec<T>, page: PageRequest) -> (Vec<T>, Meta) {
    let offset = page.offset();
    let Page { items, total } = paging::slice(items, page);
    let meta = Meta {
        page: page.page.to_string(),
        limit: page.limit.to_string(),
        hasnext: offset.saturating_add(items.len()) < total,
        count: total,
    };
    (items, meta)
}

/// Case-insensitive substring match, the fuzzy search of the name filters.
pub fn fuzzy_contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        n: Option<LenientInt>,
        #[serde(default)]
        b: Option<LenientBool>,
    }

    #[test]
    fn lenient_values() {
        let p: Probe = json_object(br#"{"n":"2","b":1}"#).unwrap();
        assert_eq!((p.n, p.b), (Some(LenientInt(2)), Some(LenientBool(true))));
        let p: Probe = json_object(br#"{"n":3,"b":"false"}"#).unwrap();
        assert_eq!((p.n, p.b), (Some(LenientInt(3)), Some(LenientBool(false))));
        let e = json_object::<Probe>(br#"{"n":"x"}"#).err().unwrap();
        assert_eq!(e.code, 108);
        assert!(e.message.contains("n"), "{}", e.message);
        assert_eq!(json_object::<Probe>(b"{").err().unwrap().code, 109);
        assert_eq!(json_object::<Probe>(b"").err().unwrap().code, 109);
        assert_eq!(json_object::<Probe>(b"[1]").err().unwrap().code, 108);
    }

    #[test]
    fn pages() {
        let (items, meta) = paginate((1..=25).collect::<Vec<_>>(), PageRequest::new(3, 10));
        assert_eq!(items, vec![21, 22, 23, 24, 25]);
        assert_eq!(
            meta,
            Meta {
                page: "3".into(),
                limit: "10".into(),
                hasnext: false,
                count: 25
            }
        );
        let (items, meta) = paginate((1..=25).collect::<Vec<_>>(), PageRequest::new(2, 10));
        assert_eq!(items.len(), 10);
        assert!(meta.hasnext);
        let (items, meta) = paginate((1..=5).collect::<Vec<_>>(), PageRequest::new(9, 10));
        assert!(items.is_empty());
        assert!(!meta.hasnext);
    }

    #[test]
    fn flags() {
        assert_eq!(flag(None, "type", &[1, 2], 1), Ok(1));
        assert_eq!(flag(Some(LenientInt(2)), "type", &[1, 2], 1), Ok(2));
        assert_eq!(
            flag(Some(LenientInt(3)), "type", &[1, 2], 1)
                .unwrap_err()
                .code,
            108
        );
    }
}
