//! Management commands to a client held by another node: kick, subscribe and
//! unsubscribe on its behalf. A node asked about a client id it does not hold
//! sends the command on the id's claim subject ([`super::takeover`]), marked
//! by a header, so holding an id still costs one NATS subscription. NATS answers "no
//! responders" at once when no node holds the id; the holder applies the
//! command as to one of its own clients and answers the outcome.
//!
//! Requests and answers are JSON: small, rare, and readable with `nats sub`.

use std::sync::Arc;

use bytes::Bytes;
use mqgate_kit::{
    KickOptions, KickOutcome, MgmtError, OnBehalf, SubscribeOutcome, SubscriptionRequest,
};
use serde::{Deserialize, Serialize};

use super::{bump, Cluster};
use crate::broker::Broker;
use crate::session::SessionKind;

/// A command for the node holding `client_id`.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    client_id: String,
    command: Command,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Command {
    Kick {
        discard_session: bool,
    },
    /// (filter, QoS) pairs; only an existing session is subscribed remotely
    /// (a subscription kept for an unknown id stays on the node asked).
    Subscribe {
        subscriptions: Vec<(String, u8)>,
    },
    Unsubscribe {
        filters: Vec<String>,
    },
    /// Whether the id's client is connected there now.
    IsConnected,
}

/// What the holder answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Kicked(Kicked),
    Subscribed { offline: bool },
    Unsubscribed(Vec<bool>),
    Connected(bool),
    Failed(Failure),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Kicked {
    Disconnected,
    SessionDiscarded,
    NotFound,
}

/// A [`MgmtError`] across the wire; what a dialect tells apart keeps its kind.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Failure {
    ClientNotFound,
    InvalidTopicFilter(String),
    InvalidQos(u8),
    Other(String),
}

impl From<MgmtError> for Failure {
    fn from(e: MgmtError) -> Failure {
        match e {
            MgmtError::ClientNotFound => Failure::ClientNotFound,
            MgmtError::InvalidTopicFilter(f) => Failure::InvalidTopicFilter(f),
            MgmtError::InvalidQos(q) => Failure::InvalidQos(q),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl From<Failure> for MgmtError {
    fn from(f: Failure) -> MgmtError {
        match f {
            Failure::ClientNotFound => MgmtError::ClientNotFound,
            Failure::InvalidTopicFilter(f) => MgmtError::InvalidTopicFilter(f),
            Failure::InvalidQos(q) => MgmtError::InvalidQos(q),
            Failure::Other(message) => {
                MgmtError::Internal(format!("on the client's node: {message}"))
            }
        }
    }
}

impl Answer {
    pub(crate) fn kicked(self) -> Result<KickOutcome, MgmtError> {
        match self {
            Answer::Kicked(Kicked::Disconnected) => Ok(KickOutcome::Disconnected),
            Answer::Kicked(Kicked::SessionDiscarded) => Ok(KickOutcome::SessionDiscarded),
            Answer::Kicked(Kicked::NotFound) => Ok(KickOutcome::NotFound),
            other => Err(other.unexpected()),
        }
    }

    pub(crate) fn subscribed(self) -> Result<SubscribeOutcome, MgmtError> {
        match self {
            Answer::Subscribed { offline: false } => Ok(SubscribeOutcome::Live),
            Answer::Subscribed { offline: true } => Ok(SubscribeOutcome::Offline),
            other => Err(other.unexpected()),
        }
    }

    pub(crate) fn unsubscribed(self) -> Result<Vec<bool>, MgmtError> {
        match self {
            Answer::Unsubscribed(existed) => Ok(existed),
            other => Err(other.unexpected()),
        }
    }

    fn unexpected(self) -> MgmtError {
        match self {
            Answer::Failed(failure) => failure.into(),
            other => MgmtError::Internal(format!(
                "unexpected answer from the client's node: {other:?}"
            )),
        }
    }
}

impl Cluster {
    /// Whether another node has `client_id` connected now (false when NATS
    /// cannot be asked, or the holder does not answer in time).
    pub(crate) async fn connected_elsewhere(&self, client_id: &str) -> bool {
        matches!(
            self.command(client_id, Command::IsConnected).await,
            Ok(Some(Answer::Connected(true)))
        )
    }

    /// Sends `command` to the node holding `client_id`. `Ok(None)`: no node
    /// holds it (or NATS is out of reach, so none can be asked).
    pub(crate) async fn command(
        &self,
        client_id: &str,
        command: Command,
    ) -> Result<Option<Answer>, MgmtError> {
        if !self.is_connected() {
            return Ok(None);
        }
        let request = Request {
            client_id: client_id.to_string(),
            command,
        };
        let body = serde_json::to_vec(&request).map_err(|e| MgmtError::Internal(e.to_string()))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(COMMAND_HEADER, "1");
        let subject = self.subjects.claim(client_id);
        let asked = self
            .client
            .request_with_headers(subject, headers, body.into());
        let reply = match tokio::time::timeout(self.management_timeout, asked).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                return Ok(None)
            }
            Ok(Err(e)) => {
                bump(&self.counters.unanswered);
                tracing::info!(client_id, %e, "cluster: management command unanswered");
                return Err(MgmtError::Timeout);
            }
            Err(_) => {
                bump(&self.counters.unanswered);
                tracing::info!(
                    client_id,
                    "cluster: management command unanswered within the timeout"
                );
                return Err(MgmtError::Timeout);
            }
        };
        serde_json::from_slice(&reply.payload)
            .map(Some)
            .map_err(|e| MgmtError::Internal(format!("bad answer from the client's node: {e}")))
    }
}

/// The header that tells a management command from a takeover claim.
const COMMAND_HEADER: &str = "Mqgate-Command";

pub(super) fn is_command(message: &async_nats::Message) -> bool {
    message
        .headers
        .as_ref()
        .is_some_and(|h| h.get(COMMAND_HEADER).is_some())
}

/// Applies a command that arrived on a held client id's claim subject and
/// answers its outcome.
pub(super) fn answer(broker: &Arc<Broker>, cluster: &Arc<Cluster>, message: async_nats::Message) {
    let Some(reply) = message.reply else {
        return;
    };
    let Ok(request) = serde_json::from_slice::<Request>(&message.payload) else {
        tracing::debug!("cluster: unreadable management command");
        return;
    };
    let broker = Arc::clone(broker);
    let cluster = Arc::clone(cluster);
    tokio::spawn(async move {
        // a digest shared by two long ids: only the real holder answers
        if !broker.holds(&request.client_id) {
            return;
        }
        let answer = broker.apply(&request.client_id, request.command).await;
        if let Ok(body) = serde_json::to_vec(&answer) {
            let _ = cluster.client.publish(reply, Bytes::from(body)).await;
        }
    });
}

impl Broker {
    fn holds(&self, client_id: &str) -> bool {
        self.table.get(client_id).is_some() || self.table.get_pending(client_id).is_some()
    }

    /// Applies a command from another node to a client of this one.
    async fn apply(&self, client_id: &str, command: Command) -> Answer {
        let failed = |e: MgmtError| Answer::Failed(e.into());
        match command {
            Command::Kick { discard_session } => {
                let options = KickOptions { discard_session };
                match self.kick_here(client_id, options).await {
                    Ok(KickOutcome::Disconnected) => Answer::Kicked(Kicked::Disconnected),
                    Ok(KickOutcome::SessionDiscarded) => Answer::Kicked(Kicked::SessionDiscarded),
                    Ok(KickOutcome::NotFound) => Answer::Kicked(Kicked::NotFound),
                    Err(e) => failed(e),
                }
            }
            Command::Subscribe { subscriptions } => {
                let requests: Vec<_> = subscriptions
                    .into_iter()
                    .map(|(topic_filter, qos)| SubscriptionRequest { topic_filter, qos })
                    .collect();
                let subscribed = match self.check_requests(&requests) {
                    Ok(()) => {
                        self.subscribe_here(client_id, requests, OnBehalf::ExistingSession)
                            .await
                    }
                    Err(e) => Err(e),
                };
                match subscribed {
                    Ok(SubscribeOutcome::Live) => Answer::Subscribed { offline: false },
                    Ok(_) => Answer::Subscribed { offline: true },
                    Err(e) => failed(e),
                }
            }
            Command::Unsubscribe { filters } => {
                match self.unsubscribe_here(client_id, filters).await {
                    Ok(existed) => Answer::Unsubscribed(existed),
                    Err(e) => failed(e),
                }
            }
            Command::IsConnected => Answer::Connected(
                self.table
                    .get(client_id)
                    .is_some_and(|s| s.kind() == SessionKind::Connected),
            ),
        }
    }
}
