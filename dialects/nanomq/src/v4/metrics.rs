//! `GET /metrics` (JSON without a `code` key) and `GET /prometheus` (text exposition
//! with NanoMQ's 15 metric names, in its order and layout).

use std::collections::HashSet;
use std::fmt::Write;

use mqgate_kit::{PageRequest, Stats, SubscriptionFilter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::reply::Reply;
use crate::server::{Maxima, Nanomq};

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

#[utoipa::path(
    get,
    path = "/api/v4/metrics",
    tag = "v4 metrics",
    responses((status = 200, description = "Process and connection metrics", body = Metrics)),
    security(("basic" = []), ("bearer" = []))
)]
pub fn metrics(api: &Nanomq) -> Reply {
    let stats = api.management.stats();
    Reply::json(&Metrics {
        metrics: Vec::new(),
        cpuinfo: format!("{:.2}%", stats.cpu_percent),
        memory: stats.memory_bytes.to_string(),
        connections: stats.connections,
    })
}

/// Clients holding at least one subscription.
fn subscriber_count(api: &Nanomq) -> u64 {
    let subscriptions = api
        .management
        .list_subscriptions(&SubscriptionFilter::default(), PageRequest::ALL)
        .items;
    let clients: HashSet<&str> = subscriptions.iter().map(|s| s.client_id.as_str()).collect();
    clients.len() as u64
}

/// The exposition text for these values.
pub fn exposition(stats: &Stats, subscribers: u64, maxima: Maxima) -> String {
    let gauges: [(&str, &str, &str, String); 15] = [
        (
            "connections_count",
            "gauge",
            "",
            stats.connections.to_string(),
        ),
        (
            "connections_max",
            "gauge",
            "",
            stats.connections_max.to_string(),
        ),
        ("sessions_count", "gauge", "", stats.sessions.to_string()),
        ("sessions_max", "gauge", "", stats.sessions_max.to_string()),
        ("topics_count", "gauge", "", stats.topics.to_string()),
        ("topics_max", "gauge", "", stats.topics_max.to_string()),
        ("subscribers_count", "gauge", "", subscribers.to_string()),
        (
            "subscribers_max",
            "gauge",
            "",
            maxima.subscribers.to_string(),
        ),
        (
            "messages_received",
            "counter",
            "",
            stats.messages_received.to_string(),
        ),
        (
            "messages_sent",
            "counter",
            "",
            stats.messages_sent.to_string(),
        ),
        (
            "messages_dropped",
            "counter",
            "",
            stats.messages_dropped.to_string(),
        ),
        (
            "memory_usage",
            "gauge",
            " (b)",
            stats.memory_bytes.to_string(),
        ),
        (
            "memory_usage_max",
            "gauge",
            " (b)",
            stats.memory_bytes_max.to_string(),
        ),
        (
            "cpu_usage",
            "gauge",
            " (%)",
            format!("{:.2}", stats.cpu_percent),
        ),
        (
            "cpu_usage_max",
            "gauge",
            " (%)",
            format!("{:.2}", maxima.cpu_percent),
        ),
    ];
    let mut text = String::new();
    for (name, kind, unit, value) in gauges {
        let _ = write!(
            text,
            "# TYPE nanomq_{name} {kind}\n# HELP nanomq_{name}{unit}\nnanomq_{name} {value}\n"
        );
    }
    text
}

#[utoipa::path(
    get,
    path = "/api/v4/prometheus",
    tag = "v4 metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
    security(("basic" = []), ("bearer" = []))
)]
pub fn prometheus(api: &Nanomq) -> Reply {
    let stats = api.management.stats();
    let subscribers = subscriber_count(api);
    let maxima = {
        let mut maxima = api.maxima.lock();
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
}
