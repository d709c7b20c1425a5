//! MQTT 3.1.1 and 5 framing with rumqttd's codecs, guarded: packets a client may
//! not send are refused before the codec sees them (its decoders hit
//! `unreachable!` on some), any remaining codec panic becomes a protocol error,
//! and the v5 DISCONNECT, whose rumqttd writer is broken, is written here.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{BufMut, BytesMut};
use rumqttd::protocol::{self, v4::V4, v5::V5, Packet, Protocol};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V4,
    V5,
}

impl Version {
    pub fn level(&self) -> u8 {
        match self {
            Version::V4 => 4,
            Version::V5 => 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("need more bytes")]
    Incomplete,
    #[error("packet type {0} may not be sent by a client")]
    ForbiddenPacket(u8),
    #[error("packet larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("unsupported protocol level {0}")]
    UnsupportedLevel(u8),
}

/// What the first bytes of a connection say about its CONNECT.
pub enum ConnectPeek {
    Incomplete,
    Level(u8),
    NotConnect,
}

/// Reads the protocol level of a CONNECT at the start of `buf` without consuming it.
pub fn peek_connect_level(buf: &[u8]) -> ConnectPeek {
    if buf.is_empty() {
        return ConnectPeek::Incomplete;
    }
    if buf[0] != 0x10 {
        return ConnectPeek::NotConnect;
    }
    // remaining length: 1 to 4 bytes
    let mut pos = 1;
    loop {
        match buf.get(pos) {
            None => return ConnectPeek::Incomplete,
            Some(b) => {
                pos += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if pos > 4 {
                    return ConnectPeek::NotConnect;
                }
            }
        }
    }
    let Some(len_bytes) = buf.get(pos..pos + 2) else {
        return ConnectPeek::Incomplete;
    };
    let name_len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
    match buf.get(pos + 2 + name_len) {
        Some(level) => ConnectPeek::Level(*level),
        None => ConnectPeek::Incomplete,
    }
}

/// Decodes the next packet from `buf`.
pub fn read(version: Version, buf: &mut BytesMut, max_size: usize) -> Result<Packet, CodecError> {
    let Some(first) = buf.first().copied() else {
        return Err(CodecError::Incomplete);
    };
    let packet_type = first >> 4;
    // CONNACK, SUBACK, UNSUBACK, PINGRESP and (in 3.1.1) AUTH come only from servers.
    let allowed = matches!(packet_type, 1 | 3 | 4 | 5 | 6 | 7 | 8 | 10 | 12 | 14)
        || (packet_type == 15 && version == Version::V5);
    if !allowed {
        return Err(CodecError::ForbiddenPacket(packet_type));
    }
    let complete = frame_complete(buf);
    let result = catch_unwind(AssertUnwindSafe(|| match version {
        Version::V4 => V4.read_mut(buf, max_size),
        Version::V5 => V5.read_mut(buf, max_size),
    }));
    match result {
        Ok(Ok(packet)) => Ok(packet),
        // The codec asks for more bytes also when a whole frame is there but its
        // contents claim more: that frame is malformed, waiting would hang.
        Ok(Err(protocol::Error::InsufficientBytes(_))) if !complete => Err(CodecError::Incomplete),
        Ok(Err(protocol::Error::InsufficientBytes(_))) => Err(CodecError::Malformed(
            "frame shorter than its contents".into(),
        )),
        Ok(Err(protocol::Error::PayloadSizeLimitExceeded(_))) => {
            Err(CodecError::TooLarge(max_size))
        }
        Ok(Err(protocol::Error::InvalidProtocolLevel(l))) => Err(CodecError::UnsupportedLevel(l)),
        Ok(Err(e)) => Err(CodecError::Malformed(e.to_string())),
        Err(_) => Err(CodecError::Malformed("codec panicked".into())),
    }
}

/// Whether `buf` holds a whole frame (fixed header plus remaining length).
fn frame_complete(buf: &[u8]) -> bool {
    let mut remaining = 0usize;
    let mut multiplier = 1usize;
    for (i, b) in buf.iter().skip(1).take(4).enumerate() {
        remaining += (*b as usize & 0x7f) * multiplier;
        if b & 0x80 == 0 {
            return buf.len() >= 2 + i + remaining;
        }
        multiplier *= 128;
    }
    false
}

/// Encodes `packet` onto `out`; returns the number of bytes written.
pub fn write(version: Version, packet: Packet, out: &mut BytesMut) -> Result<usize, CodecError> {
    let before = out.len();
    let result = catch_unwind(AssertUnwindSafe(|| match version {
        Version::V4 => V4.write(packet, out),
        Version::V5 => V5.write(packet, out),
    }));
    match result {
        Ok(Ok(_)) => Ok(out.len() - before),
        Ok(Err(e)) => {
            out.truncate(before);
            Err(CodecError::Malformed(e.to_string()))
        }
        Err(_) => {
            out.truncate(before);
            Err(CodecError::Malformed("codec panicked while writing".into()))
        }
    }
}

/// An MQTT 5 DISCONNECT with `reason` and no properties.
pub fn write_v5_disconnect(reason: u8, out: &mut BytesMut) -> usize {
    out.put_slice(&[0xE0, 0x02, reason, 0x00]);
    4
}

/// An MQTT 3.1.1 CONNACK refusal (return code 1..=5), also used for protocol levels
/// the broker does not speak.
pub fn write_v4_connack_refusal(code: u8, out: &mut BytesMut) {
    out.put_slice(&[0x20, 0x02, 0x00, code]);
}

/// UNSUBACK written by the broker itself (rumqttd answers one per removed filter).
pub fn write_unsuback(version: Version, pkid: u16, reasons: &[u8], out: &mut BytesMut) {
    match version {
        Version::V4 => out.put_slice(&[0xB0, 0x02, (pkid >> 8) as u8, pkid as u8]),
        Version::V5 => {
            // pkid (2) + property length (1) + one reason per filter
            let remaining = 3 + reasons.len();
            out.put_u8(0xB0);
            put_varint(remaining, out);
            out.put_u16(pkid);
            out.put_u8(0);
            out.put_slice(reasons);
        }
    }
}

/// SUBACK written by the broker itself, for SUBSCRIBEs the router must not see.
pub fn write_suback(version: Version, pkid: u16, codes: &[u8], out: &mut BytesMut) {
    let props = usize::from(version == Version::V5);
    out.put_u8(0x90);
    put_varint(2 + props + codes.len(), out);
    out.put_u16(pkid);
    if props == 1 {
        out.put_u8(0);
    }
    out.put_slice(codes);
}

fn put_varint(mut n: usize, out: &mut BytesMut) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_levels() {
        let v4 = [
            0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c,
        ];
        assert!(matches!(peek_connect_level(&v4), ConnectPeek::Level(4)));
        assert!(matches!(
            peek_connect_level(&v4[..5]),
            ConnectPeek::Incomplete
        ));
        assert!(matches!(
            peek_connect_level(&[0x30, 0x00]),
            ConnectPeek::NotConnect
        ));
    }

    #[test]
    fn refuses_server_packets_without_panicking() {
        // a CONNACK and an UNSUBACK sent by a "client"
        for bytes in [&[0x20u8, 0x02, 0x00, 0x00][..], &[0xB0, 0x02, 0x00, 0x01]] {
            let mut buf = BytesMut::from(bytes);
            assert!(matches!(
                read(Version::V5, &mut buf, 1024),
                Err(CodecError::ForbiddenPacket(_))
            ));
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut buf = BytesMut::from(&[0x82u8, 0x03, 0x00, 0x00, 0xff][..]);
        assert!(matches!(
            read(Version::V5, &mut buf, 1024),
            Err(CodecError::Malformed(_))
        ));
        let mut half = BytesMut::from(&[0x82u8, 0x05, 0x00, 0x01][..]);
        assert!(matches!(
            read(Version::V5, &mut half, 1024),
            Err(CodecError::Incomplete)
        ));
    }
}
