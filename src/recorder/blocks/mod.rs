//! Message records in blocks: what the SQLite records file keeps of messages and
//! deliveries.
//!
//! A row and four index entries per message cost more than the broker spends
//! routing it. So the writer packs the message events of a batch, in the order
//! they were queued, into blocks of up to [`MAX_EVENTS`] (one row each, the
//! events as bytes), and indexes each block under the names it holds: every
//! sender, receiver and topic, with how many of the block's events each has
//! ([`NameRole`]). A query finds its blocks through that index and reads their
//! events back ([`query`]); a count is the sum of the index's counts, except in
//! the blocks a query's bounds cut through.
//!
//! A block names each client id and topic once, in a table before its events,
//! which refer to them by number: what a block writes per event is its times,
//! ids and payload, as small numbers ([`format`]).
//!
//! Blocks follow each other in time: the writer records an event's time as
//! at least the time of the event before it (events of two connections can
//! reach the queue a moment out of order), so the order of blocks and of
//! events within them is the order of the records.

mod format;
pub mod query;

use std::collections::HashMap;

use foldhash::fast::FixedState;
use mqgate_kit::history::Direction;

use super::codec::Decoded;
use format::{encode, varint, Previous, Reader, COMPACT};

/// The most events one block holds: a query that needs one event of a block
/// reads all of it.
pub const MAX_EVENTS: u32 = 512;

/// How a name appears in a block, as `block_names.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NameRole {
    /// The client that published a message.
    Sender = 0,
    /// The client a message was delivered to.
    Receiver = 1,
    /// The topic a message was published on (deliveries do not count).
    Topic = 2,
}

/// One message event of a block: a message as it entered (with its payload), or
/// a delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recorded<'a> {
    pub direction: Direction,
    /// `None` for a delivery the broker could not trace to its message.
    pub message_id: Option<u64>,
    pub at_ms: i64,
    /// The sender of a message (`None`: a management publish without one), the
    /// receiver of a delivery.
    pub client_id: Option<&'a str>,
    pub connection_id: Option<u64>,
    pub topic: &'a str,
    pub qos: u8,
    pub retain: bool,
    /// Empty for a delivery.
    pub payload: &'a [u8],
}

impl<'a> Recorded<'a> {
    /// The message event of a queued event (`None` for connects and disconnects).
    pub fn of(event: &Decoded<'a>) -> Option<Recorded<'a>> {
        match *event {
            Decoded::MessageIn {
                message_id,
                at_ms,
                client_id,
                connection_id,
                topic,
                qos,
                retain,
                payload,
            } => Some(Recorded {
                direction: Direction::Uplink,
                message_id: Some(message_id),
                at_ms,
                client_id,
                connection_id,
                topic,
                qos,
                retain,
                payload,
            }),
            Decoded::Delivered {
                message_id,
                at_ms,
                client_id,
                connection_id,
                topic,
                qos,
            } => Some(Recorded {
                direction: Direction::Downlink,
                message_id,
                at_ms,
                client_id: Some(client_id),
                connection_id: Some(connection_id),
                topic,
                qos,
                retain: false,
                payload: &[],
            }),
            Decoded::Connected { .. } | Decoded::Disconnected { .. } => None,
        }
    }

    pub fn is_delivery(&self) -> bool {
        self.direction == Direction::Downlink
    }

    /// An uplink record: a message some client sent (management publishes
    /// without a sender are stored messages, not uplinks).
    pub fn is_uplink(&self) -> bool {
        !self.is_delivery() && self.client_id.is_some()
    }
}

/// A block as stored: its bounds, its counts, its events and its names.
pub struct Block<'a> {
    pub first_at: i64,
    pub last_at: i64,
    /// The smallest and largest message id in the block (`None`: no event has
    /// one). Ids are compared as stored, as i64 with the same bits.
    pub message_ids: Option<(i64, i64)>,
    /// Messages as they entered (uplinks and management publishes).
    pub messages: u32,
    pub uplinks: u32,
    pub deliveries: u32,
    pub data: Vec<u8>,
    pub names: Vec<(&'a str, NameRole, u32)>,
}

impl Block<'_> {
    pub fn events(&self) -> u32 {
        self.messages + self.deliveries
    }
}

/// Packs message events into blocks.
pub struct Builder<'a> {
    /// The time of the last event packed, in this block or an earlier one.
    last_at: i64,
    first_at: i64,
    message_ids: Option<(i64, i64)>,
    messages: u32,
    uplinks: u32,
    deliveries: u32,
    /// The events so far, naming clients and topics by number.
    events: Vec<u8>,
    /// Each name's number.
    numbers: HashMap<&'a str, u16, FixedState>,
    /// The names by number.
    order: Vec<&'a str>,
    /// Each name's events per [`NameRole`], by number.
    roles: Vec<[u32; 3]>,
    /// The last sender, receiver and topic named, with their numbers: the
    /// events of a batch come a connection at a time, mostly naming what the
    /// event before named.
    recent: [Option<(&'a str, u16)>; 3],
    /// What the event before held, which each event is written against.
    previous: Previous,
}

/// Where [`Builder::recent`] keeps the last sender, receiver and topic.
const RECENT_SENDER: usize = 0;
const RECENT_RECEIVER: usize = 1;
const RECENT_TOPIC: usize = 2;

impl<'a> Builder<'a> {
    /// A builder whose events are recorded no earlier than `last_at`.
    pub fn new(last_at: i64) -> Builder<'a> {
        Builder {
            last_at,
            first_at: 0,
            message_ids: None,
            messages: 0,
            uplinks: 0,
            deliveries: 0,
            events: Vec::new(),
            numbers: HashMap::default(),
            order: Vec::new(),
            roles: Vec::new(),
            recent: [None; 3],
            previous: Previous::default(),
        }
    }

    /// The time of the last event packed.
    pub fn last_at(&self) -> i64 {
        self.last_at
    }

    /// Adds `event`; returns a block once it holds [`MAX_EVENTS`].
    pub fn push(&mut self, event: &Recorded<'a>) -> Option<Block<'a>> {
        let at_ms = event.at_ms.max(self.last_at);
        self.last_at = at_ms;
        if self.messages + self.deliveries == 0 {
            self.first_at = at_ms;
        }
        if let Some(id) = event.message_id {
            let id = id as i64;
            self.message_ids = Some(match self.message_ids {
                Some((lo, hi)) => (lo.min(id), hi.max(id)),
                None => (id, id),
            });
        }
        if event.is_delivery() {
            self.deliveries += 1;
        } else {
            self.messages += 1;
            self.uplinks += u32::from(event.client_id.is_some());
        }
        let client = event.client_id.map(|client| match event.direction {
            Direction::Uplink => self.name(client, RECENT_SENDER, Some(NameRole::Sender)),
            Direction::Downlink => self.name(client, RECENT_RECEIVER, Some(NameRole::Receiver)),
        });
        let topic_role = (!event.is_delivery()).then_some(NameRole::Topic);
        let topic = self.name(event.topic, RECENT_TOPIC, topic_role);
        encode(
            event,
            at_ms,
            client,
            topic,
            &mut self.previous,
            &mut self.events,
        );
        (self.messages + self.deliveries >= MAX_EVENTS)
            .then(|| self.finish())
            .flatten()
    }

    /// The number of `name` in this block, counted under `role`; `recent` is
    /// its slot in [`Builder::recent`].
    fn name(&mut self, name: &'a str, recent: usize, role: Option<NameRole>) -> u16 {
        let number = match self.recent[recent] {
            Some((last, number)) if last == name => number,
            _ => {
                let next = self.order.len() as u16;
                let number = *self.numbers.entry(name).or_insert(next);
                if number == next {
                    self.order.push(name);
                    self.roles.push([0; 3]);
                }
                self.recent[recent] = Some((name, number));
                number
            }
        };
        if let Some(role) = role {
            self.roles[usize::from(number)][role as usize] += 1;
        }
        number
    }

    /// The block of the events added since the last one, if any.
    pub fn finish(&mut self) -> Option<Block<'a>> {
        if self.messages + self.deliveries == 0 {
            return None;
        }
        let mut data = Vec::with_capacity(
            COMPACT.len()
                + 2
                + self.order.iter().map(|n| 2 + n.len()).sum::<usize>()
                + self.events.len(),
        );
        data.extend_from_slice(&COMPACT);
        varint(self.order.len() as u64, &mut data);
        for name in &self.order {
            format::bytes(name.as_bytes(), &mut data);
        }
        data.extend_from_slice(&self.events);
        self.events.clear();
        self.previous = Previous::default();
        let mut names = Vec::with_capacity(self.order.len());
        for (name, counts) in self.order.iter().zip(&self.roles) {
            for role in [NameRole::Sender, NameRole::Receiver, NameRole::Topic] {
                let n = counts[role as usize];
                if n > 0 {
                    names.push((*name, role, n));
                }
            }
        }
        self.numbers.clear();
        self.order.clear();
        self.roles.clear();
        self.recent = [None; 3];
        Some(Block {
            first_at: self.first_at,
            last_at: self.last_at,
            message_ids: self.message_ids.take(),
            messages: std::mem::take(&mut self.messages),
            uplinks: std::mem::take(&mut self.uplinks),
            deliveries: std::mem::take(&mut self.deliveries),
            data,
            names,
        })
    }
}

/// A block's bytes, read: its names (checked as UTF-8 only when an event that
/// uses them is read in full) and its events. Bytes that do not decode end the
/// events (a block is only ever written by [`Builder`]).
pub struct Contents<'a> {
    names: Vec<&'a [u8]>,
    /// Positioned at the first event.
    events: Reader<'a>,
}

impl<'a> Contents<'a> {
    pub fn new(buf: &'a [u8]) -> Contents<'a> {
        let (names, events) = Reader::open(buf);
        Contents { names, events }
    }

    /// The number of `name` in this block, if any event uses it.
    pub fn number_of(&self, name: &str) -> Option<u16> {
        self.names
            .iter()
            .position(|n| *n == name.as_bytes())
            .map(|i| i as u16)
    }

    /// The events with their names by number.
    pub fn stored(&self) -> StoredEvents<'a> {
        StoredEvents {
            reader: self.events.clone(),
        }
    }

    /// `event` with its names, unless they are not UTF-8.
    pub fn resolve(&self, e: &Stored<'a>) -> Option<Recorded<'a>> {
        let name = |n: u16| {
            self.names
                .get(usize::from(n))
                .and_then(|b| std::str::from_utf8(b).ok())
        };
        Some(Recorded {
            direction: e.direction,
            message_id: e.message_id,
            at_ms: e.at_ms,
            client_id: match e.client {
                Some(n) => Some(name(n)?),
                None => None,
            },
            connection_id: e.connection_id,
            topic: name(e.topic)?,
            qos: e.qos,
            retain: e.retain,
            payload: e.payload,
        })
    }
}

/// An event as a block stores it: its client and topic by number.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub direction: Direction,
    pub message_id: Option<u64>,
    pub at_ms: i64,
    pub client: Option<u16>,
    pub connection_id: Option<u64>,
    pub topic: u16,
    pub qos: u8,
    pub retain: bool,
    pub payload: &'a [u8],
}

impl Stored<'_> {
    pub fn is_delivery(&self) -> bool {
        self.direction == Direction::Downlink
    }

    pub fn is_uplink(&self) -> bool {
        !self.is_delivery() && self.client.is_some()
    }
}

/// The events of a block, their names by number.
pub struct StoredEvents<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for StoredEvents<'a> {
    type Item = Stored<'a>;

    fn next(&mut self) -> Option<Stored<'a>> {
        if self.reader.buf.is_empty() {
            return None;
        }
        let event = self.reader.event();
        if event.is_none() {
            self.reader.buf = &[];
        }
        event
    }
}

/// The events of a block's bytes with their names, in order.
pub struct Events<'a> {
    contents: Contents<'a>,
    stored: StoredEvents<'a>,
}

impl<'a> Events<'a> {
    pub fn new(buf: &'a [u8]) -> Events<'a> {
        let contents = Contents::new(buf);
        let stored = contents.stored();
        Events { contents, stored }
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Recorded<'a>;

    fn next(&mut self) -> Option<Recorded<'a>> {
        let stored = self.stored.next()?;
        let event = self.contents.resolve(&stored);
        if event.is_none() {
            self.stored.reader.buf = &[];
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, client: Option<&'static str>, at_ms: i64) -> Recorded<'static> {
        Recorded {
            direction: Direction::Uplink,
            message_id: Some(id),
            at_ms,
            client_id: client,
            connection_id: client.map(|_| 7),
            topic: "t/1",
            qos: 1,
            retain: true,
            payload: b"hello",
        }
    }

    fn delivery(id: Option<u64>, client: &'static str, at_ms: i64) -> Recorded<'static> {
        Recorded {
            direction: Direction::Downlink,
            message_id: id,
            at_ms,
            client_id: Some(client),
            connection_id: Some(9),
            topic: "t/1",
            qos: 0,
            retain: false,
            payload: &[],
        }
    }

    #[test]
    fn events_read_back_as_packed_with_times_never_going_back() {
        let mut builder = Builder::new(0);
        let events = [
            message(5, Some("a"), 100),
            delivery(Some(5), "b", 99),
            message(6, None, 120),
            delivery(None, "b", 130),
        ];
        for e in &events {
            assert!(builder.push(e).is_none());
        }
        let block = builder.finish().unwrap();
        assert!(builder.finish().is_none());
        assert_eq!((block.first_at, block.last_at), (100, 130));
        assert_eq!(block.message_ids, Some((5, 6)));
        assert_eq!((block.messages, block.uplinks, block.deliveries), (2, 1, 2));
        let mut names = block.names.clone();
        names.sort_by_key(|(name, role, _)| (*name, *role as u8));
        assert_eq!(
            names,
            vec![
                ("a", NameRole::Sender, 1),
                ("b", NameRole::Receiver, 2),
                ("t/1", NameRole::Topic, 2)
            ]
        );
        let back: Vec<Recorded<'_>> = Events::new(&block.data).collect();
        let mut expected = events.to_vec();
        // the delivery reached the queue after its message: recorded at 100
        expected[1].at_ms = 100;
        assert_eq!(back, expected);
    }

    #[test]
    fn a_block_is_closed_at_its_size_and_the_next_one_starts() {
        let mut builder = Builder::new(0);
        let mut closed = Vec::new();
        for i in 0..MAX_EVENTS + 3 {
            if let Some(block) = builder.push(&delivery(Some(u64::from(i) + 1), "b", 1)) {
                closed.push(block);
            }
        }
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].events(), MAX_EVENTS);
        assert_eq!(builder.finish().unwrap().events(), 3);
    }

    #[test]
    fn cut_bytes_end_the_events_without_a_panic() {
        let mut builder = Builder::new(0);
        builder.push(&message(1, Some("a"), 1));
        builder.push(&message(2, Some("a"), 2));
        let block = builder.finish().unwrap();
        for cut in 0..block.data.len() {
            let n = Events::new(&block.data[..cut]).count();
            assert!(n <= 1, "{cut}: {n}");
        }
    }
}
