//! The OpenAPI document of both APIs: the operations the routers collect from their
//! handlers' `#[utoipa::path]` annotations, inside the API's description and security
//! schemes.

use mqgate_kit::http::openapi::{
    declare_basic_auth, declare_security_scheme, fill_integer_examples,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(info(
    title = "NanoMQ HTTP API (v1 RPC and v4 REST)",
    description = "NanoMQ's management API as served by mqgate: the v1 req/seq RPC of NanoMQ 0.5-0.8.0 and the v4 REST API of NanoMQ 0.25. Errors are `{\"code\":N}` (v1: `{\"code\":N,\"seq\":S[,\"rep\":R]}`) with the request's Content-Type; unknown paths 404 `{\"code\":102}`, other methods 405 `{\"code\":102}`, credentials checked first (401 103/104/116)."
))]
struct ApiDoc;

/// Every v4 operation answers 401 before anything else (v1 declares its own, with
/// `seq` and `rep`).
fn credentials_checked_first(doc: &mut utoipa::openapi::OpenApi) {
    let unauthorized = ResponseBuilder::new()
        .description(
            "No usable credentials (104), wrong credentials (103) or an expired token (116)",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("CodeReply")))
                .example(Some(serde_json::json!({"code": 104})))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .responses
                .responses
                .entry("401".to_string())
                .or_insert_with(|| unauthorized.clone().into());
        }
    }
}

/// The document of `operations` with `servers` pointing at `server_url`.
pub fn document(
    operations: utoipa::openapi::OpenApi,
    server_url: &str,
) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(operations);
    declare_basic_auth(&mut doc);
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT (RS256)")
        .build();
    declare_security_scheme(&mut doc, "bearer", SecurityScheme::Http(bearer));
    credentials_checked_first(&mut doc);
    let mut doc = fill_integer_examples(doc);
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.servers = Some(vec![Server::new(server_url)]);
    doc
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(crate::openapi("http://127.0.0.1:8081")).unwrap()
    }

    #[test]
    fn documents_both_apis() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/v1"));
        assert!(paths.contains_key("/api/v4/clients/{clientid}"));
        assert!(paths.contains_key("/api/v4/mqtt/subscribe_batch"));
        assert!(paths.contains_key("/api/v4/get_file"));
        assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8081");
    }

    #[test]
    fn every_operation_reads_well() {
        let doc = document();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(
                    !summary.is_empty() && !summary.contains('`'),
                    "{method} {path}"
                );
                let unauthorized = &op["responses"]["401"]["content"]["application/json"];
                assert!(unauthorized["example"]["code"].is_u64(), "{method} {path}");
            }
        }
        assert_eq!(operations, 39);
        let bare = mqgate_kit::http::openapi::integers_without_example(&doc);
        assert!(bare.is_empty(), "{bare:?}");
    }

    #[test]
    fn v1_has_one_shape_per_req() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let rpc = &doc["paths"]["/api/v1"]["post"];
        let request = &rpc["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(request["$ref"], "#/components/schemas/RpcRequest");
        let reqs: Vec<i64> = schemas["RpcRequest"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let name = r["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
                let req = &schemas[name]["properties"]["req"];
                assert_eq!(req["minimum"], req["maximum"], "{name}");
                req["minimum"].as_i64().unwrap()
            })
            .collect();
        assert_eq!(reqs, [2, 4, 5, 10, 11, 12, 13]);
        let replies = schemas["RpcReply"]["oneOf"].as_array().unwrap();
        assert_eq!(replies.len(), 7);
        let stats = &schemas["BrokerStatsReply"]["properties"];
        assert_eq!(stats["data"]["$ref"], "#/components/schemas/RpcBrokerStats");
        assert_eq!(stats["rep"]["minimum"], 2);
    }
}
