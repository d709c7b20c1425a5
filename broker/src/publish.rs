//! Routing a message into its subscribers' queues, and what a publisher does when
//! a live subscriber's queue is full.
//!
//! The policy: a publisher waits for room (a client's connection stops reading
//! meanwhile, which slows it down through TCP), up to `slow_subscriber_timeout`.
//! A subscriber that keeps it waiting that long is disconnected (MQTT 5: DISCONNECT
//! 0x97) and counted; the waited-for message still goes into its queue, so a
//! persistent session receives it when it reconnects. Until its connection is
//! gone, nobody waits for it again: its queue takes what fits and the rest is
//! counted as dropped, as for an offline session. Nothing acknowledged is dropped
//! silently: every message that reaches nobody is counted in `messages_dropped`.

use std::sync::Arc;

use mqgate_kit::history::{BrokerEvent, MessageInEvent};
use mqgate_kit::{MessageId, MgmtError, PublishRequest};
use tokio::time::Instant;

use crate::broker::{Broker, Recorders};
use crate::counters::Counters;
use crate::message::{Delivery, Message};
use crate::session::{Control, Enqueued, Session};
use crate::wire::reason;

/// Who published a message, for the records: the client (or the sender a
/// management API names) and the topic as that publisher wrote it.
pub(crate) struct Origin<'a> {
    pub client_id: Option<&'a str>,
    pub connection_id: Option<mqgate_kit::ConnectionId>,
    pub topic: &'a str,
    /// The observers that record this publisher's messages, if any.
    pub recorders: Option<&'a mut Recorders>,
}

/// Deliveries that found a full queue, and how long their publisher may wait.
pub(crate) struct Blocked {
    pub waiting: Vec<(Arc<Session>, Delivery)>,
    pub deadline: Instant,
}

impl Broker {
    /// Routes a message: the retained store, then every matching session's queue.
    /// Returns what could not be queued yet because a live queue is full.
    pub(crate) fn route(&self, message: Arc<Message>, origin: &mut Origin<'_>) -> Option<Blocked> {
        Counters::add(&self.counters.messages_received, 1);
        if let Some(recorders) = origin.recorders.as_deref_mut() {
            let at_ms = recorders.now_ms();
            recorders.report(&BrokerEvent::MessageIn(MessageInEvent {
                message_id: message.id,
                client_id: origin.client_id,
                connection_id: origin.connection_id,
                topic: origin.topic,
                qos: message.qos,
                retain: message.retain,
                payload: &message.payload,
                at_ms,
            }));
        }
        // in a cluster NATS picks the member of each shared group, unless the
        // message could not go out (then this node's members are the only ones)
        let (forwarded, shared_here) = match self.cluster.get() {
            None => (false, true),
            Some(cluster) => {
                let remote_groups = cluster.forward(&message);
                (true, !remote_groups)
            }
        };
        let (targets, blocked) = self.deliver_to(message, shared_here);
        if targets == 0 && !forwarded {
            Counters::add(&self.counters.messages_dropped, 1);
        }
        blocked
    }

    /// The retained store and the subscribers' queues, without counting the
    /// message as received (the broker's own `$SYS` messages). Returns how many
    /// sessions it matched, and those whose queue was full.
    pub(crate) fn deliver(&self, message: Arc<Message>) -> (usize, Option<Blocked>) {
        self.deliver_to(message, true)
    }

    /// [`Broker::deliver`], leaving shared groups out unless `shared`.
    fn deliver_to(&self, message: Arc<Message>, shared: bool) -> (usize, Option<Blocked>) {
        if message.retain
            && self
                .router
                .retain(Arc::clone(&message), self.settings.max_retained)
                .is_err()
        {
            tracing::warn!(topic = %message.topic, "retained store full: message not retained");
        }
        let targets = self
            .router
            .targets(&message.topic, message.publisher, shared);
        self.enqueue_all(message, targets)
    }

    /// A message another node sent: to this node's plain subscribers, or to
    /// the member whose turn it is of the shared group NATS picked this node
    /// for. The retained store learns of it on its own subject. A message that
    /// finds nobody here is not counted as dropped: its origin counted it sent.
    pub(crate) fn deliver_remote(
        &self,
        message: Arc<Message>,
        group: Option<(&str, &str)>,
    ) -> Option<Blocked> {
        let targets = match group {
            None => self.router.targets(&message.topic, None, false),
            Some((routing, group)) => self
                .router
                .group_target(routing, group)
                .into_iter()
                .collect(),
        };
        self.enqueue_all(message, targets).1
    }

    fn enqueue_all(
        &self,
        message: Arc<Message>,
        targets: Vec<crate::routing::Target>,
    ) -> (usize, Option<Blocked>) {
        let matched = targets.len();
        let max_queued = self.hot.max_queued();
        let mut waiting = Vec::new();
        for target in targets {
            let delivery = Delivery {
                qos: message.qos.min(target.granted_qos),
                retain: message.retain && target.retain_as_published,
                subscription_ids: target.subscription_ids,
                message: Arc::clone(&message),
            };
            match target.session.enqueue(delivery, max_queued) {
                Enqueued::Queued => {}
                Enqueued::Full(delivery) => waiting.push((target.session, delivery)),
                Enqueued::Dropped => self.count_dropped(&target.session),
            }
        }
        let blocked = (!waiting.is_empty()).then(|| Blocked {
            waiting,
            deadline: Instant::now() + self.settings.slow_subscriber_timeout,
        });
        (matched, blocked)
    }

    pub(crate) fn count_dropped(&self, session: &Session) {
        Counters::add(&self.counters.messages_dropped, 1);
        Counters::add(&session.counters.messages_dropped, 1);
    }

    /// Tries the waiting deliveries again; true when none is left waiting.
    pub(crate) fn retry(&self, blocked: &mut Blocked) -> bool {
        let max_queued = self.hot.max_queued();
        let mut still = Vec::new();
        for (session, delivery) in blocked.waiting.drain(..) {
            match session.enqueue(delivery, max_queued) {
                Enqueued::Queued => {}
                Enqueued::Full(delivery) => still.push((session, delivery)),
                Enqueued::Dropped => self.count_dropped(&session),
            }
        }
        blocked.waiting = still;
        blocked.waiting.is_empty()
    }

    /// The publisher's patience ran out: the subscribers still full are
    /// disconnected as too slow (and counted, once each), and the message goes
    /// into their queues anyway.
    pub(crate) fn give_up(&self, blocked: Blocked) {
        for (session, delivery) in blocked.waiting {
            if session.give_up() {
                Counters::add(&self.counters.slow_subscribers, 1);
                tracing::info!(client_id = %session.client_id, "disconnecting a subscriber too slow to take its messages");
                if let Some(control) = session.control() {
                    control.send(Control::Close {
                        reason: reason::QUOTA_EXCEEDED,
                        discard: false,
                        done: None,
                    });
                }
            }
            if delivery.qos > 0 {
                session.enqueue_anyway(delivery);
            } else {
                self.count_dropped(&session);
            }
        }
    }

    /// Waits for room for every waiting delivery, up to the deadline; then gives up.
    pub(crate) async fn wait_for_room(&self, mut blocked: Blocked) {
        let max_queued = self.hot.max_queued();
        loop {
            if self.retry(&mut blocked) {
                return;
            }
            let session = Arc::clone(&blocked.waiting[0].0);
            let room = tokio::time::timeout_at(blocked.deadline, session.room_freed(max_queued));
            if room.await.is_err() {
                self.retry(&mut blocked);
                self.give_up(blocked);
                return;
            }
        }
    }

    /// Publishes for a management API (or a will): validated like a client's
    /// PUBLISH; returns once the message is in every subscriber's queue.
    pub async fn publish(&self, request: PublishRequest) -> Result<MessageId, MgmtError> {
        if self.is_shutting_down() {
            return Err(MgmtError::ShuttingDown);
        }
        if !mqgate_kit::topic::is_valid_topic_name(&request.topic)
            || request.topic.split('/').count() > self.settings.max_topic_levels
        {
            return Err(MgmtError::InvalidTopicName(request.topic));
        }
        if request.qos > 2 {
            return Err(MgmtError::InvalidQos(request.qos));
        }
        if request.payload.len() + request.topic.len() > self.hot.max_packet_size() {
            return Err(MgmtError::PayloadTooLarge);
        }
        let id = self.next_message_id();
        let routed = match &request.mountpoint {
            Some(mount) => crate::connection::mount_topic(mount, &request.topic),
            None => request.topic.clone(),
        };
        let expires_at = request
            .properties
            .message_expiry_interval
            .map(|secs| Instant::now() + std::time::Duration::from_secs(secs.into()));
        let properties = (!request.properties.is_empty()).then(|| Box::new(request.properties));
        let origin_topic = request.topic;
        let message = Arc::new(Message {
            id,
            topic: routed.into(),
            payload: request.payload,
            qos: request.qos,
            retain: request.retain,
            properties,
            expires_at,
            publisher: None,
        });
        // a publish naming no sender is reported to every message observer
        let mut recorders = self.recorders_of(request.sender.as_deref(), false);
        let mut origin = Origin {
            client_id: request.sender.as_deref(),
            connection_id: None,
            topic: &origin_topic,
            recorders: recorders.as_mut(),
        };
        if let Some(blocked) = self.route(message, &mut origin) {
            self.wait_for_room(blocked).await;
        }
        if let Some(settle) = recorders.as_mut().and_then(Recorders::settled) {
            settle.await;
        }
        if let Some(room) = self.cluster_room() {
            room.await;
        }
        Ok(id)
    }
}
