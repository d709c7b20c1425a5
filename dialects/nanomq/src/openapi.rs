//! The OpenAPI document of both APIs: the operations the routers collect from their
//! handlers' `#[utoipa::path]` annotations, inside the API's description and security
//! schemes.

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

/// The document of `operations` with `servers` pointing at `server_url`.
pub fn document(
    operations: utoipa::openapi::OpenApi,
    server_url: &str,
) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(operations);
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.servers = Some(vec![Server::new(server_url)]);
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn documents_both_apis() {
        let doc = crate::openapi("http://127.0.0.1:8081");
        let paths = &doc.paths.paths;
        assert!(paths.contains_key("/api/v1"));
        assert!(paths.contains_key("/api/v4/clients/{clientid}"));
        assert!(paths.contains_key("/api/v4/mqtt/subscribe_batch"));
    }
}
