//! `GET /api/v4`: the list of endpoints NanoMQ 0.25 advertises, verbatim (typos and
//! the entries it does not route included), because clients such as nanomq-admin show
//! it as it is.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::reply::Reply;
use crate::state::App;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default().routes(routes!(list_endpoints))
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Endpoint {
    pub path: &'static str,
    pub name: &'static str,
    pub method: &'static str,
    pub descr: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub code: u16,
    pub data: &'static [Endpoint],
}

/// In NanoMQ's order.
pub const ENDPOINTS: [Endpoint; 41] = [
    Endpoint {
        path: "/brokers/",
        name: "list_brokers",
        method: "GET",
        descr: "A list of brokers in the cluster",
    },
    Endpoint {
        path: "/nodes/",
        name: "list_nodes",
        method: "GET",
        descr: "A list of nodes in the cluster",
    },
    Endpoint {
        path: "/clients/",
        name: "list_clients",
        method: "GET",
        descr: "A list of clients on current node",
    },
    Endpoint {
        path: "/clients/:clientid",
        name: "lookup_client",
        method: "GET",
        descr: "Lookup a client in the cluster",
    },
    Endpoint {
        path: "/clients/username/:username",
        name: "lookup_client_via_username",
        method: "GET",
        descr: "Lookup a client via username in the cluster",
    },
    Endpoint {
        path: "/subscriptions/",
        name: "list_subscriptions",
        method: "GET",
        descr: "A list of subscriptions in the cluster",
    },
    Endpoint {
        path: "/subscriptions/:clientid",
        name: "lookup_client_subscriptions",
        method: "GET",
        descr: "A list of subscriptions of a client",
    },
    Endpoint {
        path: "/rules/",
        name: "list_rules",
        method: "GET",
        descr: "Get rule list",
    },
    Endpoint {
        path: "/rules/:ruleid",
        name: "get_rule_details",
        method: "GET",
        descr: "Get the details of a rule",
    },
    Endpoint {
        path: "/rules/",
        name: "create_rule",
        method: "POST",
        descr: "Create a rule and return the rule ID",
    },
    Endpoint {
        path: "/rules/:ruleid",
        name: "update_rule",
        method: "PUT",
        descr: "Update the rule and return the rule ID",
    },
    Endpoint {
        path: "/rules/:ruleid",
        name: "delete_rule",
        method: "DELETE",
        descr: "Delete the rule",
    },
    Endpoint {
        path: "/mqtt/subscribe",
        name: "mqtt_subscribe",
        method: "POST",
        descr: "Subscribe a topic",
    },
    Endpoint {
        path: "/bridges/:bridge_name",
        name: "get_mqtt_bridges",
        method: "GET",
        descr: "Get the details of bridge",
    },
    Endpoint {
        path: "/bridges/:bridge_name",
        name: "put_mqtt_bridge",
        method: "PUT",
        descr: "Edit a bridge client",
    },
    Endpoint {
        path: "/bridges/switch/:bridge_name",
        name: "put_mqtt_bridge_switch",
        method: "POST",
        descr: "trun on or off a bridge channel",
    },
    Endpoint {
        path: "/bridges/:bridge_name",
        name: "delete_mqtt_bridge",
        method: "DELETE",
        descr: "DELETE a bridge client",
    },
    Endpoint {
        path: "/mqtt/publish",
        name: "mqtt_publish",
        method: "POST",
        descr: "Publish a MQTT message",
    },
    Endpoint {
        path: "/mqtt/unsubscribe",
        name: "mqtt_unsubscribe",
        method: "POST",
        descr: "Unsubscribe a topic",
    },
    Endpoint {
        path: "/mqtt/subscribe_batch",
        name: "mqtt_subscribe_batch",
        method: "POST",
        descr: "Batch subscribes topics",
    },
    Endpoint {
        path: "/mqtt/publish_batch",
        name: "mqtt_publish_batch",
        method: "POST",
        descr: "Batch publish MQTT messages",
    },
    Endpoint {
        path: "/mqtt/unsubscribe_batch",
        name: "mqtt_unsubscribe_batch",
        method: "POST",
        descr: "Batch unsubscribes topics",
    },
    Endpoint {
        path: "/topic-tree/",
        name: "list_topic-tree",
        method: "GET",
        descr: "A list of topic-tree in the cluster",
    },
    Endpoint {
        path: "/reload/",
        name: "get_hot_updatable_configuration",
        method: "GET",
        descr: "show the configuration that can be hot updated",
    },
    Endpoint {
        path: "/reload/",
        name: "set_hot_updatable_configuration",
        method: "POST",
        descr: "set the configuration that can be hot updated",
    },
    Endpoint {
        path: "/configuration/",
        name: "get_broker_configuration",
        method: "GET",
        descr: "show all configuration of broker",
    },
    Endpoint {
        path: "/configuration/basic",
        name: "get_basic_configuration",
        method: "GET",
        descr: "set broker basic configuration",
    },
    Endpoint {
        path: "/configuration/tls",
        name: "get_tls_configuration",
        method: "GET",
        descr: "show broker tls configuration",
    },
    Endpoint {
        path: "/configuration/http_server",
        name: "get_http_server_configuration",
        method: "GET",
        descr: "show broker http_server configuration",
    },
    Endpoint {
        path: "/configuration/websocket",
        name: "get_websocket_configuration",
        method: "GET",
        descr: "show broker websocket configuration",
    },
    Endpoint {
        path: "/configuration/webhook",
        name: "get_webhook_configuration",
        method: "GET",
        descr: "show broker webhook configuration",
    },
    Endpoint {
        path: "/configuration/auth",
        name: "get_auth_configuration",
        method: "GET",
        descr: "show broker authorization configuration",
    },
    Endpoint {
        path: "/configuration/auth_http",
        name: "get_auth_http_configuration",
        method: "GET",
        descr: "show broker authorization by http configuration",
    },
    Endpoint {
        path: "/configuration/sqlite",
        name: "get_sqlite_configuration",
        method: "GET",
        descr: "show broker sqlite configuration",
    },
    Endpoint {
        path: "/configuration/bridge",
        name: "get_bridge_configuration",
        method: "GET",
        descr: "show broker bridge configuration",
    },
    Endpoint {
        path: "/configuration/aws_bridge",
        name: "get_aws_bridge_configuration",
        method: "GET",
        descr: "show broker aws_bridge configuration",
    },
    Endpoint {
        path: "/configuration/",
        name: "set_broker_configuration",
        method: "POST",
        descr: "set broker configuration",
    },
    Endpoint {
        path: "/config_update",
        name: "update_configuration_file",
        method: "POST",
        descr: "update configuration file",
    },
    Endpoint {
        path: "/ctrl/:action",
        name: "ctrl_broker",
        method: "POST",
        descr: "Control broker stop or restart",
    },
    Endpoint {
        path: "/metrics",
        name: "metrics",
        method: "GET",
        descr: "Returns all statistical metrics",
    },
    Endpoint {
        path: "/prometheus",
        name: "prometheus",
        method: "GET",
        descr: "Returns all prometheus data",
    },
];

/// List the endpoints
///
/// The 41 endpoints NanoMQ 0.25 advertises, verbatim (also at `/api/v4/` and
/// `/api/v4?anything`).
#[utoipa::path(
    get,
    path = "/api/v4",
    tag = "v4 endpoints",
    responses((status = 200, description = "The 41 endpoints NanoMQ lists", body = EndpointList)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_endpoints(_: Authorized) -> Reply {
    Reply::json(&EndpointList {
        code: 0,
        data: &ENDPOINTS,
    })
}
