//! `GET /brokers` and `GET /nodes`: every node (NanoMQ has one), with its live uptime,
//! version and connection count. In cluster mode each entry also names its node.

use std::sync::Arc;

use axum::extract::State;
use mqgate_kit::clock::now_ms;
use mqgate_kit::http::time::format_datetime;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::reply::Reply;
use crate::state::App;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(list_brokers))
        .routes(routes!(list_nodes))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrokerList {
    pub code: u16,
    pub data: Vec<Broker>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Broker {
    /// Local time, `YYYY-MM-DD HH:MM:SS`.
    pub datetime: String,
    /// `Running`, or `Stopped` while the broker does not serve.
    pub node_status: &'static str,
    pub sysdescr: &'static str,
    /// `H Hours, M minutes, S seconds`.
    pub uptime: String,
    /// mqgate's version.
    pub version: String,
    /// The node's name; cluster mode only (NanoMQ has no such field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeList {
    pub code: u16,
    pub data: Vec<Node>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Node {
    /// MQTT clients connected now.
    pub connections: u64,
    pub node_status: &'static str,
    pub uptime: String,
    pub version: String,
    /// The node's name; cluster mode only (NanoMQ has no such field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// NanoMQ's uptime text; hours are not folded into days.
pub fn uptime_text(uptime_ms: u64) -> String {
    let secs = uptime_ms / 1000;
    format!(
        "{} Hours, {} minutes, {} seconds",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Get the brokers
///
/// Each node (one unless clustered): local time, status, uptime and mqgate's version.
#[utoipa::path(
    get,
    path = "/api/v4/brokers",
    tag = "v4 brokers",
    responses((status = 200, description = "Every node", body = BrokerList)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_brokers(_: Authorized, State(app): State<Arc<App>>) -> Reply {
    let datetime = format_datetime(now_ms());
    let data = app
        .management
        .nodes()
        .await
        .into_iter()
        .map(|stats| Broker {
            datetime: datetime.clone(),
            node_status: node_status(stats.healthy),
            sysdescr: "NanoMQ Broker",
            uptime: uptime_text(stats.uptime_ms),
            version: stats.version,
            node: stats.cluster_node,
        });
    Reply::json(&BrokerList {
        code: 0,
        data: data.collect(),
    })
}

/// NanoMQ's words for a node that serves or does not.
fn node_status(healthy: bool) -> &'static str {
    match healthy {
        true => "Running",
        false => "Stopped",
    }
}

/// Get the nodes
///
/// Each node (one unless clustered): connections, status, uptime and mqgate's version.
#[utoipa::path(
    get,
    path = "/api/v4/nodes",
    tag = "v4 brokers",
    responses((status = 200, description = "Every node", body = NodeList)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_nodes(_: Authorized, State(app): State<Arc<App>>) -> Reply {
    let data = app.management.nodes().await.into_iter().map(|stats| Node {
        connections: stats.connections,
        node_status: node_status(stats.healthy),
        uptime: uptime_text(stats.uptime_ms),
        version: stats.version,
        node: stats.cluster_node,
    });
    Reply::json(&NodeList {
        code: 0,
        data: data.collect(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime() {
        assert_eq!(super::uptime_text(21_999), "0 Hours, 0 minutes, 21 seconds");
        assert_eq!(
            super::uptime_text(90_061_000),
            "25 Hours, 1 minutes, 1 seconds"
        );
    }
}
