//! `GET /metrics` (JSON without a `code` key) and `GET /prometheus` (text exposition
//! with NanoMQ's 15 metric names, in its order and layout).

use std::fmt::Display;

use std::sync::Arc;

use axum::extract::State;
use mqgate_kit::Stats;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::reply::Reply;
use crate::state::{App, Maxima};

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(metrics))
        .routes(routes!(prometheus))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Metrics {
    /// One entry per bridge; mqgate has none.
    #[schema(value_type = Vec<Object>)]
    pub metrics: Vec<serde_json::Value>,
    /// CPU use with two decimals and `%`.
    pub cpuinfo: String,
    /// Resident memory in bytes, as a string.
    pub memory: String,
    pub connections: u64,
}

/// Get process metrics
///
/// CPU, memory and connections (JSON without a `code` key).
#[utoipa::path(
    get,
    path = "/api/v4/metrics",
    tag = "v4 metrics",
    responses((status = 200, description = "Process and connection metrics", body = Metrics)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn metrics(_: Authorized, State(app): State<Arc<App>>) -> Reply {
    let stats = app.management.stats().await;
    Reply::json(&Metrics {
        metrics: Vec::new(),
        cpuinfo: format!("{:.2}%", stats.cpu_percent),
        memory: stats.memory_bytes.to_string(),
        connections: stats.connections,
    })
}

/// The exposition text for these values: NanoMQ's 15 metrics in its order, each as
/// `# TYPE`, `# HELP` (with a unit for memory and CPU) and the sample. In cluster
/// mode each sample carries a `node` label, so that one scrape config can tell the
/// nodes apart; a single node's text is NanoMQ's, byte for byte.
pub fn exposition(stats: &Stats, subscribers: u64, maxima: Maxima) -> String {
    let labels = node_label(stats.cluster_node.as_deref());
    let gauge =
        |name: &str, unit: &str, value: &dyn Display| metric(name, "gauge", unit, &labels, value);
    let counter = |name: &str, value: &dyn Display| metric(name, "counter", "", &labels, value);
    let cpu = format!("{:.2}", stats.cpu_percent);
    let cpu_max = format!("{:.2}", maxima.cpu_percent);
    [
        gauge("connections_count", "", &stats.connections),
        gauge("connections_max", "", &stats.connections_max),
        gauge("sessions_count", "", &stats.sessions),
        gauge("sessions_max", "", &stats.sessions_max),
        gauge("topics_count", "", &stats.topics),
        gauge("topics_max", "", &stats.topics_max),
        gauge("subscribers_count", "", &subscribers),
        gauge("subscribers_max", "", &maxima.subscribers),
        counter("messages_received", &stats.messages_received),
        counter("messages_sent", &stats.messages_sent),
        counter("messages_dropped", &stats.messages_dropped),
        gauge("memory_usage", " (b)", &stats.memory_bytes),
        gauge("memory_usage_max", " (b)", &stats.memory_bytes_max),
        gauge("cpu_usage", " (%)", &cpu),
        gauge("cpu_usage_max", " (%)", &cpu_max),
    ]
    .concat()
}

/// `{node="..."}` for a cluster node (the value escaped as the text format
/// asks), nothing for a single node.
fn node_label(node: Option<&str>) -> String {
    node.map(|name| {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("{{node=\"{escaped}\"}}")
    })
    .unwrap_or_default()
}

fn metric(name: &str, kind: &str, unit: &str, labels: &str, value: &dyn Display) -> String {
    format!(
        "# TYPE nanomq_{name} {kind}\n# HELP nanomq_{name}{unit}\nnanomq_{name}{labels} {value}\n"
    )
}

/// Get Prometheus metrics
///
/// NanoMQ's 15 metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/api/v4/prometheus",
    tag = "v4 metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn prometheus(_: Authorized, State(app): State<Arc<App>>) -> Reply {
    // each node's own figures, labelled with its name: scrape every node
    let stats = app.management.node_stats();
    let subscribers = stats.subscribers;
    let maxima = {
        let mut maxima = app.maxima.lock();
        maxima.subscribers = maxima.subscribers.max(subscribers);
        maxima.cpu_percent = maxima.cpu_percent.max(stats.cpu_percent);
        *maxima
    };
    Reply::text("text/plain", exposition(&stats, subscribers, maxima))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_length() {
        // The transcript's values: 2 of everything, 0 sent, 3174400 bytes, 0.00 %.
        let stats = Stats {
            connections: 2,
            connections_max: 2,
            sessions: 2,
            sessions_max: 2,
            topics: 2,
            topics_max: 2,
            messages_received: 2,
            messages_dropped: 2,
            memory_bytes: 3174400,
            memory_bytes_max: 3174400,
            ..Default::default()
        };
        let maxima = Maxima {
            subscribers: 2,
            cpu_percent: 0.0,
        };
        let text = exposition(&stats, 2, maxima);
        assert_eq!(text.len(), 1354);
        assert!(text.starts_with("# TYPE nanomq_connections_count gauge\n# HELP nanomq_connections_count\nnanomq_connections_count 2\n"));
        assert!(text.ends_with("# HELP nanomq_cpu_usage_max (%)\nnanomq_cpu_usage_max 0.00\n"));
    }

    #[test]
    fn a_cluster_node_labels_every_sample() {
        let stats = Stats {
            connections: 3,
            cluster_node: Some("a\"b".into()),
            ..Default::default()
        };
        let maxima = Maxima {
            subscribers: 0,
            cpu_percent: 0.0,
        };
        let text = exposition(&stats, 0, maxima);
        assert!(text.contains("\nnanomq_connections_count{node=\"a\\\"b\"} 3\n"));
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 15);
        assert!(samples.iter().all(|l| l.contains("{node=\"a\\\"b\"} ")));
    }
}
