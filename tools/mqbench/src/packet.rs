//! The few MQTT packets a load client needs, written and read by hand for 3.1.1
//! and 5: CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH and its acknowledgements,
//! PINGREQ/PINGRESP, DISCONNECT. MQTT 5 packets are sent without properties;
//! received properties are skipped.

use bytes::{Buf, BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V4,
    V5,
}

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

fn put_len(buf: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if len == 0 {
            return;
        }
    }
}

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
}

pub struct Login<'a> {
    pub client_id: &'a str,
    pub keepalive: u16,
    pub clean: bool,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
}

pub fn connect(buf: &mut BytesMut, v: Version, login: &Login<'_>) {
    let mut flags = u8::from(login.clean) << 1;
    let mut len = 10 + 2 + login.client_id.len();
    if let Some(u) = login.username {
        flags |= 0x80;
        len += 2 + u.len();
    }
    if let Some(p) = login.password {
        flags |= 0x40;
        len += 2 + p.len();
    }
    if v == Version::V5 {
        len += 1;
    }
    buf.put_u8(CONNECT << 4);
    put_len(buf, len);
    put_str(buf, b"MQTT");
    buf.put_u8(if v == Version::V5 { 5 } else { 4 });
    buf.put_u8(flags);
    buf.put_u16(login.keepalive);
    if v == Version::V5 {
        buf.put_u8(0);
    }
    put_str(buf, login.client_id.as_bytes());
    if let Some(u) = login.username {
        put_str(buf, u.as_bytes());
    }
    if let Some(p) = login.password {
        put_str(buf, p.as_bytes());
    }
}

pub fn subscribe(buf: &mut BytesMut, v: Version, pkid: u16, filter: &str, qos: u8) {
    let props = usize::from(v == Version::V5);
    buf.put_u8(SUBSCRIBE << 4 | 0b0010);
    put_len(buf, 2 + props + 2 + filter.len() + 1);
    buf.put_u16(pkid);
    if props == 1 {
        buf.put_u8(0);
    }
    put_str(buf, filter.as_bytes());
    buf.put_u8(qos);
}

pub fn publish(buf: &mut BytesMut, v: Version, topic: &str, qos: u8, pkid: u16, payload: &[u8]) {
    let id_len = if qos > 0 { 2 } else { 0 };
    let props = usize::from(v == Version::V5);
    buf.put_u8(PUBLISH << 4 | qos << 1);
    put_len(buf, 2 + topic.len() + id_len + props + payload.len());
    put_str(buf, topic.as_bytes());
    if qos > 0 {
        buf.put_u16(pkid);
    }
    if props == 1 {
        buf.put_u8(0);
    }
    buf.put_slice(payload);
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (success, no properties: the same bytes in
/// both versions).
pub fn ack(buf: &mut BytesMut, kind: u8, pkid: u16) {
    buf.put_u8(kind << 4 | if kind == PUBREL { 0b0010 } else { 0 });
    buf.put_u8(2);
    buf.put_u16(pkid);
}

pub fn pingreq(buf: &mut BytesMut) {
    buf.put_slice(&[0xC0, 0]);
}

pub fn disconnect(buf: &mut BytesMut) {
    buf.put_slice(&[DISCONNECT << 4, 0]);
}

/// A packet from the broker.
#[derive(Debug)]
pub enum Incoming {
    ConnAck {
        code: u8,
    },
    SubAck {
        pkid: u16,
        codes: Vec<u8>,
    },
    Publish {
        qos: u8,
        pkid: u16,
        payload: Bytes,
    },
    /// PUBACK, PUBREC, PUBREL or PUBCOMP.
    Ack {
        kind: u8,
        pkid: u16,
    },
    PingResp,
    Disconnect {
        code: u8,
    },
    Other(u8),
}

#[derive(Debug)]
pub struct Malformed(pub &'static str);

/// Reads one packet off the front of `buf`; `Ok(None)` until it is complete.
pub fn read(buf: &mut BytesMut, v: Version) -> Result<Option<Incoming>, Malformed> {
    let mut len = 0usize;
    let mut header = 1;
    loop {
        let Some(&byte) = buf.get(header) else {
            return Ok(None);
        };
        len += usize::from(byte & 0x7F) << (7 * (header - 1));
        header += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if header > 4 {
            return Err(Malformed("remaining length"));
        }
    }
    if buf.len() < header + len {
        return Ok(None);
    }
    let first = buf[0];
    buf.advance(header);
    let body = buf.split_to(len).freeze();
    decode(first, body, v).map(Some)
}

fn need(body: &Bytes, n: usize) -> Result<(), Malformed> {
    if body.remaining() < n {
        Err(Malformed("short packet"))
    } else {
        Ok(())
    }
}

/// Skips an MQTT 5 property block.
fn skip_properties(body: &mut Bytes) -> Result<(), Malformed> {
    let mut len = 0usize;
    for i in 0..4 {
        need(body, 1)?;
        let byte = body.get_u8();
        len += usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            need(body, len)?;
            body.advance(len);
            return Ok(());
        }
    }
    Err(Malformed("property length"))
}

fn decode(first: u8, mut body: Bytes, v: Version) -> Result<Incoming, Malformed> {
    let kind = first >> 4;
    Ok(match kind {
        CONNACK => {
            need(&body, 2)?;
            Incoming::ConnAck { code: body[1] }
        }
        PUBLISH => {
            let qos = (first >> 1) & 0b11;
            need(&body, 2)?;
            let topic_len = usize::from(body.get_u16());
            need(&body, topic_len)?;
            body.advance(topic_len);
            let pkid = if qos > 0 {
                need(&body, 2)?;
                body.get_u16()
            } else {
                0
            };
            if v == Version::V5 {
                skip_properties(&mut body)?;
            }
            Incoming::Publish {
                qos,
                pkid,
                payload: body,
            }
        }
        PUBACK | PUBREC | PUBREL | PUBCOMP => {
            need(&body, 2)?;
            Incoming::Ack {
                kind,
                pkid: body.get_u16(),
            }
        }
        SUBACK => {
            need(&body, 2)?;
            let pkid = body.get_u16();
            if v == Version::V5 {
                skip_properties(&mut body)?;
            }
            Incoming::SubAck {
                pkid,
                codes: body.to_vec(),
            }
        }
        PINGRESP => Incoming::PingResp,
        DISCONNECT => Incoming::Disconnect {
            code: body.first().copied().unwrap_or(0),
        },
        other => Incoming::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_reads_back_in_both_versions() {
        for v in [Version::V4, Version::V5] {
            let mut buf = BytesMut::new();
            let payload = vec![7u8; 300];
            publish(&mut buf, v, "a/b", 1, 513, &payload);
            ack(&mut buf, PUBACK, 9);
            let Some(Incoming::Publish {
                qos,
                pkid,
                payload: p,
            }) = read(&mut buf, v).unwrap()
            else {
                panic!("not a publish");
            };
            assert_eq!((qos, pkid, p.as_ref()), (1, 513, payload.as_slice()));
            assert!(matches!(
                read(&mut buf, v).unwrap(),
                Some(Incoming::Ack {
                    kind: PUBACK,
                    pkid: 9
                })
            ));
            assert!(read(&mut buf, v).unwrap().is_none());
        }
    }

    #[test]
    fn an_incomplete_packet_waits() {
        let mut buf = BytesMut::new();
        publish(&mut buf, Version::V4, "t", 0, 0, &[1; 200]);
        let mut part = buf.split_to(100);
        assert!(read(&mut part, Version::V4).unwrap().is_none());
        part.unsplit(buf);
        assert!(read(&mut part, Version::V4).unwrap().is_some());
    }
}
