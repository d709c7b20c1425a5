//! `$SYS/broker/...`: the broker's statistics as retained messages, under
//! mosquitto's topic names, every configured interval.

use std::sync::Arc;

use bytes::Bytes;

use crate::broker::Broker;
use crate::counters::Counters;
use crate::message::Message;

/// Publishes every statistic (and the added counters) once.
pub(crate) fn publish_statistics(broker: &Broker) {
    for (topic, value) in statistics(broker).into_iter().chain(broker.sys_counters()) {
        publish(broker, topic, value);
    }
}

fn statistics(broker: &Broker) -> Vec<(&'static str, String)> {
    let s = broker.stats();
    let c = &broker.counters;
    vec![
        (
            "$SYS/broker/version",
            format!("mqgate {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "$SYS/broker/uptime",
            format!("{} seconds", s.uptime_ms / 1000),
        ),
        ("$SYS/broker/clients/connected", s.connections.to_string()),
        ("$SYS/broker/clients/total", s.sessions.to_string()),
        (
            "$SYS/broker/clients/disconnected",
            (s.sessions - s.connections).to_string(),
        ),
        ("$SYS/broker/clients/maximum", s.connections_max.to_string()),
        (
            "$SYS/broker/messages/received",
            s.messages_received.to_string(),
        ),
        ("$SYS/broker/messages/sent", s.messages_sent.to_string()),
        (
            "$SYS/broker/publish/messages/dropped",
            s.messages_dropped.to_string(),
        ),
        (
            "$SYS/broker/clients/slow/disconnected",
            Counters::load(&c.slow_subscribers).to_string(),
        ),
        (
            "$SYS/broker/connections/panicked",
            Counters::load(&c.connection_panics).to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count",
            s.subscriptions.to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            s.retained.to_string(),
        ),
        (
            "$SYS/broker/load/bytes/received",
            s.bytes_received.to_string(),
        ),
        ("$SYS/broker/load/bytes/sent", s.bytes_sent.to_string()),
    ]
}

fn publish(broker: &Broker, topic: &str, value: String) {
    let message = Arc::new(Message {
        id: broker.next_message_id(),
        topic: topic.into(),
        payload: Bytes::from(value),
        qos: 0,
        retain: true,
        properties: None,
        expires_at: None,
        publisher: None,
    });
    if let (_, Some(blocked)) = broker.deliver(message) {
        // a subscriber too busy for statistics misses this round of them
        for (session, _) in blocked.waiting {
            broker.count_dropped(&session);
        }
    }
}
