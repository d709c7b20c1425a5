//! A raw MQTT client for tests where the exact packets matter (flags, packet ids,
//! DUP, properties, what is sent after a reconnect). Client packets are encoded and
//! server packets decoded here, by hand and independently of the broker's own
//! codec, so that a codec bug cannot hide itself.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// MQTT 5 property identifiers.
pub mod prop {
    pub const PAYLOAD_FORMAT: u8 = 0x01;
    pub const MESSAGE_EXPIRY: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_ID: u8 = 0x0B;
    pub const SESSION_EXPIRY: u8 = 0x11;
    pub const ASSIGNED_CLIENT_ID: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTH_METHOD: u8 = 0x15;
    pub const AUTH_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFO: u8 = 0x17;
    pub const WILL_DELAY: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFO: u8 = 0x19;
    pub const RESPONSE_INFO: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_ID_AVAILABLE: u8 = 0x29;
    pub const SHARED_AVAILABLE: u8 = 0x2A;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropValue {
    Byte(u8),
    Two(u16),
    Four(u32),
    Varint(u32),
    Str(String),
    Bin(Vec<u8>),
    Pair(String, String),
}

/// The wire type of each property identifier.
fn kind_of(id: u8) -> Option<fn(&mut Reader<'_>) -> Option<PropValue>> {
    use prop::*;
    Some(match id {
        PAYLOAD_FORMAT
        | REQUEST_PROBLEM_INFO
        | REQUEST_RESPONSE_INFO
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_AVAILABLE
        | SUBSCRIPTION_ID_AVAILABLE
        | SHARED_AVAILABLE => |r| r.byte().map(PropValue::Byte),
        SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => {
            |r| r.u16().map(PropValue::Two)
        }
        MESSAGE_EXPIRY | SESSION_EXPIRY | WILL_DELAY | MAXIMUM_PACKET_SIZE => {
            |r| r.u32().map(PropValue::Four)
        }
        SUBSCRIPTION_ID => |r| r.varint().map(|n| PropValue::Varint(n as u32)),
        CONTENT_TYPE | RESPONSE_TOPIC | ASSIGNED_CLIENT_ID | AUTH_METHOD | RESPONSE_INFO
        | SERVER_REFERENCE | REASON_STRING => |r| r.string().map(PropValue::Str),
        CORRELATION_DATA | AUTH_DATA => |r| r.binary().map(PropValue::Bin),
        USER_PROPERTY => |r| Some(PropValue::Pair(r.string()?, r.string()?)),
        _ => return None,
    })
}

/// MQTT 5 properties in the order they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props(pub Vec<(u8, PropValue)>);

impl Props {
    pub fn new() -> Props {
        Props::default()
    }

    pub fn with(mut self, id: u8, value: PropValue) -> Props {
        self.0.push((id, value));
        self
    }

    pub fn get(&self, id: u8) -> Option<&PropValue> {
        self.0.iter().find(|(i, _)| *i == id).map(|(_, v)| v)
    }

    pub fn has(&self, id: u8) -> bool {
        self.get(id).is_some()
    }

    pub fn number(&self, id: u8) -> Option<u32> {
        match self.get(id)? {
            PropValue::Byte(n) => Some(u32::from(*n)),
            PropValue::Two(n) => Some(u32::from(*n)),
            PropValue::Four(n) | PropValue::Varint(n) => Some(*n),
            _ => None,
        }
    }

    pub fn text(&self, id: u8) -> Option<&str> {
        match self.get(id)? {
            PropValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Every value of a property that may repeat (subscription identifiers).
    pub fn numbers(&self, id: u8) -> Vec<u32> {
        self.0
            .iter()
            .filter(|(i, _)| *i == id)
            .filter_map(|(_, v)| match v {
                PropValue::Varint(n) | PropValue::Four(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        for (id, value) in &self.0 {
            body.push(*id);
            match value {
                PropValue::Byte(n) => body.push(*n),
                PropValue::Two(n) => body.extend_from_slice(&n.to_be_bytes()),
                PropValue::Four(n) => body.extend_from_slice(&n.to_be_bytes()),
                PropValue::Varint(n) => varint(*n as usize, &mut body),
                PropValue::Str(s) => string(s, &mut body),
                PropValue::Bin(b) => binary(b, &mut body),
                PropValue::Pair(k, v) => {
                    string(k, &mut body);
                    string(v, &mut body);
                }
            }
        }
        varint(body.len(), out);
        out.extend_from_slice(&body);
    }
}

// ---- encoding ---------------------------------------------------------------

pub fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

pub fn string(s: &str, out: &mut Vec<u8>) {
    binary(s.as_bytes(), out);
}

fn binary(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// A whole packet: the first byte, the remaining length, the body.
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

#[derive(Debug, Clone)]
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub props: Props,
}

impl Will {
    pub fn new(topic: &str, payload: &str) -> Will {
        Will {
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
            qos: 0,
            retain: false,
            props: Props::new(),
        }
    }
}

/// A CONNECT: 3.1.1 (level 4) or 5.
#[derive(Debug, Clone)]
pub struct Connect {
    pub level: u8,
    pub client_id: String,
    pub clean: bool,
    pub keepalive: u16,
    pub props: Props,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Connect {
    pub fn v4(client_id: &str) -> Connect {
        Connect {
            level: 4,
            client_id: client_id.into(),
            clean: true,
            keepalive: 60,
            props: Props::new(),
            will: None,
            username: None,
            password: None,
        }
    }

    pub fn v5(client_id: &str) -> Connect {
        Connect {
            level: 5,
            ..Connect::v4(client_id)
        }
    }

    /// Clean session 0 / clean start 0.
    pub fn resume(mut self) -> Connect {
        self.clean = false;
        self
    }

    pub fn prop(mut self, id: u8, value: PropValue) -> Connect {
        self.props = self.props.with(id, value);
        self
    }

    /// MQTT 5 session expiry interval, seconds.
    pub fn expiry(self, secs: u32) -> Connect {
        self.prop(prop::SESSION_EXPIRY, PropValue::Four(secs))
    }

    pub fn will(mut self, will: Will) -> Connect {
        self.will = Some(will);
        self
    }

    pub fn keepalive(mut self, secs: u16) -> Connect {
        self.keepalive = secs;
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        let v5 = self.level == 5;
        let mut body = Vec::new();
        string("MQTT", &mut body);
        body.push(self.level);
        let mut flags = u8::from(self.clean) << 1;
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos << 3) | (u8::from(w.retain) << 5);
        }
        flags |= u8::from(self.password.is_some()) << 6;
        flags |= u8::from(self.username.is_some()) << 7;
        body.push(flags);
        body.extend_from_slice(&self.keepalive.to_be_bytes());
        if v5 {
            self.props.encode(&mut body);
        }
        string(&self.client_id, &mut body);
        if let Some(w) = &self.will {
            if v5 {
                w.props.encode(&mut body);
            }
            string(&w.topic, &mut body);
            binary(&w.payload, &mut body);
        }
        if let Some(u) = &self.username {
            string(u, &mut body);
        }
        if let Some(p) = &self.password {
            string(p, &mut body);
        }
        frame(0x10, &body)
    }
}

/// A PUBLISH either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub dup: bool,
    pub retain: bool,
    pub pkid: u16,
    pub props: Props,
}

impl Publish {
    pub fn new(topic: &str, payload: impl AsRef<[u8]>, qos: u8, pkid: u16) -> Publish {
        Publish {
            topic: topic.into(),
            payload: payload.as_ref().to_vec(),
            qos,
            dup: false,
            retain: false,
            pkid,
            props: Props::new(),
        }
    }

    pub fn retained(mut self) -> Publish {
        self.retain = true;
        self
    }

    pub fn dup(mut self) -> Publish {
        self.dup = true;
        self
    }

    pub fn prop(mut self, id: u8, value: PropValue) -> Publish {
        self.props = self.props.with(id, value);
        self
    }

    pub fn encode(&self, level: u8) -> Vec<u8> {
        let mut body = Vec::new();
        string(&self.topic, &mut body);
        if self.qos > 0 {
            body.extend_from_slice(&self.pkid.to_be_bytes());
        }
        if level == 5 {
            self.props.encode(&mut body);
        }
        body.extend_from_slice(&self.payload);
        let first = 0x30 | (u8::from(self.dup) << 3) | (self.qos << 1) | u8::from(self.retain);
        frame(first, &body)
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("UTF-8 payload")
    }
}

/// One filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone)]
pub struct Sub {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
}

impl Sub {
    pub fn new(filter: &str, qos: u8) -> Sub {
        Sub {
            filter: filter.into(),
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        }
    }

    pub fn no_local(mut self) -> Sub {
        self.no_local = true;
        self
    }

    pub fn retain_as_published(mut self) -> Sub {
        self.retain_as_published = true;
        self
    }

    pub fn retain_handling(mut self, rh: u8) -> Sub {
        self.retain_handling = rh;
        self
    }

    fn options(&self) -> u8 {
        self.qos
            | (u8::from(self.no_local) << 2)
            | (u8::from(self.retain_as_published) << 3)
            | (self.retain_handling << 4)
    }
}

/// The four acknowledgements of the QoS 1/2 exchanges, named as the spec names
/// the packets.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    PubAck,
    PubRec,
    PubRel,
    PubComp,
}

impl Ack {
    fn first_byte(self) -> u8 {
        match self {
            Ack::PubAck => 0x40,
            Ack::PubRec => 0x50,
            Ack::PubRel => 0x62,
            Ack::PubComp => 0x70,
        }
    }
}

// ---- decoding ---------------------------------------------------------------

/// A packet from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    ConnAck {
        session_present: bool,
        code: u8,
        props: Props,
    },
    Publish(Publish),
    /// PUBACK, PUBREC, PUBREL or PUBCOMP, with its reason code (0 when absent).
    Ack {
        kind: Ack,
        pkid: u16,
        reason: u8,
    },
    SubAck {
        pkid: u16,
        codes: Vec<u8>,
        props: Props,
    },
    UnsubAck {
        pkid: u16,
        codes: Vec<u8>,
    },
    PingResp,
    Disconnect {
        reason: u8,
        props: Props,
    },
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self) -> Option<usize> {
        let mut n = 0;
        for i in 0..4 {
            let b = self.byte()?;
            n += usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn binary(&mut self) -> Option<Vec<u8>> {
        let len = self.u16()? as usize;
        self.take(len).map(<[u8]>::to_vec)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.binary()?).ok()
    }

    fn props(&mut self) -> Option<Props> {
        let len = self.varint()?;
        let mut r = Reader {
            buf: self.take(len)?,
        };
        let mut props = Props::new();
        while let Some(id) = r.byte() {
            let read = kind_of(id).unwrap_or_else(|| panic!("unknown property {id:#x}"));
            props.0.push((id, read(&mut r)?));
        }
        Some(props)
    }

    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf).to_vec()
    }
}

/// The header length and remaining length of the frame at the start of `buf`,
/// once its header is there.
fn frame_header(buf: &[u8]) -> Option<(usize, usize)> {
    let mut remaining = 0;
    for i in 0..4 {
        let b = *buf.get(1 + i)?;
        remaining += usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((2 + i, remaining));
        }
    }
    panic!("remaining length over four bytes: {:02x?}", &buf[..5]);
}

/// The length of the whole frame at the start of `buf`, once it is all there.
fn whole_frame(buf: &[u8]) -> Option<usize> {
    frame_header(buf)
        .map(|(header, remaining)| header + remaining)
        .filter(|len| buf.len() >= *len)
}

/// Decodes one whole frame; panics on anything a server may not send.
pub fn decode(level: u8, frame: &[u8]) -> Packet {
    try_decode(level == 5, frame).unwrap_or_else(|| panic!("malformed server packet {frame:02x?}"))
}

fn try_decode(v5: bool, frame: &[u8]) -> Option<Packet> {
    let first = frame[0];
    let (header, _) = frame_header(frame)?;
    let mut r = Reader {
        buf: &frame[header..],
    };
    let props = |r: &mut Reader<'_>| if v5 { r.props() } else { Some(Props::new()) };
    Some(match first >> 4 {
        2 => {
            let flags = r.byte()?;
            Packet::ConnAck {
                session_present: flags & 1 == 1,
                code: r.byte()?,
                props: props(&mut r)?,
            }
        }
        3 => {
            let qos = (first >> 1) & 3;
            let topic = r.string()?;
            let pkid = if qos > 0 { r.u16()? } else { 0 };
            let props = props(&mut r)?;
            Packet::Publish(Publish {
                topic,
                payload: r.rest(),
                qos,
                dup: first & 0x08 != 0,
                retain: first & 1 == 1,
                pkid,
                props,
            })
        }
        4..=7 => Packet::Ack {
            kind: [Ack::PubAck, Ack::PubRec, Ack::PubRel, Ack::PubComp]
                [usize::from(first >> 4) - 4],
            pkid: r.u16()?,
            reason: r.byte().unwrap_or(0),
        },
        9 => {
            let pkid = r.u16()?;
            let props = props(&mut r)?;
            Packet::SubAck {
                pkid,
                codes: r.rest(),
                props,
            }
        }
        11 => {
            let pkid = r.u16()?;
            props(&mut r)?;
            Packet::UnsubAck {
                pkid,
                codes: r.rest(),
            }
        }
        13 => Packet::PingResp,
        14 => Packet::Disconnect {
            reason: r.byte().unwrap_or(0),
            props: if r.buf.is_empty() {
                Props::new()
            } else {
                r.props()?
            },
        },
        _ => return None,
    })
}

// ---- the client -------------------------------------------------------------

/// One raw MQTT connection.
pub struct Raw {
    pub stream: TcpStream,
    pub level: u8,
    buf: Vec<u8>,
    /// Packets read while waiting for another one.
    pending: VecDeque<Packet>,
}

impl Raw {
    /// A connected socket that has sent nothing yet.
    pub async fn open(addr: SocketAddr, level: u8) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("TCP connect"),
            level,
            buf: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// Sends the CONNECT and returns the client with the CONNACK's session
    /// present flag, code and properties; panics without a CONNACK.
    pub async fn connect(addr: SocketAddr, connect: Connect) -> (Raw, bool, u8, Props) {
        let mut raw = Raw::open(addr, connect.level).await;
        raw.send(&connect.encode()).await;
        match raw.recv(Duration::from_secs(5)).await {
            Some(Packet::ConnAck {
                session_present,
                code,
                props,
            }) => (raw, session_present, code, props),
            other => panic!("CONNACK expected for {}, got {other:?}", connect.client_id),
        }
    }

    /// Connects and asserts the CONNACK accepted the client.
    pub async fn accepted(addr: SocketAddr, connect: Connect) -> (Raw, bool) {
        let (raw, present, code, _) = Raw::connect(addr, connect).await;
        assert_eq!(code, 0, "CONNECT accepted");
        (raw, present)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    pub async fn publish(&mut self, p: &Publish) {
        let bytes = p.encode(self.level);
        self.send(&bytes).await;
    }

    pub async fn ack(&mut self, kind: Ack, pkid: u16) {
        let bytes = frame(kind.first_byte(), &pkid.to_be_bytes());
        self.send(&bytes).await;
    }

    /// Sends a SUBSCRIBE (with a subscription identifier when given) and
    /// returns the SUBACK's codes.
    pub async fn subscribe_with(&mut self, pkid: u16, subs: &[Sub], id: Option<u32>) -> Vec<u8> {
        let mut body = pkid.to_be_bytes().to_vec();
        if self.level == 5 {
            let mut props = Props::new();
            if let Some(id) = id {
                props = props.with(prop::SUBSCRIPTION_ID, PropValue::Varint(id));
            }
            props.encode(&mut body);
        }
        for s in subs {
            string(&s.filter, &mut body);
            body.push(s.options());
        }
        self.send(&frame(0x82, &body)).await;
        match self
            .expect_where(|p| matches!(p, Packet::SubAck { .. }))
            .await
        {
            Packet::SubAck {
                pkid: got, codes, ..
            } => {
                assert_eq!(got, pkid, "SUBACK for our SUBSCRIBE");
                codes
            }
            _ => unreachable!(),
        }
    }

    pub async fn subscribe(&mut self, pkid: u16, subs: &[Sub]) -> Vec<u8> {
        self.subscribe_with(pkid, subs, None).await
    }

    /// Subscribes to one filter and asserts it was granted `qos`.
    pub async fn subscribe_one(&mut self, filter: &str, qos: u8) {
        let codes = self.subscribe(1, &[Sub::new(filter, qos)]).await;
        assert_eq!(codes, vec![qos], "SUBACK for {filter}");
    }

    pub async fn unsubscribe(&mut self, pkid: u16, filters: &[&str]) -> Vec<u8> {
        let mut body = pkid.to_be_bytes().to_vec();
        if self.level == 5 {
            Props::new().encode(&mut body);
        }
        for f in filters {
            string(f, &mut body);
        }
        self.send(&frame(0xA2, &body)).await;
        match self
            .expect_where(|p| matches!(p, Packet::UnsubAck { .. }))
            .await
        {
            Packet::UnsubAck { codes, .. } => codes,
            _ => unreachable!(),
        }
    }

    /// Sends a DISCONNECT (MQTT 5: with a reason code and properties).
    pub async fn send_disconnect(&mut self, reason: u8, props: Props) {
        let bytes = if self.level == 5 {
            let mut body = vec![reason];
            props.encode(&mut body);
            frame(0xE0, &body)
        } else {
            vec![0xE0, 0]
        };
        self.send(&bytes).await;
    }

    /// Sends a DISCONNECT and closes the socket.
    pub async fn disconnect(mut self, reason: u8, props: Props) {
        self.send_disconnect(reason, props).await;
    }

    /// The next packet within `wait`; `None` on timeout or when the server closed.
    pub async fn recv(&mut self, wait: Duration) -> Option<Packet> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(len) = whole_frame(&self.buf) {
                let packet = decode(self.level, &self.buf[..len]);
                self.buf.drain(..len);
                return Some(packet);
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// The next packet; panics when none comes within 5 s.
    pub async fn expect(&mut self) -> Packet {
        self.recv(Duration::from_secs(5))
            .await
            .expect("a packet from the server within 5 s")
    }

    /// The next PUBLISH; panics on any other packet or none within 5 s.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.expect().await {
            Packet::Publish(p) => p,
            other => panic!("PUBLISH expected, got {other:?}"),
        }
    }

    /// The first packet `wanted` accepts; the others are kept for later reads.
    pub async fn expect_where(&mut self, wanted: impl Fn(&Packet) -> bool) -> Packet {
        let mut skipped = Vec::new();
        let found = loop {
            let p = self
                .recv_fresh(Duration::from_secs(5))
                .await
                .expect("the awaited packet within 5 s");
            if wanted(&p) {
                break p;
            }
            skipped.push(p);
        };
        for p in skipped.into_iter().rev() {
            self.pending.push_front(p);
        }
        found
    }

    /// As [`Raw::recv`], past the packets already set aside.
    async fn recv_fresh(&mut self, wait: Duration) -> Option<Packet> {
        let pending = std::mem::take(&mut self.pending);
        let p = self.recv(wait).await;
        self.pending = pending;
        p
    }

    /// The acknowledgement of `kind` for `pkid`, with its reason code.
    pub async fn expect_ack(&mut self, kind: Ack, pkid: u16) -> u8 {
        match self.expect().await {
            Packet::Ack {
                kind: k,
                pkid: p,
                reason,
            } if k == kind && p == pkid => reason,
            other => panic!("{kind:?} {pkid} expected, got {other:?}"),
        }
    }

    /// Asserts nothing arrives within `wait`.
    pub async fn silent(&mut self, wait: Duration) {
        if let Some(p) = self.recv(wait).await {
            panic!("nothing expected, got {p:?}");
        }
    }

    /// Reads until the server closes the connection, within `wait`; returns the
    /// packets it sent before, or `None` if it kept the connection open.
    pub async fn until_closed(&mut self, wait: Duration) -> Option<Vec<Packet>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen: Vec<Packet> = self.pending.drain(..).collect();
        loop {
            if let Some(len) = whole_frame(&self.buf) {
                seen.push(decode(self.level, &self.buf[..len]));
                self.buf.drain(..len);
                continue;
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                Ok(_) => return Some(seen),
                Err(_) => return None,
            }
        }
    }

    /// The server's DISCONNECT before it closed: (reason, reason string).
    pub async fn expect_disconnect(mut self) -> (u8, Option<String>) {
        let seen = self
            .until_closed(Duration::from_secs(5))
            .await
            .expect("the server closes the connection");
        match seen.last() {
            Some(Packet::Disconnect { reason, props }) => {
                (*reason, props.text(prop::REASON_STRING).map(str::to_string))
            }
            other => panic!("DISCONNECT expected before the close, got {other:?}"),
        }
    }
}
