//! One client id, one session, cluster-wide. A node subscribes to the claim
//! subject of every client id it holds a session of. A CONNECT for a client id
//! this node holds no session of first claims it: NATS answers "no responders"
//! at once when no node holds it; otherwise the holder disconnects its client
//! (MQTT 5: DISCONNECT 0x8E, session taken over), ends the session there, and
//! answers after that, handing a persistent session over when the CONNECT
//! wants it ([`super::handover`]). The CONNECT goes on after the answer or the
//! timeout.
//! Management commands for a held client id arrive on the same subject
//! ([`super::remote`]), so holding an id costs one NATS subscription.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::handover::MovedSession;
use super::{bump, Cluster};
use crate::broker::Broker;
use crate::session::{Control, SessionKind};

/// How long the holder waits for its connection's teardown.
const TEARDOWN_WAIT: Duration = Duration::from_secs(5);

impl Cluster {
    /// Asks the node holding `client_id` (if any) to give it up; returns once
    /// it has, when no node holds it, or after the takeover timeout. With
    /// `want_session`, a persistent session held there moves here
    /// ([`super::handover`]).
    pub(crate) async fn claim(
        &self,
        broker: &Broker,
        client_id: &str,
        want_session: bool,
    ) -> Option<MovedSession> {
        if !self.is_connected() {
            tracing::debug!(
                client_id,
                "cluster: NATS unreachable, client id not claimed"
            );
            return None;
        }
        let mut request = BytesMut::with_capacity(9 + client_id.len());
        request.put_u64(self.node_id);
        request.put_u8(u8::from(want_session));
        request.put_slice(client_id.as_bytes());
        let inbox = self.client.new_inbox();
        let parts = self.client.subscribe(inbox.clone()).await.ok()?;
        let subject = self.subjects.claim(client_id);
        self.client
            .publish_with_reply(subject, inbox, request.freeze())
            .await
            .ok()?;
        let moved = self.receive_session(broker, parts).await;
        if let Some(moved) = &moved {
            tracing::debug!(
                client_id,
                queued = moved.carried.queue.len(),
                "cluster: session moved here from another node"
            );
        }
        moved
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
            let (Some(reply), Some(claim)) = (claim.reply, parse(&claim.payload)) else {
                continue;
            };
            if claim.origin == cluster.node_id {
                continue;
            }
            let broker = Arc::clone(&broker);
            let cluster = Arc::clone(&cluster);
            tokio::spawn(async move {
                let given = broker
                    .give_up_client(&claim.client_id, claim.want_session)
                    .await;
                if given.had_session {
                    bump(&cluster.counters.taken_over);
                }
                match given.moved {
                    Some(moved) => cluster.hand_over(reply.to_string(), moved).await,
                    None => cluster.nothing_to_hand_over(reply.to_string()).await,
                }
            });
        }
    }))
}

/// A claim as it arrives.
struct Claim {
    origin: u64,
    want_session: bool,
    client_id: String,
}

fn parse(payload: &Bytes) -> Option<Claim> {
    let origin = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let want_session = *payload.get(8)? == 1;
    let client_id = std::str::from_utf8(payload.get(9..)?).ok()?;
    Some(Claim {
        origin,
        want_session,
        client_id: client_id.to_string(),
    })
}

/// What giving up a client id did.
struct GivenUp {
    had_session: bool,
    /// The persistent session, taken out for the claimant.
    moved: Option<MovedSession>,
}

impl Broker {
    /// Another node admits `client_id`: its connection here is closed as taken
    /// over and its session ends here; a persistent one is taken out for that
    /// node when `hand_over`.
    async fn give_up_client(&self, client_id: &str, hand_over: bool) -> GivenUp {
        let _guard = self.locks.lock(client_id).await;
        let nothing = GivenUp {
            had_session: false,
            moved: None,
        };
        let Some(session) = self.table.get(client_id) else {
            return nothing;
        };
        if session.kind() == SessionKind::Pending {
            return nothing;
        }
        if let Some(control) = session.control() {
            let (done, wait) = oneshot::channel();
            control.send(Control::TakeOver { done });
            let _ = tokio::time::timeout(TEARDOWN_WAIT, wait).await;
        }
        // a persistent session outlives its connection: it leaves this node
        let mut moved = None;
        if let Some(session) = self.table.get(client_id) {
            if session.kind() != SessionKind::Connected {
                if hand_over {
                    moved = Some(MovedSession {
                        subscriptions: session.subscriptions(),
                        carried: session.take_flow(),
                    });
                }
                self.end_session(&session);
            }
        }
        GivenUp {
            had_session: true,
            moved,
        }
    }
}
