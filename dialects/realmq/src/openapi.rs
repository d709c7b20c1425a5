//! The dialect's OpenAPI document: every operation with its summary, bounds and
//! examples that succeed against a default mqgate when tried in order (log in,
//! create a product, register a device under the product's chosen key, ...).

use mqgate_kit::http::openapi::{
    declare_basic_auth, declare_security_scheme, payload_encoding_rule,
};
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::OpenApi;

use crate::{auth, devices, mqtt, products};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "RealMQ REST API",
        description = "RealMQ's management API as served by mqgate. Errors are {\"code\":<n>,\"message\":…} with the HTTP statuses of the RealMQ document. Log in with root / 123456 (Basic, or a Bearer token from /api/v1/auth). Trying the operations from top to bottom works on a fresh gateway: the product's example chooses its key (d9c44706a4), the device's example registers under that key, and the deletions come last."
    ),
    paths(
        auth::login,
        products::create,
        products::list,
        products::detail,
        products::update,
        products::delete,
        devices::create,
        devices::list,
        devices::detail,
        devices::update,
        devices::delete,
        mqtt::publish,
        mqtt::subscribe,
        mqtt::unsubscribe,
        mqtt::publish_batch,
        mqtt::subscribe_batch,
        mqtt::unsubscribe_batch,
    ),
    modifiers(&SecuritySchemes, &CrossFieldRules),
    security(("basic" = []), ("bearer" = [])),
    tags(
        (name = "auth", description = "Login"),
        (name = "products", description = "Products"),
        (name = "devices", description = "Devices"),
        (name = "mqtt", description = "Publish and subscribe on behalf of clients"),
        (name = "cleanup", description = "Deleting devices and products (a product that still has devices is kept: delete its devices first)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        declare_basic_auth(openapi);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("A token from POST /api/v1/auth"))
            .build();
        declare_security_scheme(openapi, "bearer", SecurityScheme::Http(bearer));
    }
}

/// Rules a property's schema alone cannot state, combined with the body's schema
/// in an `allOf`: publish, subscribe and unsubscribe need `topic` or `topics`
/// (with at least one non-blank entry), and a base64 publish needs a base64
/// payload.
struct CrossFieldRules;

impl utoipa::Modify for CrossFieldRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in ["PublishRequest", "SubscribeRequest", "UnsubscribeRequest"] {
            let Some(schema) = components.schemas.remove(name) else {
                continue;
            };
            let mut all = AllOfBuilder::new().item(schema).item(a_topic());
            if name == "PublishRequest" {
                all = all.item(payload_encoding_rule("encoding", "payload"));
            }
            components
                .schemas
                .insert(name.to_string(), RefOr::T(Schema::AllOf(all.build())));
        }
    }
}

/// `topic` or `topics` is given and not blank.
fn a_topic() -> Schema {
    let given = |field: &str, pattern: &str| {
        ObjectBuilder::new()
            .property(
                field,
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(pattern)),
            )
            .required(field)
    };
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(given("topic", r"\S"))
            .item(given("topics", r"[^\s,]"))
            .build(),
    )
}

/// The dialect's OpenAPI document, `servers` pointing at `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.servers = Some(vec![utoipa::openapi::server::Server::new(server_url)]);
    mqgate_kit::http::openapi::fill_integer_examples(doc)
}
