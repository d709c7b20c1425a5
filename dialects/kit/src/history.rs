//! What happened on the MQTT side: the events the broker reports as they happen, and
//! the records kept of them in the embedded store.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::{ConnectionId, DisconnectReason, MessageId, PageRequest, Transport, WillInfo};

/// A moment in the life of the broker, reported to every [`BrokerObserver`].
/// Message events borrow from the broker: they are built for every message of a
/// recorded client, and an observer copies what it keeps.
#[derive(Debug, Clone)]
pub enum BrokerEvent<'a> {
    /// A CONNECT was accepted (CONNACK success written).
    Connected(Box<ConnectedEvent>),
    /// A connection that had been accepted ended.
    Disconnected {
        client_id: String,
        connection_id: ConnectionId,
        username: Option<String>,
        at_ms: i64,
        reason: DisconnectReason,
    },
    /// A PUBLISH entered the broker, from a client or from a management API.
    MessageIn(MessageInEvent<'a>),
    /// A PUBLISH was written to a subscriber.
    MessageDelivered {
        /// The id given to the message when it entered, when it could be traced.
        message_id: Option<MessageId>,
        client_id: &'a str,
        connection_id: ConnectionId,
        topic: &'a str,
        qos: u8,
        at_ms: i64,
    },
}

#[derive(Debug, Clone)]
pub struct ConnectedEvent {
    pub client_id: String,
    pub connection_id: ConnectionId,
    pub username: Option<String>,
    pub peer: SocketAddr,
    pub transport: Transport,
    pub proto_ver: u8,
    pub keepalive: u16,
    pub clean_start: bool,
    pub will: Option<WillInfo>,
    pub at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct MessageInEvent<'a> {
    pub message_id: MessageId,
    /// `None` for messages published by a management API without a sender.
    pub client_id: Option<&'a str>,
    /// `None` for messages published by a management API.
    pub connection_id: Option<ConnectionId>,
    pub topic: &'a str,
    pub qos: u8,
    pub retain: bool,
    pub payload: &'a [u8],
    pub at_ms: i64,
}

/// Receives broker events. Called on the broker's hot path: implementations must
/// not block (queue the work and return).
pub trait BrokerObserver: Send + Sync {
    fn on_event(&self, event: &BrokerEvent<'_>);

    /// Whether this observer wants `MessageIn` and `MessageDelivered` events. Those
    /// cost work on every message; an observer of connections only says no.
    fn wants_messages(&self) -> bool {
        true
    }

    /// Whether this observer keeps anything of `client_id`'s connections and
    /// messages (its CONNECT and disconnect, what it publishes, what is delivered to
    /// it). A broker may skip building the events of a client every observer says no
    /// to; a management publish without a sender is always reported. Asked once
    /// per connection is enough: the answer depends on the client id only.
    fn records_client(&self, client_id: &str) -> bool {
        let _ = client_id;
        true
    }

    /// What the broker awaits before it goes on with a client it has just reported
    /// an event of: `None` (the default, and the usual answer) means go on at once.
    /// `Some(settled)` resolves when the observer has settled what it was given so
    /// far: committed it (`[records] sync = true`) or made room for more (the
    /// `wait` policy of a full queue). The broker calls this after reporting a
    /// client's `MessageIn` and awaits the future before writing the PUBACK/PUBREC
    /// and before reading that client's next packet; after a `MessageDelivered`,
    /// before the next delivery to that client. It holds no lock while awaiting.
    fn settled(&self) -> Option<Settled> {
        None
    }

    /// A buffer for the message events of one connection whose client this
    /// observer records, or `None` (the default): the connection then reports
    /// each event through [`on_event`](Self::on_event) and
    /// [`settled`](Self::settled).
    fn stage(&self) -> Option<Box<dyn EventStage>> {
        None
    }
}

/// One connection's buffer of the message events it reports to one observer
/// ([`BrokerObserver::stage`]). Every connection reports to the same observer;
/// handing events over in batches touches the observer's shared state once per
/// batch. Per message, that state moving between the cores of two connections
/// costs more than recording the message.
pub trait EventStage: Send {
    /// Takes a `MessageIn` or `MessageDelivered` event of the connection's client.
    fn record(&mut self, event: &BrokerEvent<'_>);

    /// Hands the events taken so far to the observer. The broker calls this
    /// before the connection waits for anything (its socket, a timer, a settle),
    /// and dropping the stage does it too: an event stays here only while its
    /// connection is busy.
    fn flush(&mut self);

    /// [`BrokerObserver::settled`] after the events taken so far; hands them
    /// over first when what it waits for needs them.
    fn settled(&mut self) -> Option<Settled>;
}

/// See [`BrokerObserver::settled`].
pub type Settled = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

/// Message direction seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client → broker.
    Uplink,
    /// Broker → client.
    Downlink,
}

/// A query over stored records: a time window `[from_ms, to_ms]` plus filters.
#[derive(Debug, Clone)]
pub struct RecordQuery {
    pub client_id: Option<String>,
    pub message_id: Option<MessageId>,
    pub topic: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub page: PageRequest,
    pub order: SortOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionEventKind {
    Connect,
    Disconnect,
}

/// One connect or disconnect.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    pub connection_id: ConnectionId,
    pub client_id: String,
    pub at_ms: i64,
    pub kind: ConnectionEventKind,
    /// "normal" for a connect; the [`DisconnectReason`] string for a disconnect.
    pub reason: String,
    pub username: Option<String>,
    pub peer: Option<String>,
    pub transport: Option<Transport>,
    pub proto_ver: Option<u8>,
    pub keepalive: Option<u16>,
    pub clean_start: Option<bool>,
    pub will_topic: Option<String>,
    pub will_payload: Option<Bytes>,
}

/// A message seen on one client's connection.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    pub message_id: MessageId,
    pub client_id: String,
    pub connection_id: Option<ConnectionId>,
    pub direction: Direction,
    pub topic: String,
    pub qos: u8,
    pub at_ms: i64,
}

/// A message's content as it entered the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub message_id: MessageId,
    pub client_id: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub payload: Bytes,
    pub at_ms: i64,
}

/// Stored connection and message records, queried by the dialects that expose them.
pub trait History: Send + Sync {
    fn connection_records(
        &self,
        query: &RecordQuery,
    ) -> Result<crate::model::Page<ConnectionRecord>, crate::MgmtError>;
    /// Per-client uplink and downlink records; `query.client_id` selects the client.
    fn message_records(
        &self,
        query: &RecordQuery,
    ) -> Result<crate::model::Page<MessageRecord>, crate::MgmtError>;
    /// Records of one message (`query.message_id`) in one direction.
    fn message_trace(
        &self,
        query: &RecordQuery,
        direction: Direction,
    ) -> Result<crate::model::Page<MessageRecord>, crate::MgmtError>;
    fn stored_message(&self, id: MessageId) -> Result<Option<StoredMessage>, crate::MgmtError>;
    /// Messages that entered on `query.topic` within the window.
    fn topic_messages(
        &self,
        query: &RecordQuery,
    ) -> Result<crate::model::Page<StoredMessage>, crate::MgmtError>;

    /// Events that were not recorded since the start (queue full under the `drop`
    /// policy, or a failed write): the answers above miss exactly this many.
    fn dropped_records(&self) -> u64 {
        0
    }
}
