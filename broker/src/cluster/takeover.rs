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
        let request = encode(&Claim {
            origin: self.node_id,
            want_session,
            connected_at_ms: None,
            client_id: client_id.to_string(),
        });
        let subject = self.subjects.claim(client_id);
        if !want_session {
            // one answer at most: the client's shared request inbox, no subscription of its own
            let asked = self.client.request(subject, request);
            let answer = tokio::time::timeout(self.takeover_timeout, asked).await;
            return match answer {
                Ok(Ok(answer)) => super::handover::single_part(broker, &answer.payload),
                _ => None,
            };
        }
        let inbox = self.client.new_inbox();
        let parts = self.client.subscribe(inbox.clone()).await.ok()?;
        self.client
            .publish_with_reply(subject, inbox, request)
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

impl Cluster {
    /// Once this node answers claims for `client_id` (its client connected at
    /// `connected_at_ms`), tells any other node that still holds the id: two
    /// CONNECTs of one id on two nodes within one claim's round trip both
    /// found no holder, and the older of the two connections must go.
    pub(super) async fn check_claim(&self, client_id: &str, connected_at_ms: i64) {
        let check = encode(&Claim {
            origin: self.node_id,
            want_session: false,
            connected_at_ms: Some(connected_at_ms),
            client_id: client_id.to_string(),
        });
        let _ = self
            .client
            .publish(self.subjects.claim(client_id), check)
            .await;
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
            let Some(parsed) = parse(&claim.payload) else {
                continue;
            };
            if parsed.origin == cluster.node_id {
                continue;
            }
            let broker = Arc::clone(&broker);
            let cluster = Arc::clone(&cluster);
            match (claim.reply, parsed.connected_at_ms) {
                (_, Some(_)) => {
                    tokio::spawn(async move { broker.check_held(&cluster, &parsed).await });
                }
                (Some(reply), None) => {
                    tokio::spawn(async move {
                        let given = broker
                            .give_up_client(&parsed.client_id, parsed.want_session)
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
                (None, None) => {}
            }
        }
    }))
}

/// A claim as it travels: the claiming node, and the client id. A claim made
/// before a CONNECT is admitted has no time and may ask for the session; a
/// check made after ([`Cluster::check_claim`]) has the new connection's time.
struct Claim {
    origin: u64,
    want_session: bool,
    connected_at_ms: Option<i64>,
    client_id: String,
}

fn encode(claim: &Claim) -> Bytes {
    let mut out = BytesMut::with_capacity(18 + claim.client_id.len());
    out.put_u64(claim.origin);
    out.put_u8(u8::from(claim.want_session) | (u8::from(claim.connected_at_ms.is_some()) << 1));
    if let Some(at) = claim.connected_at_ms {
        out.put_i64(at);
    }
    out.put_slice(claim.client_id.as_bytes());
    out.freeze()
}

fn parse(payload: &Bytes) -> Option<Claim> {
    let origin = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let flags = *payload.get(8)?;
    let (connected_at_ms, rest) = match flags & 2 != 0 {
        true => (
            Some(i64::from_be_bytes(payload.get(9..17)?.try_into().ok()?)),
            payload.get(17..)?,
        ),
        false => (None, payload.get(9..)?),
    };
    Some(Claim {
        origin,
        want_session: flags & 1 != 0,
        connected_at_ms,
        client_id: std::str::from_utf8(rest).ok()?.to_string(),
    })
}

/// What giving up a client id did.
struct GivenUp {
    had_session: bool,
    /// The persistent session, taken out for the claimant.
    moved: Option<MovedSession>,
}

impl Broker {
    /// A check from a node that admitted `claim.client_id` while this node held
    /// it too: the older connection goes (the same instant: the lower node id's).
    async fn check_held(&self, cluster: &Cluster, claim: &Claim) {
        let Some(theirs) = claim.connected_at_ms else {
            return;
        };
        let Some(session) = self.table.get(&claim.client_id) else {
            return;
        };
        let ours = session.state().details.connected_at_ms;
        let ours_is_older = match session.kind() {
            SessionKind::Pending => return,
            SessionKind::Offline => true,
            SessionKind::Connected => (ours, cluster.node_id) < (theirs, claim.origin),
        };
        if !ours_is_older {
            // the other node may have checked before it listened for ours: again
            cluster.check_claim(&claim.client_id, ours).await;
        } else if self
            .give_up_client(&claim.client_id, false)
            .await
            .had_session
        {
            bump(&cluster.counters.taken_over);
            tracing::info!(
                client_id = %claim.client_id,
                "cluster: a newer connection of this id on another node wins"
            );
        }
    }

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
            // subscriptions made on behalf of the id go where it connects
            let Some(pending) = self.table.get_pending(client_id) else {
                return nothing;
            };
            let moved = MovedSession {
                subscriptions: pending.subscriptions(),
                pending_only: true,
                ..MovedSession::default()
            };
            self.forget_pending(&pending);
            return GivenUp {
                had_session: false,
                moved: Some(moved),
            };
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
                        pending_only: false,
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
