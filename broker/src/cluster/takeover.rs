//! One client id, one session, cluster-wide. A node subscribes to the claim
//! subject of every client id it holds a session of. A CONNECT for a client id
//! this node holds no session of first claims it: NATS answers "no responders"
//! at once when no node holds it; otherwise the holder disconnects its client
//! (MQTT 5: DISCONNECT 0x8E, session taken over), ends the session there, and
//! answers after that. The CONNECT goes on after the answer or the timeout.
//! Management commands for a held client id arrive on the same subject
//! ([`super::remote`]), so holding an id costs one NATS subscription.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{bump, Cluster};
use crate::broker::Broker;
use crate::session::{Control, SessionKind};

/// How long the holder waits for its connection's teardown.
const TEARDOWN_WAIT: Duration = Duration::from_secs(5);

impl Cluster {
    /// Asks the node holding `client_id` (if any) to give it up; returns once
    /// it has, when no node holds it, or after the takeover timeout.
    pub(crate) async fn claim(&self, client_id: &str) {
        if !self.is_connected() {
            tracing::debug!(
                client_id,
                "cluster: NATS unreachable, client id not claimed"
            );
            return;
        }
        let mut request = BytesMut::with_capacity(8 + client_id.len());
        request.put_u64(self.node_id);
        request.put_slice(client_id.as_bytes());
        let subject = self.subjects.claim(client_id);
        let asked = self.client.request(subject, request.freeze());
        match tokio::time::timeout(self.takeover_timeout, asked).await {
            Ok(Ok(_)) => tracing::debug!(client_id, "cluster: taken over from another node"),
            Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {}
            Ok(Err(e)) => tracing::info!(client_id, %e, "cluster: claim unanswered"),
            Err(_) => tracing::info!(client_id, "cluster: claim unanswered within the timeout"),
        }
    }
}

/// Subscribes to `subject` and answers every claim that arrives on it.
pub(super) async fn answer_claims(
    broker: Arc<Broker>,
    cluster: &Arc<Cluster>,
    subject: String,
) -> Option<JoinHandle<()>> {
    let mut claims = match cluster.client.subscribe(subject.clone()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%e, subject, "cluster: cannot subscribe to claims");
            return None;
        }
    };
    let cluster = Arc::clone(cluster);
    Some(tokio::spawn(async move {
        while let Some(claim) = claims.next().await {
            if super::remote::is_command(&claim) {
                super::remote::answer(&broker, &cluster, claim);
                continue;
            }
            let (Some(reply), Some((origin, client_id))) = (claim.reply, parse(&claim.payload))
            else {
                continue;
            };
            if origin == cluster.node_id {
                continue;
            }
            let broker = Arc::clone(&broker);
            let cluster = Arc::clone(&cluster);
            tokio::spawn(async move {
                if broker.give_up_client(&client_id).await {
                    bump(&cluster.counters.taken_over);
                }
                let _ = cluster.client.publish(reply, Bytes::new()).await;
            });
        }
    }))
}

fn parse(payload: &Bytes) -> Option<(u64, String)> {
    let origin = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let client_id = std::str::from_utf8(payload.get(8..)?).ok()?;
    Some((origin, client_id.to_string()))
}

impl Broker {
    /// Another node admits `client_id`: its connection here is closed as taken
    /// over and its session ends here (the session does not move between
    /// nodes). Whether there was a session.
    async fn give_up_client(&self, client_id: &str) -> bool {
        let _guard = self.locks.lock(client_id).await;
        let Some(session) = self.table.get(client_id) else {
            return false;
        };
        if session.kind() == SessionKind::Pending {
            return false;
        }
        if let Some(control) = session.control() {
            let (done, wait) = oneshot::channel();
            control.send(Control::TakeOver { done });
            let _ = tokio::time::timeout(TEARDOWN_WAIT, wait).await;
        }
        // a persistent session outlives its connection: not here any more
        if let Some(session) = self.table.get(client_id) {
            if session.kind() != SessionKind::Connected {
                self.end_session(&session);
            }
        }
        true
    }
}
