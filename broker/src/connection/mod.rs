//! One MQTT connection, from the first byte to teardown: [`handshake`] (CONNECT,
//! authentication, takeover, the session it attaches to), [`packet_loop`] (client
//! packets in through [`inbound`], deliveries out through [`outbound`]) and
//! [`teardown`] (will, session expiry, events).

mod handshake;
mod inbound;
mod outbound;
mod packet_loop;
pub mod stream;
mod teardown;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::FutureExt;
use mqgate_kit::{ConnectionId, Transport};
use tokio::sync::oneshot;

use crate::broker::{Broker, Recorders};
use crate::counters::Counters;
use crate::publish::Blocked;
use crate::session::{AtomicCounters, Ready, Session};
use crate::will::PendingWill;
use crate::wire::{reason, Version};
pub use stream::Stream;

/// Serves one accepted socket until it closes.
pub async fn serve(
    broker: Arc<Broker>,
    mut stream: Stream,
    peer: SocketAddr,
    transport: Transport,
) {
    let Some(_token) = broker.connection_token() else {
        stream.close(Duration::from_millis(100)).await;
        return;
    };
    let _socket = SocketGuard::new(&broker);
    let mut rbuf = BytesMut::new();
    // The handshake and the teardown are boxed: the task's size is what an idle
    // connection costs, and it should be the packet loop's alone.
    let handshake = Box::pin(handshake::handshake(
        &broker,
        &mut stream,
        &mut rbuf,
        peer,
        transport,
    ));
    let Some(mut connection) = handshake.await else {
        stream.close(Duration::from_secs(1)).await;
        return;
    };
    // A bug that panics ends this connection only: it is torn down like any
    // other, counted and logged; every other connection carries on.
    let run = AssertUnwindSafe(connection.run(&mut stream, &mut rbuf)).catch_unwind();
    let exit = run.await.unwrap_or_else(|_| {
        Counters::add(&broker.counters.connection_panics, 1);
        tracing::error!("a connection's packet loop panicked; closing that connection");
        Exit::Protocol(reason::IMPLEMENTATION_SPECIFIC, "internal error")
    });
    let teardown = AssertUnwindSafe(Box::pin(connection.teardown(&mut stream, exit)));
    if teardown.catch_unwind().await.is_err() {
        Counters::add(&broker.counters.connection_panics, 1);
        tracing::error!("a connection's teardown panicked");
    }
}

/// Counts a socket from accept to close.
struct SocketGuard(Arc<Broker>);

impl SocketGuard {
    fn new(broker: &Arc<Broker>) -> SocketGuard {
        Counters::add(&broker.counters.sockets_accepted, 1);
        Counters::add(&broker.counters.sockets_open, 1);
        SocketGuard(Arc::clone(broker))
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let c = &self.0.counters;
        c.sockets_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        Counters::add(&c.sockets_closed, 1);
    }
}

/// Why the packet loop ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// The client sent DISCONNECT (0x04 asks for the will anyway).
    ClientDisconnect {
        publish_will: bool,
    },
    Lost,
    KeepaliveTimeout,
    TakenOver(oneshot::Sender<()>),
    /// Closed by the broker (kick 0x98, slow subscriber 0x97).
    Closed {
        reason: u8,
        discard: bool,
        done: Option<oneshot::Sender<()>>,
    },
    /// Protocol violation: the MQTT 5 reason code and a reason string.
    Protocol(u8, &'static str),
    Shutdown,
}

/// A connection attached to its session.
pub(crate) struct Connection {
    broker: Arc<Broker>,
    session: Arc<Session>,
    id: ConnectionId,
    version: Version,
    client_id: Arc<str>,
    username: Option<String>,
    peer: SocketAddr,
    mountpoint: Option<Arc<str>>,
    /// Packets waiting to be written.
    out: BytesMut,
    keepalive: Option<Duration>,
    control: Arc<crate::session::ControlSlot>,
    /// Topic aliases the client set (index = alias - 1).
    aliases_in: Vec<Option<Arc<str>>>,
    /// Topic aliases the broker set towards the client.
    aliases_out: HashMap<Arc<str>, u16>,
    /// Topic aliases the client accepts.
    client_alias_max: u16,
    /// Largest packet the client accepts.
    client_max_packet: Option<usize>,
    /// Boxed, like `held`: rare, and large beside an idle connection's other state.
    will: Option<Box<PendingWill>>,
    /// Session expiry interval now in force (DISCONNECT may change it), seconds.
    expiry_interval: u32,
    /// The CONNECT's expiry was 0: DISCONNECT may not raise it [MQTT-3.14.2-2].
    expiry_was_zero: bool,
    /// A publish whose acknowledgement waits (for room in subscribers' queues,
    /// or for its record to settle); the client's next packets wait behind it.
    held: Option<Box<HeldPublish>>,
    /// The observers that record this client's messages, if any.
    recorders: Option<Recorders>,
    ready: Vec<Ready>,
}

pub(crate) struct HeldPublish {
    /// Deliveries still waiting for room.
    pub blocked: Option<Blocked>,
    /// The record of the publish being settled (`[records] sync`, or a full
    /// records queue that applies backpressure).
    pub settle: Option<mqgate_kit::history::Settled>,
    /// The acknowledgement owed to the client once both are done.
    pub ack: Option<(crate::wire::encode::Ack, u16)>,
}

impl Connection {
    fn counters(&self) -> &AtomicCounters {
        &self.session.counters
    }

    fn count_packet_out(&self) {
        Counters::add(&self.broker.counters.packets_sent, 1);
        AtomicCounters::add(&self.counters().packets_out, 1);
    }
}

/// A topic as routed for a client under `mount`.
pub fn mount_topic(mount: &str, topic: &str) -> String {
    // built at its size: `format!` grows its buffer (every publish of a
    // mounted client comes here)
    let mut mounted = String::with_capacity(mount.len() + topic.len());
    mounted.push_str(mount);
    mounted.push_str(topic);
    mounted
}

/// A filter as routed for a client under `mount` (inside a `$share/{group}/`).
pub fn mount_filter(mount: &str, filter: &str) -> String {
    match filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((group, inner)) => format!("$share/{group}/{mount}{inner}"),
        None => format!("{mount}{filter}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounting_keeps_shared_groups_outside() {
        assert_eq!(mount_filter("$t/a/", "x/#"), "$t/a/x/#");
        assert_eq!(mount_filter("$t/a/", "$share/g/x/+"), "$share/g/$t/a/x/+");
        assert_eq!(mount_topic("$t/a/", "x"), "$t/a/x");
    }
}

/// An idle connection costs its task (this future), its session and a few index
/// entries: the future must stay small for memory per idle connection to stay in
/// single-digit KiB.
#[cfg(test)]
mod size_tests {
    use super::*;

    #[tokio::test]
    async fn an_idle_connection_task_stays_small() {
        let broker = crate::Broker::start(crate::BrokerSettings::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (socket, peer) = listener.accept().await.unwrap();
        let task = serve(
            broker,
            Stream::Tcp(socket),
            peer,
            mqgate_kit::Transport::Tcp,
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "the connection task is {size} bytes");
        assert!(std::mem::size_of::<Connection>() <= 512);
    }
}
