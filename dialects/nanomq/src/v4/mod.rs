//! The v4 REST API of NanoMQ 0.25.x, routed as NanoMQ routes it: credentials first,
//! then an exact match on the raw (never percent-decoded) path segments after
//! `/api/v4`, one trailing slash ignored; GET, POST, PUT and DELETE (in any case) with
//! an unknown path get 404 `{"code":102}`, any other method 405 `{"code":102}`.

pub mod bridges;
pub mod brokers;
pub mod clients;
pub mod configuration;
pub mod ctrl;
pub mod endpoints;
pub mod metrics;
pub mod mqtt;
pub mod reload;
pub mod rules;
pub mod subscriptions;
pub mod topic_tree;

use serde_json::Value;

use crate::reply::{ApiError, Reply};
use crate::server::{ApiRequest, Nanomq};

/// The path after `/api/v4` as NanoMQ splits it, or `None` for the endpoint list.
/// `Some(vec![])` (e.g. `/api/v4/?x=y`) matches nothing.
pub fn segments<'a>(path: &'a str, query: Option<&str>) -> Option<Vec<&'a str>> {
    let rest = path.strip_prefix("/api/v4").unwrap_or(path);
    if rest.is_empty() || (rest == "/" && query.is_none()) {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    Some(rest.split('/').skip(1).collect())
}

pub async fn handle(api: &Nanomq, request: &ApiRequest) -> Reply {
    let content_type = request.content_type();
    if let Err(code) = api.auth.check(&request.headers) {
        return ApiError::unauthorized(code).reply(content_type);
    }
    route(api, request)
        .await
        .unwrap_or_else(|error| error.reply(content_type))
}

async fn route(api: &Nanomq, request: &ApiRequest) -> Result<Reply, ApiError> {
    let method = request.method_upper();
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
        return Err(ApiError::bad_method());
    }
    let Some(segments) = segments(&request.path, request.query.as_deref()) else {
        return match method.as_str() {
            "GET" => Ok(endpoints::list_endpoints()),
            _ => Err(ApiError::no_route()),
        };
    };
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["brokers"]) => Ok(brokers::list_brokers(api)),
        ("GET", ["nodes"]) => Ok(brokers::list_nodes(api)),
        ("GET", ["clients"]) => clients::list_clients(api, request),
        ("GET", ["clients", "username", username]) => {
            clients::lookup_client_via_username(api, request, username)
        }
        ("GET", ["clients", client_id]) => clients::lookup_client(api, request, client_id),
        ("GET", ["subscriptions"]) => Ok(subscriptions::list_subscriptions(api)),
        ("GET", ["subscriptions", client_id]) => {
            Ok(subscriptions::lookup_client_subscriptions(api, client_id))
        }
        ("GET", ["topic-tree"]) => Ok(topic_tree::list_topic_tree(api)),
        ("GET", ["metrics"]) => Ok(metrics::metrics(api)),
        ("GET", ["prometheus"]) => Ok(metrics::prometheus(api)),
        ("GET", ["reload"]) => Ok(reload::get_hot_updatable_configuration(api)),
        ("POST", ["reload"]) => reload::set_hot_updatable_configuration(api, request),
        ("GET", ["configuration"]) => Ok(configuration::get_broker_configuration(api)),
        ("GET", ["configuration", section]) => {
            configuration::get_configuration_section(api, section)
        }
        ("POST", ["configuration"]) | ("POST", ["configuration", _]) => {
            configuration::set_broker_configuration(api, request)
        }
        ("POST", ["config_update"]) => configuration::update_configuration_file(api, request).await,
        ("POST", ["ctrl", action]) => ctrl::ctrl_broker(api, action),
        ("POST", ["mqtt", "publish"]) => mqtt::publish(api, request).await,
        ("POST", ["mqtt", "publish_batch"]) => mqtt::publish_batch(api, request).await,
        ("POST", ["mqtt", "subscribe"]) => mqtt::subscribe(api, request).await,
        ("POST", ["mqtt", "unsubscribe"]) => mqtt::unsubscribe(api, request).await,
        ("POST", ["mqtt", "subscribe_batch"]) => mqtt::subscribe_batch(api, request).await,
        ("POST", ["mqtt", "unsubscribe_batch"]) => mqtt::unsubscribe_batch(api, request).await,
        ("GET", ["bridges"]) => Ok(bridges::list_mqtt_bridges()),
        ("GET", ["bridges", name]) => Ok(bridges::get_mqtt_bridge(name)),
        ("PUT", ["bridges", name]) => bridges::put_mqtt_bridge(request, name),
        ("POST", ["bridges", "switch", name]) => bridges::put_mqtt_bridge_switch(request, name),
        ("POST", ["bridges", "sub", name]) => bridges::bridge_subscribe(request, name),
        ("POST", ["bridges", "unsub", name]) => bridges::bridge_unsubscribe(request, name),
        ("GET", ["rules"]) => Ok(rules::list_rules()),
        ("GET", ["rules", rule_id]) => Ok(rules::get_rule_details(rule_id)),
        ("POST", ["rules"]) => rules::create_rule(request),
        ("PUT", ["rules", rule_id]) => rules::update_rule(request, rule_id),
        ("DELETE", ["rules", rule_id]) => Ok(rules::delete_rule(rule_id)),
        _ => Err(ApiError::no_route()),
    }
}

/// The body as a JSON object, or 400 `{"code":109}`.
pub fn json_object(request: &ApiRequest) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::not_json()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_nanomq() {
        assert_eq!(segments("/api/v4", None), None);
        assert_eq!(segments("/api/v4", Some("a=b")), None);
        assert_eq!(segments("/api/v4/", None), None);
        assert_eq!(segments("/api/v4/", Some("name=x")), Some(vec![]));
        assert_eq!(segments("/api/v4/nodes/", None), Some(vec!["nodes"]));
        assert_eq!(segments("/api/v4//nodes", None), Some(vec!["", "nodes"]));
        assert_eq!(
            segments("/api/v4/clients/client%2Dv5", None),
            Some(vec!["clients", "client%2Dv5"])
        );
    }
}
