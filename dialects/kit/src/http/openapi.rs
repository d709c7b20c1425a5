//! OpenAPI helpers: sample values, and the payload-encoding rule of publish
//! bodies.

use serde_json::{json, Map, Value};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::OpenApi;

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
pub fn fill_integer_examples(doc: OpenApi) -> OpenApi {
    let mut value = serde_json::to_value(&doc).expect("an OpenAPI document serializes");
    fill(&mut value);
    serde_json::from_value(value).expect("adding examples keeps the document valid")
}

fn fill(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if is_integer_schema(object) && !has_sample(object) {
                let sample = object
                    .get("minimum")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .max(
                        object
                            .get("exclusiveMinimum")
                            .and_then(Value::as_i64)
                            .map_or(i64::MIN, |m| m + 1),
                    );
                object.insert("examples".into(), json!([sample]));
            }
            // Examples are data, not schemas: leave them alone.
            for (key, child) in object.iter_mut() {
                if key != "example" && key != "examples" {
                    fill(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fill),
        _ => {}
    }
}

fn is_integer_schema(object: &Map<String, Value>) -> bool {
    match object.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
        _ => false,
    }
}

fn has_sample(object: &Map<String, Value>) -> bool {
    ["example", "examples", "enum", "const", "default"]
        .iter()
        .any(|key| object.contains_key(*key))
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
    fn integers_without_examples_get_their_minimum() {
        let mut doc = json!({
            "components": {"schemas": {"P": {"type": "object", "properties": {
                "qos": {"type": ["integer", "null"], "format": "int32", "minimum": 0, "maximum": 2},
                "page": {"type": "integer", "format": "int64", "minimum": 1},
                "ttl": {"type": "integer", "exclusiveMinimum": 60},
                "kept": {"type": "integer", "example": 7},
                "flag": {"type": "integer", "enum": [1, 2]},
                "name": {"type": "string"}
            }, "example": {"type": "integer"}}}}
        });
        fill(&mut doc);
        let p = &doc["components"]["schemas"]["P"]["properties"];
        assert_eq!(p["qos"]["examples"], json!([0]));
        assert_eq!(p["page"]["examples"], json!([1]));
        assert_eq!(p["ttl"]["examples"], json!([61]));
        assert_eq!(p["kept"].get("examples"), None);
        assert_eq!(p["flag"].get("examples"), None);
        assert_eq!(p["name"].get("examples"), None);
        // An example that happens to look like a schema is left as it is.
        assert_eq!(
            doc["components"]["schemas"]["P"]["example"],
            json!({"type": "integer"})
        );
    }
}
