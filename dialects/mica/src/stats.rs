//! `GET /api/v1/stats` and its Server-Sent Events twin `GET /api/v1/stats/sse`:
//! mica-net's connection and traffic counters of the MQTT listeners.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mqgate_kit::Stats;
use serde::Serialize;
use utoipa::ToSchema;

use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::{json_response, CodeResponse, CODE_OK};
use crate::form::{self, FormParams};
use crate::routes::Routes;
use crate::state::App;

pub fn router() -> Routes {
    Routes::new()
        .route(routes!(get_stats))
        .route(routes!(stream_stats))
}

/// Period of the event stream when `delay` is absent, not a number, or not positive.
const DEFAULT_SSE_DELAY_MS: u64 = 3000;

/// mica-net's `StatVo`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StatVo {
    pub connections: ConnectionStats,
    pub messages: MessageStats,
    pub nodes: NodeStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConnectionStats {
    /// MQTT connections (TCP and WebSocket) accepted since start, CONNECT or not.
    pub accepted: u64,
    /// MQTT connections open now, including those that have not sent CONNECT yet.
    pub size: u64,
    /// MQTT connections closed since start, for any reason.
    pub closed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageStats {
    /// Inbound MQTT packets handled.
    pub handled_packets: u64,
    /// Bytes of the inbound MQTT packets handled.
    pub handled_bytes: u64,
    /// Inbound MQTT packets decoded.
    pub received_packets: u64,
    /// Bytes read from MQTT sockets.
    pub received_bytes: u64,
    /// Outbound MQTT packets written.
    pub send_packets: u64,
    /// Bytes written to MQTT sockets.
    pub send_bytes: u64,
    /// Bytes per socket read that returned data; 0.0 before the first read.
    pub bytes_per_tcp_receive: f64,
    /// Packets per socket read that returned data; 0.0 before the first read.
    pub packets_per_tcp_receive: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    /// Open MQTT connections (mica keys them by peer address and port).
    pub client_nodes: u64,
    /// Open MQTT connections.
    pub connections: u64,
    /// Distinct non-empty usernames among connected clients.
    pub users: u64,
}

/// `{"data":StatVo,"code":1}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsResponse {
    pub data: StatVo,
    /// 1.
    pub code: i32,
}

impl StatVo {
    pub fn from_stats(stats: &Stats) -> StatVo {
        let per_read = |n: u64| {
            if stats.socket_reads == 0 {
                0.0
            } else {
                n as f64 / stats.socket_reads as f64
            }
        };
        StatVo {
            connections: ConnectionStats {
                accepted: stats.sockets_accepted,
                size: stats.sockets_open,
                closed: stats.sockets_closed,
            },
            messages: MessageStats {
                handled_packets: stats.packets_received,
                handled_bytes: stats.bytes_received,
                received_packets: stats.packets_received,
                received_bytes: stats.bytes_received,
                send_packets: stats.packets_sent,
                send_bytes: stats.bytes_sent,
                bytes_per_tcp_receive: per_read(stats.bytes_received),
                packets_per_tcp_receive: per_read(stats.packets_received),
            },
            nodes: NodeStats {
                client_nodes: stats.sockets_open,
                connections: stats.sockets_open,
                users: stats.users,
            },
        }
    }
}

/// Get connection and traffic counters
///
/// The MQTT listeners' counters (TCP and WebSocket; HTTP traffic is not counted).
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "stats",
    operation_id = "getStats",
    responses(
        (status = 200, description = "The counters", body = StatsResponse, content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
    )
)]
pub async fn get_stats(_: Authorized, State(app): State<App>) -> Response {
    let data = StatVo::from_stats(&app.management.stats().await);
    json_response(
        StatusCode::OK,
        &StatsResponse {
            data,
            code: CODE_OK,
        },
    )
}

/// Stream the counters as Server-Sent Events
///
/// A never-ending stream: every `delay` ms (the first after `delay` ms) one
/// `data: <StatVo JSON>` event, CRLF-framed, not wrapped in the
/// `{"data":…,"code":1}` envelope. Swagger UI waits for the end of the response, so
/// "Try it out" shows nothing here; use `curl -N`.
#[utoipa::path(
    get,
    path = "/api/v1/stats/sse",
    tag = "stats",
    operation_id = "streamStats",
    params(
        ("delay" = Option<i32>, Query, description = "Period of the events, ms (default 3000; below 1 means 3000)", minimum = 1, example = 3000),
    ),
    responses(
        (status = 200, description = "`data: {StatVo}\\r\\n\\r\\n` every `delay` ms", body = String, content_type = "text/event-stream"),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
    )
)]
pub async fn stream_stats(
    _: Authorized,
    State(app): State<App>,
    FormParams(params): FormParams,
) -> Response {
    let delay_ms = form::int_param(&params, "delay")
        .and_then(|d| d.trim().parse::<i64>().ok())
        .filter(|d| *d > 0)
        .map(|d| d as u64)
        .unwrap_or(DEFAULT_SSE_DELAY_MS);
    let period = Duration::from_millis(delay_ms);
    let events = futures::stream::unfold(
        tokio::time::interval_at(tokio::time::Instant::now() + period, period),
        move |mut ticks| {
            let app = app.clone();
            async move {
                ticks.tick().await;
                let event = sse_event(&StatVo::from_stats(&app.management.stats().await));
                Some((Ok::<Bytes, std::convert::Infallible>(event), ticks))
            }
        },
    );
    let mut response = axum::body::Body::from_stream(events).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    response
}

/// One event as mica-net's `SseData` writes it.
fn sse_event(stats: &StatVo) -> Bytes {
    let json = serde_json::to_string(stats).unwrap_or_else(|_| "{}".to_string());
    Bytes::from(format!("data: {json}\r\n\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_counters_render_like_jackson() {
        let vo = StatVo::from_stats(&Stats::default());
        assert_eq!(
            serde_json::to_string(&vo).unwrap(),
            r#"{"connections":{"accepted":0,"size":0,"closed":0},"messages":{"handledPackets":0,"handledBytes":0,"receivedPackets":0,"receivedBytes":0,"sendPackets":0,"sendBytes":0,"bytesPerTcpReceive":0.0,"packetsPerTcpReceive":0.0},"nodes":{"clientNodes":0,"connections":0,"users":0}}"#
        );
    }

    #[test]
    fn counters_map_from_the_broker() {
        let stats = Stats {
            sockets_accepted: 5,
            sockets_open: 2,
            sockets_closed: 3,
            packets_received: 10,
            bytes_received: 250,
            packets_sent: 7,
            bytes_sent: 90,
            socket_reads: 4,
            users: 1,
            ..Stats::default()
        };
        let vo = StatVo::from_stats(&stats);
        assert_eq!(
            serde_json::to_value(&vo).unwrap(),
            serde_json::json!({
                "connections": {"accepted": 5, "size": 2, "closed": 3},
                "messages": {"handledPackets": 10, "handledBytes": 250, "receivedPackets": 10,
                    "receivedBytes": 250, "sendPackets": 7, "sendBytes": 90,
                    "bytesPerTcpReceive": 62.5, "packetsPerTcpReceive": 2.5},
                "nodes": {"clientNodes": 2, "connections": 2, "users": 1}
            })
        );
        let event = sse_event(&vo);
        assert!(event.starts_with(b"data: {\"connections\""));
        assert!(event.ends_with(b"}\r\n\r\n"));
    }
}
