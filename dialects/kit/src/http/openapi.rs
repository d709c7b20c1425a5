//! Touches every dialect's OpenAPI document needs.

use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr};

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

/// Gives every integer schema without an example one: its minimum, or 0.
///
/// Swagger UI pre-fills "Try it out" and its sample bodies from an integer's format
/// when the schema has no example: 1073741824 for `int32`, 9007199254740991 for
/// `int64`, which no API accepts as a QoS or a page size.
pub fn with_integer_examples(mut document: OpenApi) -> OpenApi {
    if let Some(components) = &mut document.components {
        components.schemas.values_mut().for_each(in_schema);
    }
    for item in document.paths.paths.values_mut() {
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
        operations.into_iter().flatten().for_each(in_operation);
    }
    document
}

fn in_operation(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        parameter.schema.iter_mut().for_each(in_schema);
    }
    if let Some(body) = &mut operation.request_body {
        body.content.values_mut().for_each(in_content);
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.content.values_mut().for_each(in_content);
        }
    }
}

fn in_content(content: &mut Content) {
    content.schema.iter_mut().for_each(in_schema);
}

/// Recursion follows the nesting of the dialect's own types, a handful of levels.
fn in_schema(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => {
            let integer = match &object.schema_type {
                SchemaType::Type(t) => *t == Type::Integer,
                SchemaType::Array(types) => types.contains(&Type::Integer),
                SchemaType::AnyValue => false,
            };
            if integer && object.example.is_none() && object.examples.is_empty() {
                let example = object
                    .minimum
                    .as_ref()
                    .and_then(|m| serde_json::to_value(m).ok())
                    .unwrap_or(Value::from(0));
                object.example = Some(example);
            }
            object.properties.values_mut().for_each(in_schema);
            if let Some(extra) = &mut object.additional_properties {
                if let AdditionalProperties::RefOr(extra) = extra.as_mut() {
                    in_schema(extra);
                }
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                in_schema(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(in_schema),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(in_schema),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(in_schema),
        _ => {}
    }
}

/// Where a serialized document still has an integer schema without an example (JSON
/// pointers), for the dialects' tests.
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
                if integer && !map.contains_key("example") && !map.contains_key("examples") {
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
    use serde_json::json;

    #[test]
    fn integers_get_their_minimum_or_zero() {
        let doc: OpenApi = serde_json::from_value(json!({
            "openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
            "components": {"schemas": {"A": {"type": "object", "properties": {
                "qos": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2},
                "page": {"type": ["integer", "null"], "format": "int64", "minimum": 1},
                "n": {"type": "integer", "format": "int64"},
                "kept": {"type": "integer", "example": 7},
                "list": {"type": "array", "items": {"type": "integer", "format": "int32"}},
                "s": {"type": "string"}}}}}
        }))
        .unwrap();
        let doc = serde_json::to_value(with_integer_examples(doc)).unwrap();
        let props = &doc["components"]["schemas"]["A"]["properties"];
        assert_eq!(props["qos"]["example"], 0);
        assert_eq!(props["page"]["example"], 1);
        assert_eq!(props["n"]["example"], 0);
        assert_eq!(props["kept"]["example"], 7);
        assert_eq!(props["list"]["items"]["example"], 0);
        assert!(props["s"].get("example").is_none());
        assert!(integers_without_example(&doc).is_empty());
        let bare = json!({"a": [{"type": "integer"}]});
        assert_eq!(integers_without_example(&bare), ["/a/0"]);
    }
}
