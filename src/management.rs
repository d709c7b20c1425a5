//! The gateway's implementation of [`Management`]: the broker, the records and
//! the running configuration behind the one interface dialects see.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use mqgate_kit::history::{BrokerObserver, History};
use mqgate_kit::*;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::broker::Broker;
use crate::config::Config;
use crate::recorder::Recorder;

pub struct GatewayManagement {
    broker: Arc<Broker>,
    records: Option<Arc<Recorder>>,
    config: Config,
    /// Addresses the listeners actually bound (ephemeral ports resolved).
    bound: Vec<(String, std::net::SocketAddr)>,
    control: mpsc::UnboundedSender<ControlAction>,
    process: Mutex<ProcessSampler>,
}

impl GatewayManagement {
    pub fn new(
        broker: Arc<Broker>,
        records: Option<Arc<Recorder>>,
        config: Config,
        bound: Vec<(String, std::net::SocketAddr)>,
        control: mpsc::UnboundedSender<ControlAction>,
    ) -> Self {
        GatewayManagement {
            broker,
            records,
            config,
            bound,
            control,
            process: Mutex::new(ProcessSampler::default()),
        }
    }

    fn bound(&self, name: &str) -> Option<std::net::SocketAddr> {
        self.bound.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }
}

#[async_trait]
impl Management for GatewayManagement {
    fn list_clients(&self, filter: &ClientFilter, page: PageRequest) -> Page<ClientInfo> {
        self.broker.table.list(filter, page)
    }

    fn get_client(&self, client_id: &str) -> Option<ClientInfo> {
        // a pending entry is only subscriptions kept for a client never seen
        self.broker
            .table
            .get(client_id)
            .filter(|e| e.state.lock().kind != crate::broker::table::SessionKind::Pending)
            .map(|e| e.info())
    }

    async fn kick(&self, client_id: &str, options: KickOptions) -> Result<KickOutcome, MgmtError> {
        self.broker.kick(client_id, options).await
    }

    fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        page: PageRequest,
    ) -> Page<SubscriptionInfo> {
        self.broker.table.subscriptions(filter, page)
    }

    async fn subscribe(
        &self,
        client_id: &str,
        subscriptions: Vec<SubscriptionRequest>,
        mode: OnBehalf,
    ) -> Result<SubscribeOutcome, MgmtError> {
        self.broker.subscribe(client_id, subscriptions, mode).await
    }

    async fn unsubscribe(
        &self,
        client_id: &str,
        topic_filters: Vec<String>,
    ) -> Result<Vec<bool>, MgmtError> {
        self.broker.unsubscribe(client_id, topic_filters).await
    }

    async fn publish(&self, request: PublishRequest) -> Result<MessageId, MgmtError> {
        // records.sync: a recorded sender's publish is answered once its record is
        // committed.
        let sync = self.records.as_ref().filter(|r| {
            r.is_sync()
                && request
                    .sender
                    .as_deref()
                    .is_some_and(|s| r.records_client(s))
        });
        let id = self.broker.publish(request).await?;
        if let Some(records) = sync {
            records.committed().await;
        }
        Ok(id)
    }

    fn stats(&self) -> Stats {
        let c = &self.broker.counters;
        let g = self.broker.table.gauges();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let max = |a: &std::sync::atomic::AtomicU64, now: u64| {
            a.fetch_max(now, Ordering::Relaxed).max(now)
        };
        let (memory_bytes, memory_bytes_max, cpu_percent) = self.process.lock().sample();
        let now = mqgate_kit::clock::now_ms();
        Stats {
            sockets_accepted: load(&c.sockets_accepted),
            sockets_open: load(&c.sockets_open),
            sockets_closed: load(&c.sockets_closed),
            connections: load(&c.connections),
            connections_max: load(&c.connections_max),
            connections_accepted: load(&c.connections_accepted),
            sessions: g.sessions,
            sessions_max: max(&c.sessions_max, g.sessions),
            subscriptions: g.subscriptions,
            subscriptions_max: max(&c.subscriptions_max, g.subscriptions),
            topics: g.topics,
            topics_max: max(&c.topics_max, g.topics),
            retained: self.broker.retained_count(),
            messages_received: load(&c.messages_received),
            messages_sent: load(&c.messages_sent),
            messages_dropped: load(&c.messages_dropped),
            packets_received: load(&c.packets_received),
            packets_sent: load(&c.packets_sent),
            bytes_received: load(&c.bytes_received),
            bytes_sent: load(&c.bytes_sent),
            socket_reads: load(&c.socket_reads),
            users: g.users,
            started_at_ms: self.broker.started_at_ms,
            uptime_ms: (now - self.broker.started_at_ms).max(0) as u64,
            memory_bytes,
            memory_bytes_max,
            cpu_percent,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    fn history(&self) -> Option<Arc<dyn History>> {
        self.records.clone().map(|r| r as Arc<dyn History>)
    }

    fn config(&self) -> ConfigView {
        ConfigView {
            mqtt: MqttConfigView {
                tcp_listen: self.bound("mqtt.tcp"),
                ws_listen: self.bound("mqtt.ws"),
                ws_paths: vec![self.config.mqtt.ws.path.clone()],
                acl_file: None,
                password_file: None,
                max_connections: self.config.mqtt.max_connections,
                max_inflight: 100,
            },
            hot: self.broker.hot(),
            dialects: self
                .config
                .dialects()
                .into_iter()
                .map(|(name, d)| DialectListenerView {
                    name: name.to_string(),
                    enabled: d.enabled(),
                    listen: self.bound(name).unwrap_or(d.listen()),
                })
                .collect(),
            docs_listen: self.bound("docs"),
            data_dir: self.config.data_dir.display().to_string(),
        }
    }

    fn update_config(&self, patch: HotConfigPatch) -> Result<ConfigView, MgmtError> {
        let mut hot = self.broker.hot();
        if let Some(v) = patch.allow_anonymous {
            hot.allow_anonymous = v;
        }
        if let Some(v) = patch.max_packet_size {
            if v < 64 {
                return Err(MgmtError::InvalidSetting(format!(
                    "max_packet_size {v} is below 64 bytes"
                )));
            }
            hot.max_packet_size = v;
        }
        if let Some(v) = patch.client_max_packet_size {
            hot.client_max_packet_size = v;
        }
        if let Some(v) = patch.keepalive_backoff {
            if !(1.0..=10.0).contains(&v) {
                return Err(MgmtError::InvalidSetting(format!(
                    "keepalive_backoff {v} is outside 1.0..=10.0"
                )));
            }
            hot.keepalive_backoff = v;
        }
        if let Some(v) = patch.max_queued_messages {
            hot.max_queued_messages = v;
        }
        self.broker.set_hot(hot);
        Ok(self.config())
    }

    fn control(&self, action: ControlAction) -> Result<(), MgmtError> {
        self.control
            .send(action)
            .map_err(|_| MgmtError::ShuttingDown)
    }
}

/// Reads the process's resident memory and CPU time from /proc (Linux); zeros
/// elsewhere.
#[derive(Default)]
struct ProcessSampler {
    last_cpu_ticks: u64,
    last_at: Option<std::time::Instant>,
    max_rss: u64,
}

impl ProcessSampler {
    fn sample(&mut self) -> (u64, u64, f64) {
        let rss = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u64>().ok())
            })
            .map(|pages| pages * 4096)
            .unwrap_or(0);
        self.max_rss = self.max_rss.max(rss);
        let ticks = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0);
        let now = std::time::Instant::now();
        let cpu = match self.last_at {
            Some(at) => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    (ticks.saturating_sub(self.last_cpu_ticks) as f64 / 100.0) / secs * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last_cpu_ticks = ticks;
        self.last_at = Some(now);
        (rss, self.max_rss, cpu)
    }
}
