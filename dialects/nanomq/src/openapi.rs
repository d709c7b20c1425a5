//! The OpenAPI document of both APIs, generated from the handlers' `#[utoipa::path]`
//! annotations and the response types' schemas.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use crate::{v1, v4};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "NanoMQ HTTP API (v1 RPC and v4 REST)",
        description = "NanoMQ's management API as served by mqgate: the v1 req/seq RPC of NanoMQ 0.5-0.8.0 and the v4 REST API of NanoMQ 0.25. Errors are `{\"code\":N}` (v1: `{\"code\":N,\"seq\":S[,\"rep\":R]}`) with the request's Content-Type; unknown paths 404 `{\"code\":102}`, other methods 405 `{\"code\":102}`, credentials checked first (401 103/104/116)."
    ),
    paths(
        v1::handle,
        v4::endpoints::list_endpoints,
        v4::brokers::list_brokers,
        v4::brokers::list_nodes,
        v4::clients::list_clients,
        v4::clients::lookup_client,
        v4::clients::lookup_client_via_username,
        v4::subscriptions::list_subscriptions,
        v4::subscriptions::lookup_client_subscriptions,
        v4::topic_tree::list_topic_tree,
        v4::metrics::metrics,
        v4::metrics::prometheus,
        v4::reload::get_hot_updatable_configuration,
        v4::reload::set_hot_updatable_configuration,
        v4::configuration::get_broker_configuration,
        v4::configuration::get_configuration_section,
        v4::configuration::set_broker_configuration,
        v4::configuration::update_configuration_file,
        v4::ctrl::ctrl_broker,
        v4::mqtt::publish,
        v4::mqtt::publish_batch,
        v4::mqtt::subscribe,
        v4::mqtt::unsubscribe,
        v4::mqtt::subscribe_batch,
        v4::mqtt::unsubscribe_batch,
        v4::bridges::list_mqtt_bridges,
        v4::bridges::get_mqtt_bridge,
        v4::bridges::put_mqtt_bridge,
        v4::bridges::put_mqtt_bridge_switch,
        v4::bridges::bridge_subscribe,
        v4::bridges::bridge_unsubscribe,
        v4::rules::list_rules,
        v4::rules::get_rule_details,
        v4::rules::create_rule,
        v4::rules::update_rule,
        v4::rules::delete_rule,
    ),
    components(schemas(
        v1::RpcRequest,
        v1::RpcBrokerStats,
        v1::RpcClientSubscriptions,
        v1::RpcSubscription,
        v1::RpcClient,
        v1::RpcConfig,
        v4::topic_tree::TreeNode,
    )),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (RS256)")
                    .build(),
            ),
        );
    }
}

/// The document with `servers` pointing at `server_url`.
pub fn document(server_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.servers = Some(vec![Server::new(server_url)]);
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn documents_both_apis() {
        let doc = super::document("http://127.0.0.1:8081");
        let paths = &doc.paths.paths;
        assert!(paths.contains_key("/api/v1"));
        assert!(paths.contains_key("/api/v4/clients/{clientid}"));
        assert!(paths.contains_key("/api/v4/mqtt/subscribe_batch"));
    }
}
