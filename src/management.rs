//! The gateway's implementation of [`Management`]: the broker, the records and
//! the running configuration behind the one interface dialects see.

use std::sync::Arc;

use async_trait::async_trait;
use mqgate_kit::history::{BrokerObserver, History};
use mqgate_kit::*;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::dialects::DIALECTS;
use crate::listener::Listener;
use crate::recorder::Recorder;
use mqgate_broker::Broker;

pub struct GatewayManagement {
    broker: Arc<Broker>,
    records: Option<Arc<Recorder>>,
    config: Config,
    /// Addresses the listeners actually bound (ephemeral ports resolved).
    bound: Vec<(Listener, std::net::SocketAddr)>,
    control: mpsc::UnboundedSender<ControlAction>,
}

impl GatewayManagement {
    pub fn new(
        broker: Arc<Broker>,
        records: Option<Arc<Recorder>>,
        config: Config,
        bound: Vec<(Listener, std::net::SocketAddr)>,
        control: mpsc::UnboundedSender<ControlAction>,
    ) -> Self {
        GatewayManagement {
            broker,
            records,
            config,
            bound,
            control,
        }
    }

    fn bound(&self, listener: Listener) -> Option<std::net::SocketAddr> {
        self.bound
            .iter()
            .find(|(l, _)| *l == listener)
            .map(|(_, a)| *a)
    }
}

#[async_trait]
impl Management for GatewayManagement {
    async fn list_clients(&self, filter: &ClientFilter, page: PageRequest) -> Page<ClientInfo> {
        self.broker.list_clients(filter, page).await
    }

    async fn get_clients(&self, client_ids: &[&str]) -> Vec<Option<ClientInfo>> {
        self.broker.get_clients(client_ids).await
    }

    async fn kick(&self, client_id: &str, options: KickOptions) -> Result<KickOutcome, MgmtError> {
        self.broker.kick(client_id, options).await
    }

    async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        page: PageRequest,
    ) -> Page<SubscriptionInfo> {
        self.broker.list_subscriptions(filter, page).await
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

    fn node_stats(&self) -> Stats {
        self.broker.node_stats()
    }

    async fn nodes(&self) -> Vec<Stats> {
        self.broker.nodes().await
    }

    fn history(&self) -> Option<Arc<dyn History>> {
        self.records.clone().map(|r| r as Arc<dyn History>)
    }

    fn config(&self) -> ConfigView {
        let data_dir = &self.config.data_dir;
        ConfigView {
            mqtt: MqttConfigView {
                tcp_listen: self.bound(Listener::MqttTcp),
                ws_listen: self.bound(Listener::MqttWs),
                ws_paths: self.config.mqtt.ws.paths.clone(),
                acl_file: Some(path_text(self.config.mqtt.acl_file_in(data_dir).path)),
                password_file: Some(path_text(self.config.mqtt.password_file_in(data_dir).path)),
                max_connections: self.config.mqtt.max_connections,
                max_inflight: self.config.mqtt.max_inflight,
            },
            hot: self.broker.hot(),
            dialects: DIALECTS
                .iter()
                .map(|d| {
                    let section = (d.section)(&self.config);
                    DialectListenerView {
                        name: d.name.to_string(),
                        enabled: section.enabled(),
                        listen: self.bound(Listener::Dialect(d)).unwrap_or(section.listen()),
                    }
                })
                .collect(),
            docs_listen: self.bound(Listener::Docs),
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
        self.broker.change_hot(hot);
        Ok(self.config())
    }

    fn control(&self, action: ControlAction) -> Result<(), MgmtError> {
        if action == ControlAction::Restart {
            // what a restart reads again must be usable, or the restart would stop the gateway
            crate::access::users(&self.config)
                .and(crate::access::authorizer(&self.config).map(drop))
                .map_err(|e| MgmtError::InvalidSetting(e.to_string()))?;
        }
        self.control
            .send(action)
            .map_err(|_| MgmtError::ShuttingDown)
    }
}

fn path_text(path: std::path::PathBuf) -> String {
    path.display().to_string()
}
