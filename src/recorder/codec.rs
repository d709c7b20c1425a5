//! Broker events as bytes in the record queue. The broker's thread appends an
//! event's fields to a buffer it shares with the writer (no allocation per event
//! once the buffer has grown); the writer reads them back as borrowed slices and
//! binds them straight into its statements.
//!
//! A connection's events mostly name the same client and topic again: within
//! one buffer, a name that repeats the last client id or topic written is
//! written as a mark ([`Names`]), and read back as that name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mqgate_kit::history::{BrokerEvent, ConnectedEvent};
use mqgate_kit::Transport;

const CONNECTED: u8 = 0;
const DISCONNECTED: u8 = 1;
const MESSAGE_IN: u8 = 2;
const DELIVERED: u8 = 3;

/// The length written instead of a name that repeats the last one in its slot.
const REPEAT: u32 = u32::MAX;

const RECENT_CLIENT: usize = 0;
const RECENT_TOPIC: usize = 1;

/// Where in a buffer the last client id and topic of a message event were
/// written in full (start and end), for the next event to repeat them by
/// [`REPEAT`]. A buffer handed to the queue whole (a stage's) begins with
/// empty `Names`: its first names are written in full, so the reader, which
/// reads the queue's buffers one after another, always holds the name a mark
/// repeats.
#[derive(Debug, Default, Clone, Copy)]
pub struct Names([Option<(usize, usize)>; 2]);

/// Appends `event` to `buf`, `names` being what `buf` named last.
pub fn encode(event: &BrokerEvent<'_>, buf: &mut Vec<u8>, names: &mut Names) {
    let mut out = Out(buf, names);
    match event {
        BrokerEvent::Connected(c) => out.connected(c),
        BrokerEvent::Disconnected {
            client_id,
            connection_id,
            username,
            at_ms,
            reason,
        } => {
            out.u8(DISCONNECTED);
            out.u64(*connection_id);
            out.i64(*at_ms);
            out.str(client_id);
            out.opt_str(username.as_deref());
            out.str(reason.as_str());
        }
        BrokerEvent::MessageIn(m) => {
            out.u8(MESSAGE_IN);
            out.u64(m.message_id);
            out.i64(m.at_ms);
            out.opt_name(RECENT_CLIENT, m.client_id);
            out.opt_u64(m.connection_id);
            out.name(RECENT_TOPIC, m.topic);
            out.u8(m.qos);
            out.u8(u8::from(m.retain));
            out.bytes(m.payload);
        }
        BrokerEvent::MessageDelivered {
            message_id,
            client_id,
            connection_id,
            topic,
            qos,
            at_ms,
        } => {
            out.u8(DELIVERED);
            out.opt_u64(*message_id);
            out.i64(*at_ms);
            out.name(RECENT_CLIENT, client_id);
            out.u64(*connection_id);
            out.name(RECENT_TOPIC, topic);
            out.u8(*qos);
        }
    }
}

/// An event read back from the queue, borrowing from it.
#[derive(Debug, PartialEq)]
pub enum Decoded<'a> {
    Connected {
        connection_id: u64,
        at_ms: i64,
        client_id: &'a str,
        username: Option<&'a str>,
        peer: SocketAddr,
        transport: Transport,
        proto_ver: u8,
        keepalive: u16,
        clean_start: bool,
        will_topic: Option<&'a str>,
        will_payload: Option<&'a [u8]>,
    },
    Disconnected {
        connection_id: u64,
        at_ms: i64,
        client_id: &'a str,
        username: Option<&'a str>,
        reason: &'a str,
    },
    MessageIn {
        message_id: u64,
        at_ms: i64,
        client_id: Option<&'a str>,
        connection_id: Option<u64>,
        topic: &'a str,
        qos: u8,
        retain: bool,
        payload: &'a [u8],
    },
    Delivered {
        message_id: Option<u64>,
        at_ms: i64,
        client_id: &'a str,
        connection_id: u64,
        topic: &'a str,
        qos: u8,
    },
}

/// Reads the events of a buffer filled by [`encode`], in order.
pub struct Events<'a> {
    buf: &'a [u8],
    /// The last client id and topic of a message event, as bytes and as
    /// checked text: a connection's events come together and mostly repeat
    /// both, which then need no UTF-8 check.
    recent: [(&'a [u8], &'a str); 2],
}

impl<'a> Events<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Events {
            buf,
            recent: [(&[], ""); 2],
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }

    fn i64(&mut self) -> i64 {
        self.u64() as i64
    }

    fn opt_u64(&mut self) -> Option<u64> {
        (self.u8() == 1).then(|| self.u64())
    }

    fn bytes(&mut self) -> &'a [u8] {
        let len = u32::from_le_bytes(self.take(4).try_into().expect("4 bytes"));
        self.take(len as usize)
    }

    fn opt_bytes(&mut self) -> Option<&'a [u8]> {
        (self.u8() == 1).then(|| self.bytes())
    }

    /// Only `encode` writes the buffer, from `str`s: the bytes are UTF-8.
    fn str(&mut self) -> &'a str {
        std::str::from_utf8(self.bytes()).unwrap_or_default()
    }

    fn opt_str(&mut self) -> Option<&'a str> {
        (self.u8() == 1).then(|| self.str())
    }

    /// [`str`](Self::str), for the names that repeat (`slot` in `recent`).
    fn name(&mut self, slot: usize) -> &'a str {
        let len = u32::from_le_bytes(self.take(4).try_into().expect("4 bytes"));
        if len == REPEAT {
            return self.recent[slot].1;
        }
        let bytes = self.take(len as usize);
        let (last_bytes, last) = self.recent[slot];
        if bytes == last_bytes {
            return last;
        }
        let name = std::str::from_utf8(bytes).unwrap_or_default();
        self.recent[slot] = (bytes, name);
        name
    }

    fn opt_name(&mut self, slot: usize) -> Option<&'a str> {
        (self.u8() == 1).then(|| self.name(slot))
    }

    fn peer(&mut self) -> SocketAddr {
        let ip = match self.u8() {
            4 => IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(self.take(4)).expect("4"),
            )),
            _ => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(self.take(16)).expect("16"),
            )),
        };
        let port = u16::from_le_bytes(self.take(2).try_into().expect("2 bytes"));
        SocketAddr::new(ip, port)
    }

    fn connected(&mut self) -> Decoded<'a> {
        Decoded::Connected {
            connection_id: self.u64(),
            at_ms: self.i64(),
            client_id: self.str(),
            username: self.opt_str(),
            peer: self.peer(),
            transport: match self.u8() {
                0 => Transport::Tcp,
                _ => Transport::WebSocket,
            },
            proto_ver: self.u8(),
            keepalive: self.u64() as u16,
            clean_start: self.u8() == 1,
            will_topic: self.opt_str(),
            will_payload: self.opt_bytes(),
        }
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Decoded<'a>;

    fn next(&mut self) -> Option<Decoded<'a>> {
        if self.buf.is_empty() {
            return None;
        }
        Some(match self.u8() {
            CONNECTED => self.connected(),
            DISCONNECTED => Decoded::Disconnected {
                connection_id: self.u64(),
                at_ms: self.i64(),
                client_id: self.str(),
                username: self.opt_str(),
                reason: self.str(),
            },
            MESSAGE_IN => Decoded::MessageIn {
                message_id: self.u64(),
                at_ms: self.i64(),
                client_id: self.opt_name(RECENT_CLIENT),
                connection_id: self.opt_u64(),
                topic: self.name(RECENT_TOPIC),
                qos: self.u8(),
                retain: self.u8() == 1,
                payload: self.bytes(),
            },
            _ => Decoded::Delivered {
                message_id: self.opt_u64(),
                at_ms: self.i64(),
                client_id: self.name(RECENT_CLIENT),
                connection_id: self.u64(),
                topic: self.name(RECENT_TOPIC),
                qos: self.u8(),
            },
        })
    }
}

struct Out<'a>(&'a mut Vec<u8>, &'a mut Names);

impl Out<'_> {
    /// A name in `slot` of [`Names`]: the mark when it repeats the last one.
    fn name(&mut self, slot: usize, name: &str) {
        if let Some((start, end)) = self.1 .0[slot] {
            if self.0[start..end] == *name.as_bytes() {
                self.0.extend_from_slice(&REPEAT.to_le_bytes());
                return;
            }
        }
        self.str(name);
        self.1 .0[slot] = Some((self.0.len() - name.len(), self.0.len()));
    }

    fn opt_name(&mut self, slot: usize, name: Option<&str>) {
        match name {
            Some(name) => {
                self.u8(1);
                self.name(slot, name);
            }
            None => self.u8(0),
        }
    }

    fn connected(&mut self, c: &ConnectedEvent) {
        self.u8(CONNECTED);
        self.u64(c.connection_id);
        self.i64(c.at_ms);
        self.str(&c.client_id);
        self.opt_str(c.username.as_deref());
        self.peer(c.peer);
        self.u8(match c.transport {
            Transport::Tcp => 0,
            Transport::WebSocket => 1,
        });
        self.u8(c.proto_ver);
        self.u64(u64::from(c.keepalive));
        self.u8(u8::from(c.clean_start));
        self.opt_str(c.will.as_ref().map(|w| w.topic.as_str()));
        self.opt_bytes(c.will.as_ref().map(|w| w.payload.as_ref()));
    }

    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.u64(v as u64);
    }

    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }

    /// Lengths are u32: an MQTT packet is at most 256 MiB.
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.0.extend_from_slice(v);
    }

    fn opt_bytes(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.bytes(v);
            }
            None => self.u8(0),
        }
    }

    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    fn opt_str(&mut self, v: Option<&str>) {
        self.opt_bytes(v.map(str::as_bytes));
    }

    fn peer(&mut self, peer: SocketAddr) {
        match peer.ip() {
            IpAddr::V4(ip) => {
                self.u8(4);
                self.0.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                self.u8(6);
                self.0.extend_from_slice(&ip.octets());
            }
        }
        self.0.extend_from_slice(&peer.port().to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mqgate_kit::history::MessageInEvent;
    use mqgate_kit::{DisconnectReason, WillInfo};

    #[test]
    fn repeated_and_changing_names_read_back_as_written() {
        let message = |client_id, topic| {
            BrokerEvent::MessageIn(MessageInEvent {
                message_id: 1,
                client_id,
                connection_id: None,
                topic,
                qos: 0,
                retain: false,
                payload: b"p",
                at_ms: 1,
            })
        };
        let delivery = |client_id, topic| BrokerEvent::MessageDelivered {
            message_id: None,
            client_id,
            connection_id: 2,
            topic,
            qos: 0,
            at_ms: 2,
        };
        let events = [
            message(Some("a"), "t/1"),
            message(Some("a"), "t/1"),
            delivery("b", "t/1"),
            message(None, "t/2"),
            delivery("b", ""),
            delivery("", "t/2"),
            message(Some("é"), "t/2"),
        ];
        // two stages' buffers, one after the other in the queue
        let mut buf = Vec::new();
        let mut names = Names::default();
        for e in &events[..5] {
            encode(e, &mut buf, &mut names);
        }
        let mut second = Vec::new();
        let mut names = Names::default();
        for e in &events[5..] {
            encode(e, &mut second, &mut names);
        }
        buf.extend_from_slice(&second);
        let one_by_one: usize = events
            .iter()
            .map(|e| {
                let mut alone = Vec::new();
                encode(e, &mut alone, &mut Names::default());
                alone.len()
            })
            .sum();
        assert_eq!(
            one_by_one - buf.len(),
            1 + 3 + 3 + 1 + 3,
            "the repeats of `a`, `t/1`, `t/1`, `b` and `t/2` save their bytes; \
             the second buffer names `t/2` again in full"
        );
        let names: Vec<(Option<&str>, &str)> = Events::new(&buf)
            .map(|d| match d {
                Decoded::MessageIn {
                    client_id, topic, ..
                } => (client_id, topic),
                Decoded::Delivered {
                    client_id, topic, ..
                } => (Some(client_id), topic),
                other => panic!("not a message event: {other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                (Some("a"), "t/1"),
                (Some("a"), "t/1"),
                (Some("b"), "t/1"),
                (None, "t/2"),
                (Some("b"), ""),
                (Some(""), "t/2"),
                (Some("é"), "t/2"),
            ]
        );
    }

    #[test]
    fn every_event_reads_back_as_written() {
        let events = [
            BrokerEvent::Connected(Box::new(ConnectedEvent {
                client_id: "a@app".into(),
                connection_id: 7,
                username: Some("ü".into()),
                peer: "[::1]:5000".parse().unwrap(),
                transport: Transport::WebSocket,
                proto_ver: 5,
                keepalive: 65_535,
                clean_start: false,
                will: Some(WillInfo {
                    topic: "w".into(),
                    payload: Bytes::from_static(b"bye"),
                    qos: 1,
                    retain: false,
                    delay_interval: None,
                }),
                at_ms: -3,
            })),
            BrokerEvent::Disconnected {
                client_id: "a@app".into(),
                connection_id: u64::MAX,
                username: None,
                at_ms: 9,
                reason: DisconnectReason::Kicked,
            },
            BrokerEvent::MessageIn(MessageInEvent {
                message_id: 1 << 63,
                client_id: None,
                connection_id: None,
                topic: "t/1",
                qos: 2,
                retain: true,
                payload: b"",
                at_ms: 10,
            }),
            BrokerEvent::MessageDelivered {
                message_id: None,
                client_id: "b",
                connection_id: 8,
                topic: "t/1",
                qos: 1,
                at_ms: 11,
            },
        ];
        let mut buf = Vec::new();
        let mut names = Names::default();
        for e in &events {
            encode(e, &mut buf, &mut names);
        }
        let decoded: Vec<Decoded<'_>> = Events::new(&buf).collect();
        assert_eq!(decoded.len(), 4);
        assert_eq!(
            decoded[0],
            Decoded::Connected {
                connection_id: 7,
                at_ms: -3,
                client_id: "a@app",
                username: Some("ü"),
                peer: "[::1]:5000".parse().unwrap(),
                transport: Transport::WebSocket,
                proto_ver: 5,
                keepalive: 65_535,
                clean_start: false,
                will_topic: Some("w"),
                will_payload: Some(b"bye"),
            }
        );
        assert_eq!(
            decoded[1],
            Decoded::Disconnected {
                connection_id: u64::MAX,
                at_ms: 9,
                client_id: "a@app",
                username: None,
                reason: "kicked",
            }
        );
        assert_eq!(
            decoded[2],
            Decoded::MessageIn {
                message_id: 1 << 63,
                at_ms: 10,
                client_id: None,
                connection_id: None,
                topic: "t/1",
                qos: 2,
                retain: true,
                payload: b"",
            }
        );
        assert_eq!(
            decoded[3],
            Decoded::Delivered {
                message_id: None,
                at_ms: 11,
                client_id: "b",
                connection_id: 8,
                topic: "t/1",
                qos: 1,
            }
        );
    }
}
