//! The dialect's OpenAPI document. Its examples are mqgate's default application
//! (AppID `mq7g4e`, the default app credentials); the document served by a
//! running gateway names the configured AppID instead, never the credentials.

use mqgate_kit::http::openapi::{declare_security_scheme, payload_encoding_rule};
use utoipa::openapi::schema::{AllOfBuilder, Schema};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::OpenApi;

use crate::{app_info, clients, publish, records, tokens};

/// The AppID of the default configuration, as the examples name it.
pub const EXAMPLE_APP_ID: &str = "mq7g4e";

struct AppTokenSecurity;

impl utoipa::Modify for AppTokenSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let header = ApiKeyValue::with_description(
            "Authorization",
            "The raw app token from app/token (a leading space or `Bearer ` is tolerated).",
        );
        declare_security_scheme(
            openapi,
            "app_token",
            SecurityScheme::ApiKey(ApiKey::Header(header)),
        );
    }
}

/// A base64 publish needs a base64 payload: a rule across two properties,
/// combined with the body's schema in an `allOf`.
struct PayloadEncodingRule;

impl utoipa::Modify for PayloadEncodingRule {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(schema) = components.schemas.remove("PublishBody") {
            let all = AllOfBuilder::new()
                .item(schema)
                .item(payload_encoding_rule("encoding", "payload"));
            components
                .schemas
                .insert("PublishBody".into(), RefOr::T(Schema::AllOf(all.build())));
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Easemob MQTT REST API",
        description = "Easemob MQTT message cloud REST API (/openapi/rm), served by mqgate for the application mq7g4e. Every path is also served under /app/{AppID}. Errors are {\"code\":…,\"msg\":…,\"body\":…} with the HTTP status equal to code. Start with app/token (its example is the default application's id and secret), put the token in Authorize, then get a user token, publish as test1@mq7g4e and query the records."
    ),
    paths(
        tokens::app_token,
        tokens::user_token,
        publish::publish,
        records::device_records,
        clients::client_info,
        records::message_records,
        records::publish_records,
        records::delivery_records,
        records::message,
        records::topic_messages,
        clients::clients_by_topic,
        clients::clients_by_user,
        clients::clients_of_app,
        app_info::app_info,
    ),
    modifiers(&AppTokenSecurity, &PayloadEncodingRule),
    tags(
        (name = "token", description = "App and user tokens"),
        (name = "message", description = "Sending messages"),
        (name = "record", description = "Connection and message records"),
        (name = "client", description = "Online clients and the application's MQTT address"),
    )
)]
struct ApiDoc;

/// The dialect's OpenAPI document for the default AppID, `servers` pointing at
/// `server_url`.
pub fn openapi(server_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.servers = Some(vec![utoipa::openapi::server::Server::new(server_url)]);
    mqgate_kit::http::openapi::fill_integer_examples(doc)
}

/// [`openapi`] with every mention of the default AppID replaced by `app_id`.
pub fn openapi_for(app_id: &str, server_url: &str) -> utoipa::openapi::OpenApi {
    let doc = openapi(server_url);
    if app_id == EXAMPLE_APP_ID {
        return doc;
    }
    let text = serde_json::to_string(&doc).expect("the document serializes");
    serde_json::from_str(&text.replace(EXAMPLE_APP_ID, app_id)).expect("still a document")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_document_names_the_configured_app_id() {
        let text = |doc: &utoipa::openapi::OpenApi| serde_json::to_string(doc).unwrap();
        let default = openapi_for(EXAMPLE_APP_ID, "http://h:1");
        assert!(text(&default).contains("test1@mq7g4e"));
        let other = text(&openapi_for("ab12cd", "http://h:1"));
        assert!(!other.contains(EXAMPLE_APP_ID));
        assert!(other.contains("test1@ab12cd") && other.contains("@ab12cd$"));
        // The credentials in the examples are the defaults, never configured ones.
        assert!(other.contains("YXA6mQgAtE7eAsEmObApPcLiEn"));
    }
}
