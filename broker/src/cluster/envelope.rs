//! A message as it crosses NATS: a compact binary head (flags, origin node,
//! message id, expiry, MQTT 5 properties) in front of the payload. The topic
//! travels in the subject, except on the subjects that carry any topic
//! (retained messages, topics too long for a subject), where it is in the head.
//!
//! Decoding checks every length: a malformed envelope is refused, never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mqgate_kit::PublishProperties;

const QOS: u8 = 0b0000_0011;
const RETAIN: u8 = 0b0000_0100;
const PROPERTIES: u8 = 0b0000_1000;
const TOPIC: u8 = 0b0001_0000;
const EXPIRY: u8 = 0b0010_0000;

/// What one NATS message says about one MQTT message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    /// The node that published it (a random id per process start).
    pub origin: u64,
    /// The id the origin gave it (unique per origin).
    pub id: u64,
    pub qos: u8,
    pub retain: bool,
    /// Milliseconds of message expiry left when it was sent.
    pub expiry_ms: Option<u64>,
    /// Only on the subjects that carry any topic.
    pub topic: Option<String>,
    pub properties: Option<PublishProperties>,
    pub payload: Bytes,
}

impl Envelope {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(32 + self.payload.len());
        let mut flags = self.qos & QOS;
        flags |= if self.retain { RETAIN } else { 0 };
        flags |= if self.properties.is_some() {
            PROPERTIES
        } else {
            0
        };
        flags |= if self.topic.is_some() { TOPIC } else { 0 };
        flags |= if self.expiry_ms.is_some() { EXPIRY } else { 0 };
        out.put_u8(flags);
        out.put_u64(self.origin);
        out.put_u64(self.id);
        if let Some(ms) = self.expiry_ms {
            out.put_u64(ms);
        }
        if let Some(topic) = &self.topic {
            put_bytes(&mut out, topic.as_bytes());
        }
        if let Some(p) = &self.properties {
            put_properties(&mut out, p);
        }
        out.put_slice(&self.payload);
        out.freeze()
    }

    pub fn decode(mut input: Bytes) -> Option<Envelope> {
        let flags = take_u8(&mut input)?;
        let origin = take_u64(&mut input)?;
        let id = take_u64(&mut input)?;
        let expiry_ms = match flags & EXPIRY {
            0 => None,
            _ => Some(take_u64(&mut input)?),
        };
        let topic = match flags & TOPIC {
            0 => None,
            _ => Some(take_string(&mut input)?),
        };
        let properties = match flags & PROPERTIES {
            0 => None,
            _ => Some(take_properties(&mut input)?),
        };
        Some(Envelope {
            origin,
            id,
            qos: (flags & QOS).min(2),
            retain: flags & RETAIN != 0,
            expiry_ms,
            topic,
            properties,
            payload: input,
        })
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(b.len() as u32);
    out.put_slice(b);
}

fn put_option(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => out.put_u8(0),
        Some(b) => {
            out.put_u8(1);
            put_bytes(out, b);
        }
    }
}

fn put_properties(out: &mut BytesMut, p: &PublishProperties) {
    // the expiry travels as milliseconds left, in the head
    out.put_u8(p.payload_format_indicator.map_or(0xFF, |v| v.min(0xFE)));
    put_option(out, p.content_type.as_deref().map(str::as_bytes));
    put_option(out, p.response_topic.as_deref().map(str::as_bytes));
    put_option(out, p.correlation_data.as_deref());
    out.put_u32(p.user_properties.len() as u32);
    for (k, v) in &p.user_properties {
        put_bytes(out, k.as_bytes());
        put_bytes(out, v.as_bytes());
    }
}

fn take_u8(input: &mut Bytes) -> Option<u8> {
    (input.remaining() >= 1).then(|| input.get_u8())
}

fn take_u64(input: &mut Bytes) -> Option<u64> {
    (input.remaining() >= 8).then(|| input.get_u64())
}

fn take_bytes(input: &mut Bytes) -> Option<Bytes> {
    if input.remaining() < 4 {
        return None;
    }
    let len = input.get_u32() as usize;
    (input.remaining() >= len).then(|| input.split_to(len))
}

fn take_string(input: &mut Bytes) -> Option<String> {
    String::from_utf8(take_bytes(input)?.to_vec()).ok()
}

fn take_option(input: &mut Bytes) -> Option<Option<Bytes>> {
    match take_u8(input)? {
        0 => Some(None),
        1 => Some(Some(take_bytes(input)?)),
        _ => None,
    }
}

fn take_option_string(input: &mut Bytes) -> Option<Option<String>> {
    match take_option(input)? {
        None => Some(None),
        Some(b) => String::from_utf8(b.to_vec()).ok().map(Some),
    }
}

fn take_properties(input: &mut Bytes) -> Option<PublishProperties> {
    let format = take_u8(input)?;
    let content_type = take_option_string(input)?;
    let response_topic = take_option_string(input)?;
    let correlation_data = take_option(input)?;
    if input.remaining() < 4 {
        return None;
    }
    let count = input.get_u32() as usize;
    // every pair takes at least 8 bytes: a bogus count cannot reserve memory
    if count > input.remaining() / 8 {
        return None;
    }
    let mut user_properties = Vec::with_capacity(count);
    for _ in 0..count {
        user_properties.push((take_string(input)?, take_string(input)?));
    }
    Some(PublishProperties {
        payload_format_indicator: (format != 0xFF).then_some(format),
        message_expiry_interval: None,
        content_type,
        response_topic,
        correlation_data,
        user_properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_everything() {
        let e = Envelope {
            origin: 7,
            id: u64::MAX - 1,
            qos: 2,
            retain: true,
            expiry_ms: Some(1500),
            topic: Some("é/x".into()),
            properties: Some(PublishProperties {
                payload_format_indicator: Some(1),
                message_expiry_interval: None,
                content_type: Some("text/plain".into()),
                response_topic: Some("r/1".into()),
                correlation_data: Some(Bytes::from_static(b"\0\x01")),
                user_properties: vec![("k".into(), "v".into()), ("k".into(), "".into())],
            }),
            payload: Bytes::from_static(b"hello"),
        };
        assert_eq!(Envelope::decode(e.encode()), Some(e));
        let bare = Envelope {
            qos: 1,
            ..Envelope::default()
        };
        assert_eq!(bare.encode().len(), 17);
        assert_eq!(Envelope::decode(bare.encode()), Some(bare));
    }

    #[test]
    fn truncated_or_bogus_input_is_refused() {
        let e = Envelope {
            topic: Some("t".into()),
            properties: Some(PublishProperties {
                user_properties: vec![("a".into(), "b".into())],
                ..Default::default()
            }),
            ..Envelope::default()
        };
        let full = e.encode();
        for cut in 0..full.len() {
            let decoded = Envelope::decode(full.slice(..cut));
            // a cut inside the head is refused; nothing panics
            assert!(decoded.is_none() || cut >= full.len(), "cut at {cut}");
        }
        let mut bogus = BytesMut::new();
        bogus.put_u8(PROPERTIES);
        bogus.put_u64(1);
        bogus.put_u64(1);
        bogus.put_slice(&[0xFF, 0, 0, 0]);
        bogus.put_u32(u32::MAX);
        assert!(Envelope::decode(bogus.freeze()).is_none());
    }
}
