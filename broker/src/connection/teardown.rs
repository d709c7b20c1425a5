//! The end of a connection: the MQTT 5 DISCONNECT that says why, the session
//! kept (for its expiry) or ended, the will, and the event.

use std::sync::Arc;
use std::time::Duration;

use mqgate_kit::clock::now_ms;
use mqgate_kit::history::BrokerEvent;
use mqgate_kit::DisconnectReason;

use super::{Connection, Exit, Stream};
use crate::session::Control;
use crate::wire::encode;
use crate::wire::{reason, Version};

/// How long a closing connection may take to flush its last packets.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What an exit means: the recorded reason, the MQTT 5 DISCONNECT to send with
/// its reason string, and whether the will is published.
fn describe(exit: &Exit) -> (DisconnectReason, Option<(u8, &'static str)>, bool) {
    match exit {
        Exit::ClientDisconnect { publish_will } => (DisconnectReason::Normal, None, *publish_will),
        Exit::Lost => (DisconnectReason::ConnectionLost, None, true),
        Exit::KeepaliveTimeout => (
            DisconnectReason::KeepaliveTimeout,
            Some((reason::KEEP_ALIVE_TIMEOUT, "keepalive timeout")),
            true,
        ),
        Exit::TakenOver(_) => (
            DisconnectReason::TakenOver,
            Some((
                reason::SESSION_TAKEN_OVER,
                "another connection took the client id",
            )),
            true,
        ),
        Exit::Closed { reason: code, .. } if *code == reason::QUOTA_EXCEEDED => (
            DisconnectReason::Kicked,
            Some((*code, "too slow to take the messages published to it")),
            true,
        ),
        Exit::Closed { reason: code, .. } => (
            DisconnectReason::Kicked,
            Some((*code, "disconnected by an administrator")),
            true,
        ),
        Exit::Protocol(code, why) => (DisconnectReason::ProtocolError, Some((*code, why)), true),
        Exit::Shutdown => (
            DisconnectReason::ServerShutdown,
            Some((reason::SERVER_SHUTTING_DOWN, "server shutting down")),
            false,
        ),
    }
}

impl Connection {
    pub(crate) async fn teardown(mut self, stream: &mut Stream, exit: Exit) {
        let (recorded, disconnect, publish_will) = describe(&exit);
        tracing::debug!(
            client_id = %self.client_id,
            connection_id = self.id,
            reason = recorded.as_str(),
            "disconnected"
        );
        if let (Version::V5, Some((code, why))) = (self.version, disconnect) {
            encode::disconnect_v5(&mut self.out, code, Some(why));
            self.count_packet_out();
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, self.flush(stream)).await;
        stream.close(CLOSE_WAIT).await;

        let broker = Arc::clone(&self.broker);
        let at_ms = now_ms();
        let discard = matches!(exit, Exit::Closed { discard: true, .. });
        if self.session.detach(self.id, at_ms) {
            if discard || self.expiry_interval == 0 {
                broker.end_session(&self.session);
            } else {
                broker.schedule_expiry(
                    &self.session,
                    Duration::from_secs(self.expiry_interval.into()),
                );
                broker.table.reindex(&self.session);
            }
            if publish_will {
                if let Some(will) = self.will.take() {
                    // never later than the session's own end
                    let session_left = match discard {
                        true => Duration::ZERO,
                        false => Duration::from_secs(self.expiry_interval.into()),
                    };
                    let delay = will.delay.min(session_left);
                    broker
                        .wills
                        .schedule(&broker, Arc::clone(&self.client_id), *will, delay);
                }
            }
        }
        broker.emit(BrokerEvent::Disconnected {
            client_id: self.client_id.to_string(),
            connection_id: self.id,
            username: self.username.clone(),
            at_ms,
            reason: recorded,
        });
        let late = self.control.drain().into_iter().map(|c| match c {
            Control::Close { done, .. } => done,
            Control::TakeOver { done } => Some(done),
        });
        let this = match exit {
            Exit::TakenOver(done)
            | Exit::Closed {
                done: Some(done), ..
            } => Some(done),
            _ => None,
        };
        for done in late.chain(std::iter::once(this)).flatten() {
            let _ = done.send(());
        }
    }
}
