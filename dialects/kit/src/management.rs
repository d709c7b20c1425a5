//! The Management trait: the whole contract between the dialects and the broker.

use std::sync::Arc;

use async_trait::async_trait;

use crate::history::History;
use crate::model::*;

/// Errors the broker reports to a dialect. Each dialect maps them onto its vendor's
/// error envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MgmtError {
    #[error("client not found")]
    ClientNotFound,
    #[error("invalid topic name: {0}")]
    InvalidTopicName(String),
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(String),
    #[error("invalid qos {0}")]
    InvalidQos(u8),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    #[error("the broker did not answer in time")]
    Timeout,
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error("store error: {0}")]
    Store(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Everything a dialect may ask of the broker. Implemented by the gateway; a dialect
/// holds it as `Arc<dyn Management>`.
#[async_trait]
pub trait Management: Send + Sync + 'static {
    // ---- clients -------------------------------------------------------------

    /// Clients (connected, and offline persistent sessions) matching `filter`, on
    /// every node of a cluster. Only the requested page is copied out of the
    /// session tables.
    async fn list_clients(&self, filter: &ClientFilter, page: PageRequest) -> Page<ClientInfo>;

    async fn get_client(&self, client_id: &str) -> Option<ClientInfo> {
        self.get_clients(&[client_id]).await.pop().flatten()
    }

    /// [`Self::get_client`] for many ids at once, in the same order.
    async fn get_clients(&self, client_ids: &[&str]) -> Vec<Option<ClientInfo>>;

    /// Closes the client's connection (its will is published, as for any abnormal
    /// close) and, with `discard_session`, drops its session.
    async fn kick(&self, client_id: &str, options: KickOptions) -> Result<KickOutcome, MgmtError>;

    // ---- subscriptions ---------------------------------------------------------

    /// Subscriptions matching `filter`, on every node of a cluster.
    async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        page: PageRequest,
    ) -> Page<SubscriptionInfo>;

    /// Subscribes a client on its behalf. The client sees no SUBACK; matching
    /// messages reach it from the moment this returns. Retained messages are not sent.
    async fn subscribe(
        &self,
        client_id: &str,
        subscriptions: Vec<SubscriptionRequest>,
        mode: OnBehalf,
    ) -> Result<SubscribeOutcome, MgmtError>;

    /// Removes subscriptions made by the client or on its behalf. Returns, per filter,
    /// whether a subscription existed.
    async fn unsubscribe(
        &self,
        client_id: &str,
        topic_filters: Vec<String>,
    ) -> Result<Vec<bool>, MgmtError>;

    // ---- messages --------------------------------------------------------------

    /// Publishes like an MQTT client would. QoS 1 and 2 return once the broker has
    /// taken the message.
    async fn publish(&self, request: PublishRequest) -> Result<MessageId, MgmtError>;

    // ---- observation -----------------------------------------------------------

    /// This node's figures (a single node's are the broker's).
    fn node_stats(&self) -> Stats;

    /// Every node's figures, this node's first; nodes that do not answer within
    /// the cluster's management timeout are left out.
    async fn nodes(&self) -> Vec<Stats>;

    /// The whole broker's figures: every node's, added up ([`Stats::sum`]).
    async fn stats(&self) -> Stats {
        Stats::sum(self.nodes().await)
    }

    /// Connection and message records, when the gateway keeps them.
    fn history(&self) -> Option<Arc<dyn History>>;

    // ---- configuration and control ---------------------------------------------

    fn config(&self) -> ConfigView;

    /// Applies a change to the hot-updatable settings and returns the new view.
    fn update_config(&self, patch: HotConfigPatch) -> Result<ConfigView, MgmtError>;

    /// Stops or restarts the gateway, gracefully, shortly after this returns.
    fn control(&self, action: ControlAction) -> Result<(), MgmtError>;
}
