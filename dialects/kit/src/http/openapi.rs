//! OpenAPI touches every dialect's document needs: security schemes, sample
//! values Swagger UI can send as they are, and the payload-encoding rule of
//! publish bodies.

use serde_json::{json, Value};
use utoipa::openapi::content::Content;
use utoipa::openapi::path::{Operation, Parameter};
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayItems, Object, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr};

/// Declares HTTP Basic authentication as the security scheme `basic`.
pub fn declare_basic_auth(document: &mut OpenApi) {
    declare_security_scheme(
        document,
        "basic",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
    );
}

/// Declares `scheme` under `name`.
pub fn declare_security_scheme(document: &mut OpenApi, name: &str, scheme: SecurityScheme) {
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(name, scheme);
}

/// A `payload` that `encoding` says is base64: standard alphabet, `=` padding
/// optional, no stray bits in the last character (what
/// [`super::payload::PayloadEncoding::Base64`] decodes).
pub const BASE64_PATTERN: &str =
    "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]={0,2}|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=?)?$";

/// The rule tying a publish body's `payload` to its `encoding` (`plain` or
/// `base64`, any case): either the encoding is absent, null or plain, or it is
/// base64 and the payload is base64 text. Combine it with the body's schema in
/// an `allOf`.
pub fn payload_encoding_rule(encoding: &str, payload: &str) -> Schema {
    let text_matching = |pattern: &str| {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .pattern(Some(pattern))
    };
    let plain = ObjectBuilder::new().property(encoding, text_matching("^[pP][lL][aA][iI][nN]$"));
    let base64 = ObjectBuilder::new()
        .property(
            encoding,
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[bB][aA][sS][eE]64$")),
        )
        .property(payload, text_matching(BASE64_PATTERN))
        .required(encoding);
    Schema::AnyOf(AnyOfBuilder::new().item(plain).item(base64).build())
}

/// Swagger UI fills an integer that has no example with the largest value of
/// its format (1073741824 for `int32`, 9007199254740991 for `int64`), so a
/// request pre-filled from the schema would ask for QoS 1073741824. Every integer
/// schema without an example, enum or default gets its minimum (or 0) instead.
///
/// Returns `doc` with an example on every integer schema that lacks one.
pub fn fill_integer_examples(mut doc: OpenApi) -> OpenApi {
    if let Some(components) = doc.components.as_mut() {
        components.schemas.values_mut().for_each(fill_ref);
    }
    for item in doc.paths.paths.values_mut() {
        item.parameters
            .iter_mut()
            .flatten()
            .for_each(fill_parameter);
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            fill_operation(operation);
        }
    }
    doc
}

fn fill_operation(operation: &mut Operation) {
    operation
        .parameters
        .iter_mut()
        .flatten()
        .for_each(fill_parameter);
    if let Some(body) = operation.request_body.as_mut() {
        body.content.values_mut().for_each(fill_content);
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.content.values_mut().for_each(fill_content);
        }
    }
}

fn fill_parameter(parameter: &mut Parameter) {
    parameter.schema.iter_mut().for_each(fill_ref);
}

fn fill_content(content: &mut Content) {
    content.schema.iter_mut().for_each(fill_ref);
}

fn fill_ref(schema: &mut RefOr<Schema>) {
    if let RefOr::T(schema) = schema {
        fill(schema);
    }
}

fn fill(schema: &mut Schema) {
    match schema {
        Schema::Object(object) => {
            if is_integer(&object.schema_type) && !has_sample(object) {
                set_example(object, json!(lowest(object)));
            }
            object.properties.values_mut().for_each(fill_ref);
            if let Some(AdditionalProperties::RefOr(extra)) =
                object.additional_properties.as_deref_mut()
            {
                fill_ref(extra);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                fill_ref(items);
            }
        }
        Schema::AllOf(all) => all.items.iter_mut().for_each(fill_ref),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(fill_ref),
        Schema::OneOf(one) => one.items.iter_mut().for_each(fill_ref),
        _ => {}
    }
}

fn is_integer(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(t) => *t == Type::Integer,
        SchemaType::Array(types) => types.contains(&Type::Integer),
        SchemaType::AnyValue => false,
    }
}

/// `example` is what Swagger UI pre-fills from (also for OpenAPI 3.1 documents).
#[allow(deprecated)]
fn set_example(object: &mut Object, example: Value) {
    object.example = Some(example);
}

#[allow(deprecated)]
fn has_sample(object: &Object) -> bool {
    object.example.is_some()
        || !object.examples.is_empty()
        || object.enum_values.is_some()
        || object.default.is_some()
}

/// The smallest value the schema allows, or 0 when it allows 0.
fn lowest(object: &Object) -> i64 {
    let bound = |n: &Option<utoipa::Number>| {
        n.as_ref()
            .and_then(|n| serde_json::to_value(n).ok())
            .and_then(|v| v.as_f64())
    };
    let minimum = bound(&object.minimum).map(|m| m.ceil() as i64);
    let exclusive = bound(&object.exclusive_minimum).map(|m| m.floor() as i64 + 1);
    match (minimum, exclusive) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 0,
    }
}

/// JSON pointers to the integer schemas of a serialized document that still have
/// no sample (example, enum or default), for the dialects' tests.
pub fn integers_without_example(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![(String::new(), document)];
    while let Some((at, value)) = pending.pop() {
        match value {
            Value::Object(map) => {
                let integer = match map.get("type") {
                    Some(Value::String(t)) => t == "integer",
                    Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                    _ => false,
                };
                let sampled = ["example", "examples", "enum", "default"]
                    .iter()
                    .any(|k| map.contains_key(*k));
                if integer && !sampled {
                    found.push(at.clone());
                }
                pending.extend(map.iter().map(|(k, v)| (format!("{at}/{k}"), v)));
            }
            Value::Array(items) => pending.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{at}/{i}"), v)),
            ),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::payload::PayloadEncoding;

    /// The pattern accepts exactly what the decoder decodes: every string of up to
    /// three alphabet characters plus padding, and longer samples.
    #[test]
    fn base64_pattern_matches_the_decoder() {
        let pattern = regex::Regex::new(BASE64_PATTERN).unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut samples = vec![String::new()];
        for len in 1..=3 {
            let shorter: Vec<String> = samples
                .iter()
                .filter(|s| s.len() == len - 1)
                .cloned()
                .collect();
            for s in shorter {
                samples.extend(alphabet.chars().map(|c| format!("{s}{c}")));
            }
        }
        let padded: Vec<String> = samples
            .iter()
            .flat_map(|s| [format!("{s}="), format!("{s}=="), format!("{s}===")])
            .collect();
        samples.extend(padded);
        samples.extend(
            [
                "QUJD",
                "QUJDRA",
                "QUJDRA==",
                "SGVsbG8+/w==",
                "QUJDR",
                "aGk===",
                "***",
            ]
            .map(String::from),
        );
        for s in &samples {
            assert_eq!(
                pattern.is_match(s),
                PayloadEncoding::Base64.decode(s).is_ok(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn integers_without_examples_get_their_lowest_value() {
        use utoipa::openapi::{ComponentsBuilder, OpenApiBuilder};
        let integer = |min: Option<f64>, exclusive: Option<f64>| {
            let mut o = ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                .build();
            o.minimum = min.map(Into::into);
            o.exclusive_minimum = exclusive.map(Into::into);
            o
        };
        let kept = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .examples([json!(7)])
            .build();
        let flag = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some([1, 2]))
            .build();
        let body = ObjectBuilder::new()
            .property("qos", integer(Some(0.0), None))
            .property("page", integer(Some(1.0), None))
            .property("ttl", integer(None, Some(60.0)))
            .property("kept", kept)
            .property("flag", flag)
            .property("name", ObjectBuilder::new().schema_type(Type::String))
            .property("plain", integer(None, None))
            .build();
        let doc = OpenApiBuilder::new()
            .components(Some(ComponentsBuilder::new().schema("Body", body).build()))
            .build();
        let doc = fill_integer_examples(doc);
        // Declaration order is kept (the document is not round-tripped through a
        // sorted map).
        let Some(RefOr::T(Schema::Object(filled))) =
            doc.components.as_ref().and_then(|c| c.schemas.get("Body"))
        else {
            panic!("the schema is still there");
        };
        let names: Vec<&str> = filled.properties.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["qos", "page", "ttl", "kept", "flag", "name", "plain"]
        );
        let doc = serde_json::to_value(doc).unwrap();
        let p = &doc["components"]["schemas"]["Body"]["properties"];
        assert_eq!(p["qos"]["example"], json!(0));
        assert_eq!(p["page"]["example"], json!(1));
        assert_eq!(p["ttl"]["example"], json!(61));
        assert_eq!(p["plain"]["example"], json!(0));
        assert_eq!(p["kept"]["examples"], json!([7]));
        assert_eq!(p["kept"].get("example"), None);
        assert_eq!(p["flag"].get("example"), None);
        assert_eq!(p["name"].get("example"), None);
        assert!(integers_without_example(&doc).is_empty());
        let bare = json!({"a": [{"type": "integer"}]});
        assert_eq!(integers_without_example(&bare), ["/a/0"]);
    }
}
