//! Packets from the client, after the CONNECT.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use super::{mount_filter, mount_topic, Connection, Exit, HeldPublish};
use crate::authz::{Access, ClientRef, DenyAction};
use crate::broker::Recorders;
use crate::counters::Counters;
use crate::message::{Delivery, Message};
use crate::publish::Origin;
use crate::routing::Filter;
use crate::session::{AtomicCounters, Enqueued, SubOptions};
use crate::wire::encode::{self, Ack};
use crate::wire::{self, reason, CodecError, InFilter, InPublish, InSubscribe, Inbound, Version};

/// Retained messages replayed to one SUBSCRIBE at most.
const MAX_RETAINED_REPLAY: usize = 100_000;

impl Connection {
    /// Handles every whole packet in `rbuf`, stopping early when a publish must
    /// wait for room in a subscriber's queue (the rest stays buffered).
    pub(super) fn process_input(&mut self, rbuf: &mut BytesMut) -> Result<(), Exit> {
        let max = self.broker.hot.max_packet_size();
        while self.held.is_none() {
            match wire::read(self.version, rbuf, max) {
                Ok(packet) => {
                    Counters::add(&self.broker.counters.packets_received, 1);
                    AtomicCounters::add(&self.counters().packets_in, 1);
                    self.on_packet(packet)?;
                }
                Err(CodecError::Incomplete) => break,
                Err(CodecError::TooLarge(_)) => {
                    return Err(Exit::Protocol(reason::PACKET_TOO_LARGE, "packet too large"))
                }
                Err(CodecError::Protocol(what)) => {
                    return Err(Exit::Protocol(reason::PROTOCOL_ERROR, what))
                }
                Err(e) => {
                    tracing::debug!(client_id = %self.client_id, "malformed packet: {e}");
                    return Err(Exit::Protocol(reason::MALFORMED_PACKET, "malformed packet"));
                }
            }
        }
        Ok(())
    }

    fn on_packet(&mut self, packet: Inbound) -> Result<(), Exit> {
        match packet {
            Inbound::Publish(p) => self.on_publish(*p)?,
            Inbound::PubAck(pkid) => {
                self.session.acknowledged(pkid);
            }
            Inbound::PubRec(pkid) => {
                let code = match self.session.received(pkid) {
                    true => reason::SUCCESS,
                    false => reason::PACKET_ID_NOT_FOUND,
                };
                self.ack(Ack::PubRel, pkid, code);
            }
            Inbound::PubRel(pkid) => {
                let code = match self.session.released(pkid) {
                    true => reason::SUCCESS,
                    false => reason::PACKET_ID_NOT_FOUND,
                };
                self.ack(Ack::PubComp, pkid, code);
            }
            Inbound::PubComp(pkid) => {
                self.session.completed(pkid);
            }
            Inbound::Subscribe(s) => self.on_subscribe(s)?,
            Inbound::Unsubscribe { pkid, filters } => self.on_unsubscribe(pkid, filters),
            Inbound::PingReq => {
                encode::pingresp(self.version, &mut self.out);
                self.count_packet_out();
            }
            Inbound::Disconnect(d) => {
                if let Some(expiry) = d.session_expiry {
                    if self.expiry_was_zero && expiry > 0 {
                        return Err(Exit::Protocol(
                            reason::PROTOCOL_ERROR,
                            "session expiry raised from 0 at DISCONNECT",
                        ));
                    }
                    self.expiry_interval = expiry.min(self.broker.settings.max_session_expiry);
                }
                return Err(Exit::ClientDisconnect {
                    publish_will: d.reason_code == reason::DISCONNECT_WITH_WILL,
                });
            }
            Inbound::Connect(_) => {
                return Err(Exit::Protocol(reason::PROTOCOL_ERROR, "second CONNECT"));
            }
        }
        Ok(())
    }

    pub(super) fn ack(&mut self, kind: Ack, pkid: u16, code: u8) {
        encode::ack(self.version, &mut self.out, kind, pkid, code);
        self.count_packet_out();
    }

    fn client_ref(&self) -> ClientRef<'_> {
        ClientRef {
            client_id: &self.client_id,
            username: self.username.as_deref(),
            peer: self.peer,
        }
    }

    /// The topic a PUBLISH names, its alias resolved (MQTT 5 topic aliases).
    fn publish_topic(&mut self, p: &InPublish) -> Result<Arc<str>, Exit> {
        let named = std::str::from_utf8(&p.topic)
            .map_err(|_| Exit::Protocol(reason::TOPIC_NAME_INVALID, "topic is not UTF-8"))?;
        let Some(alias) = p.topic_alias else {
            if named.is_empty() {
                return Err(Exit::Protocol(reason::TOPIC_NAME_INVALID, "empty topic"));
            }
            return Ok(named.into());
        };
        let max = self.broker.settings.topic_alias_maximum;
        if self.version == Version::V4 || alias == 0 || alias > max {
            return Err(Exit::Protocol(
                reason::TOPIC_ALIAS_INVALID,
                "topic alias out of range",
            ));
        }
        let slot = usize::from(alias - 1);
        if self.aliases_in.len() < usize::from(max) {
            self.aliases_in.resize(usize::from(max), None);
        }
        if named.is_empty() {
            return self.aliases_in[slot].clone().ok_or(Exit::Protocol(
                reason::PROTOCOL_ERROR,
                "unknown topic alias",
            ));
        }
        let topic: Arc<str> = named.into();
        self.aliases_in[slot] = Some(Arc::clone(&topic));
        Ok(topic)
    }

    fn on_publish(&mut self, p: InPublish) -> Result<(), Exit> {
        let topic = self.publish_topic(&p)?;
        let levels_ok = topic.split('/').count() <= self.broker.settings.max_topic_levels;
        if topic.contains(['+', '#', '\0']) || !levels_ok {
            return Err(Exit::Protocol(
                reason::TOPIC_NAME_INVALID,
                "invalid topic name",
            ));
        }
        if p.has_subscription_ids {
            return Err(Exit::Protocol(
                reason::PROTOCOL_ERROR,
                "PUBLISH with a subscription identifier",
            ));
        }
        let ack = match p.qos {
            0 => None,
            1 => Some((Ack::PubAck, p.pkid)),
            _ => Some((Ack::PubRec, p.pkid)),
        };
        if p.qos == 2 {
            if !self.session.incoming_qos2(p.pkid) {
                // a resend of a message already routed: exactly once means acknowledge only
                self.ack(Ack::PubRec, p.pkid, reason::SUCCESS);
                return Ok(());
            }
            if self.session.incoming_qos2_count()
                > usize::from(self.broker.settings.receive_maximum)
            {
                return Err(Exit::Protocol(
                    reason::RECEIVE_MAXIMUM_EXCEEDED,
                    "receive maximum exceeded",
                ));
            }
        }
        if !self.may_publish(&topic) {
            return self.refuse_publish(&p);
        }
        AtomicCounters::add(&self.counters().messages_in, 1);
        let routed: Arc<str> = match &self.mountpoint {
            Some(m) => mount_topic(m, &topic).into(),
            None => Arc::clone(&topic),
        };
        let expires_at = p
            .properties
            .message_expiry_interval
            .map(|secs| Instant::now() + Duration::from_secs(secs.into()));
        let properties = (!p.properties.is_empty()).then(|| Box::new(p.properties));
        let message = Arc::new(Message {
            id: self.broker.next_message_id(),
            topic: routed,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties,
            expires_at,
            publisher: Some(self.session.id),
        });
        let mut origin = Origin {
            client_id: Some(&self.client_id),
            connection_id: Some(self.id),
            topic: &topic,
            recorders: self.recorders.as_mut(),
        };
        let blocked = self.broker.route(message, &mut origin);
        let recorded = self.recorders.as_mut().and_then(Recorders::settled);
        let settle = match (recorded, self.broker.cluster_room()) {
            (None, None) => None,
            (one, None) | (None, one) => one,
            (Some(record), Some(room)) => Some(Box::pin(async move {
                record.await;
                room.await;
            }) as mqgate_kit::history::Settled),
        };
        match (blocked, settle) {
            (None, None) => {
                if let Some((kind, pkid)) = ack {
                    self.ack(kind, pkid, reason::SUCCESS);
                }
            }
            (blocked, settle) => {
                self.held = Some(Box::new(HeldPublish {
                    blocked,
                    settle,
                    ack,
                }))
            }
        }
        Ok(())
    }

    /// `$` topics belong to the broker; beyond that the authorizer decides.
    fn may_publish(&self, topic: &str) -> bool {
        if topic.starts_with('$') {
            return false;
        }
        self.broker
            .authorizer()
            .is_none_or(|a| a.allows(&self.client_ref(), Access::Publish, topic))
    }

    /// A denied PUBLISH: dropped (MQTT 5 learns why from the acknowledgement) or
    /// the connection closed, as the authorizer says.
    fn refuse_publish(&mut self, p: &InPublish) -> Result<(), Exit> {
        let action = self
            .broker
            .authorizer()
            .map(|a| a.deny_action())
            .unwrap_or_default();
        if action == DenyAction::Disconnect {
            return Err(Exit::Protocol(
                reason::NOT_AUTHORIZED,
                "publish not authorized",
            ));
        }
        self.broker.count_dropped(&self.session);
        match p.qos {
            0 => {}
            1 => self.ack(Ack::PubAck, p.pkid, reason::NOT_AUTHORIZED),
            _ => {
                // nothing was routed: the packet id needs no PUBREL
                self.session.released(p.pkid);
                self.ack(Ack::PubRec, p.pkid, reason::NOT_AUTHORIZED);
            }
        }
        Ok(())
    }

    /// The reason code for one filter of a SUBSCRIBE, or the granted QoS.
    fn check_filter(&self, f: &InFilter) -> Result<u8, Exit> {
        let settings = &self.broker.settings;
        let parsed = Filter::parse(&f.filter);
        if !mqgate_kit::topic::is_valid_topic_filter(&f.filter)
            || f.filter.split('/').count() > settings.max_topic_levels
        {
            return Ok(reason::TOPIC_FILTER_INVALID);
        }
        if parsed.group.is_some() && f.no_local {
            return Err(Exit::Protocol(
                reason::PROTOCOL_ERROR,
                "No Local on a shared subscription",
            ));
        }
        let dollar = parsed.routing.starts_with('$') && !parsed.routing.starts_with("$SYS/");
        let allowed = !dollar
            && self
                .broker
                .authorizer()
                .is_none_or(|a| a.allows(&self.client_ref(), Access::Subscribe, &f.filter));
        if !allowed {
            return Ok(reason::NOT_AUTHORIZED);
        }
        Ok(f.qos.min(2))
    }

    fn on_subscribe(&mut self, s: InSubscribe) -> Result<(), Exit> {
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut replays = Vec::new();
        for f in &s.filters {
            let code = self.check_filter(f)?;
            if code > 2 {
                codes.push(code);
                continue;
            }
            let filter = match &self.mountpoint {
                Some(m) => mount_filter(m, &f.filter),
                None => f.filter.clone(),
            };
            let is_new = !self.session.has_subscription(&filter);
            if is_new
                && self.session.subscription_count()
                    >= self.broker.settings.max_subscriptions_per_client
            {
                codes.push(reason::QUOTA_EXCEEDED);
                continue;
            }
            let options = SubOptions {
                qos: code,
                no_local: f.no_local,
                retain_as_published: f.retain_as_published,
                retain_handling: f.retain_handling,
                subscription_id: s.subscription_id,
            };
            let previous = self
                .broker
                .router
                .subscribe(&self.session, &filter, options);
            codes.push(code);
            // retained messages: on every subscribe (0), on a new one (1), never (2);
            // and never for a shared subscription (MQTT 5 §4.8.2)
            let replay = match f.retain_handling {
                0 => true,
                1 => previous.is_none(),
                _ => false,
            };
            if replay && Filter::parse(&filter).group.is_none() {
                replays.push((filter, options));
            }
        }
        let reason_string = codes
            .iter()
            .any(|c| *c > 2)
            .then(|| "one or more filters were refused".to_string());
        tracing::debug!(client_id = %self.client_id, filters = ?s.filters.iter().map(|f| &f.filter).collect::<Vec<_>>(), ?codes, "subscribe");
        encode::suback(self.version, &mut self.out, s.pkid, &codes, reason_string);
        self.count_packet_out();
        for (filter, options) in replays {
            self.replay_retained(&filter, options);
        }
        Ok(())
    }

    /// Queues the retained messages of a new subscription behind its SUBACK.
    fn replay_retained(&mut self, filter: &str, options: SubOptions) {
        let retained = self.broker.router.retained_for(filter);
        if retained.len() > MAX_RETAINED_REPLAY {
            tracing::warn!(
                client_id = %self.client_id,
                filter,
                count = retained.len(),
                "retained replay truncated"
            );
        }
        for message in retained.into_iter().take(MAX_RETAINED_REPLAY) {
            let delivery = Delivery {
                qos: message.qos.min(options.qos),
                retain: true,
                subscription_ids: options.subscription_id.into_iter().collect(),
                message,
            };
            match self.session.enqueue(delivery, usize::MAX) {
                Enqueued::Queued => {}
                Enqueued::Full(_) | Enqueued::Dropped => self.broker.count_dropped(&self.session),
            }
        }
    }

    fn on_unsubscribe(&mut self, pkid: u16, filters: Vec<String>) {
        let codes: Vec<u8> = filters
            .iter()
            .map(|f| {
                let filter = match &self.mountpoint {
                    Some(m) => mount_filter(m, f),
                    None => f.clone(),
                };
                match self.broker.router.unsubscribe(&self.session, &filter) {
                    true => reason::SUCCESS,
                    false => reason::NO_SUBSCRIPTION_EXISTED,
                }
            })
            .collect();
        encode::unsuback(self.version, &mut self.out, pkid, &codes);
        self.count_packet_out();
    }
}
