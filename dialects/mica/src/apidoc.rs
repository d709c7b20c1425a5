//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes and the request/response types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use crate::{clients, endpoints, error, publish, stats, subscriptions};

pub const TITLE: &str = "mica-mqtt REST API";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mica-mqtt REST API",
        description = "The mica-mqtt 2.6.8.3 HTTP management API, served by mqgate. Every answer is JSON with a `code`: 1 on success; 101 (400) missing parameter, 102 (400) invalid parameter, 103 (401) bad credentials, 105 (500) unknown error, 404 (404) no such route or method."
    ),
    paths(
        endpoints::list_endpoints,
        stats::get_stats,
        stats::stream_stats,
        publish::publish,
        publish::publish_batch,
        subscriptions::subscribe,
        subscriptions::subscribe_batch,
        subscriptions::unsubscribe,
        subscriptions::unsubscribe_batch,
        clients::client_info,
        clients::list_clients,
        clients::kick_client,
        subscriptions::client_subscriptions,
    ),
    components(schemas(
        error::CodeResponse,
        endpoints::RouteInfo,
        endpoints::EndpointsResponse,
        stats::StatVo,
        stats::ConnectionStats,
        stats::MessageStats,
        stats::NodeStats,
        stats::StatsResponse,
        publish::PublishForm,
        subscriptions::SubscribeForm,
        subscriptions::UnsubscribeForm,
        subscriptions::Subscribe,
        subscriptions::SubscriptionsResponse,
        clients::ClientInfo,
        clients::ClientPage,
        clients::ClientPageResponse,
        clients::ClientInfoResponse,
    )),
    modifiers(&BasicSecurity),
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

/// Declares the `basic` security scheme every operation requires.
struct BasicSecurity;

impl Modify for BasicSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The document with `servers` pointing at `server_url`.
pub fn document(server_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new(server_url)]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::ROUTES;

    #[test]
    fn every_route_is_documented_with_its_method() {
        let doc = serde_json::to_value(document("http://127.0.0.1:18083")).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), ROUTES.len());
        for route in ROUTES {
            let method = route.method.as_str().to_ascii_lowercase();
            let op = &paths[route.path][&method];
            assert!(op.is_object(), "{} {}", route.method.as_str(), route.path);
            assert!(op["responses"]["200"].is_object());
            assert!(op["responses"]["401"].is_object());
        }
        assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:18083");
        assert_eq!(
            doc["components"]["securitySchemes"]["basic"]["scheme"],
            "basic"
        );
        assert_eq!(doc["security"][0]["basic"], serde_json::json!([]));
        assert_eq!(doc["info"]["title"], TITLE);
    }
}
