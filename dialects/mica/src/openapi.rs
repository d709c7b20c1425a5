//! The OpenAPI document: the operations the resource routers collect from their
//! handlers' `#[utoipa::path]` annotations, inside the API's description, tags and
//! security scheme.

use mqgate_kit::http::openapi::{declare_basic_auth, fill_integer_examples};
use utoipa::openapi::server::Server;
use utoipa::OpenApi;

pub const TITLE: &str = "mica-mqtt REST API";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mica-mqtt REST API",
        description = "The mica-mqtt 2.6.8.3 HTTP management API, served by mqgate. Every answer is JSON with a `code`: 1 on success; 101 (400) missing parameter, 102 (400) invalid parameter, 103 (401) bad credentials, 105 (500) unknown error, 404 (404) no such route or method."
    ),
    security(("basic" = [])),
    tags(
        (name = "endpoints", description = "The route list"),
        (name = "stats", description = "Connection and traffic counters"),
        (name = "messages", description = "Publishing"),
        (name = "subscriptions", description = "Subscriptions on a client's behalf"),
        (name = "clients", description = "Connected clients"),
    )
)]
struct ApiDoc;

/// The document of `operations` (paths and their schemas) with `servers` pointing at
/// `server_url`.
pub fn document(
    operations: utoipa::openapi::OpenApi,
    server_url: &str,
) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(operations);
    declare_basic_auth(&mut doc);
    let mut doc = fill_integer_examples(doc);
    doc.servers = Some(vec![Server::new(server_url)]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_one_method() {
        let doc = serde_json::to_value(crate::openapi("http://127.0.0.1:18083")).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 13);
        for (path, item) in paths {
            assert!(path.starts_with("/api/v1/"), "{path}");
            let item = item.as_object().unwrap();
            assert_eq!(item.len(), 1, "{path}: one method");
            let op = item.values().next().unwrap();
            assert!(op["responses"]["200"].is_object(), "{path}");
            assert_eq!(
                op["responses"]["401"]["content"]["application/json"]["example"],
                serde_json::json!({"code": 103}),
                "{path}"
            );
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(
                !summary.is_empty() && !summary.contains('`'),
                "{path}: {summary:?}"
            );
        }
        let bare = mqgate_kit::http::openapi::integers_without_example(&doc);
        assert!(bare.is_empty(), "{bare:?}");
        assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:18083");
        assert_eq!(
            doc["components"]["securitySchemes"]["basic"]["scheme"],
            "basic"
        );
        assert_eq!(doc["security"][0]["basic"], serde_json::json!([]));
        assert_eq!(doc["info"]["title"], TITLE);
        for schema in ["ClientPageResponse", "ClientInfo", "PublishForm", "StatVo"] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
    }
}
