//! Server packets onto a connection's output buffer.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{BufMut, BytesMut};
use mqgate_kit::PublishProperties;
use rumqttd::protocol::{
    v4::V4, v5::V5, ConnAck, ConnAckProperties, ConnectReturnCode, Packet, PingResp, Protocol,
    PubAck, PubAckReason, PubComp, PubCompReason, PubRec, PubRecReason, PubRel, PubRelReason, QoS,
    SubAck, SubAckProperties, SubscribeReasonCode, UnsubAck, UnsubAckReason,
};

use super::{reason, Version};

/// Writes a rumqttd packet; a writer error or panic leaves `out` as it was.
fn write(version: Version, packet: Packet, out: &mut BytesMut) -> bool {
    let before = out.len();
    let written = catch_unwind(AssertUnwindSafe(|| match version {
        Version::V4 => V4.write(packet, out),
        Version::V5 => V5.write(packet, out),
    }));
    match written {
        Ok(Ok(_)) => true,
        _ => {
            out.truncate(before);
            false
        }
    }
}

/// The 3.1.1 CONNACK return code closest to an MQTT 5 reason code.
fn v4_return_code(reason_code: u8) -> u8 {
    match reason_code {
        reason::SUCCESS => 0,
        reason::UNSUPPORTED_PROTOCOL_VERSION => 1,
        reason::CLIENT_ID_NOT_VALID => 2,
        reason::BAD_USERNAME_OR_PASSWORD => 4,
        reason::NOT_AUTHORIZED | reason::BAD_AUTHENTICATION_METHOD => 5,
        _ => 3,
    }
}

fn v5_return_code(reason_code: u8) -> ConnectReturnCode {
    use ConnectReturnCode as C;
    match reason_code {
        reason::SUCCESS => C::Success,
        reason::MALFORMED_PACKET => C::MalformedPacket,
        reason::PROTOCOL_ERROR => C::ProtocolError,
        reason::IMPLEMENTATION_SPECIFIC => C::ImplementationSpecificError,
        reason::UNSUPPORTED_PROTOCOL_VERSION => C::UnsupportedProtocolVersion,
        reason::CLIENT_ID_NOT_VALID => C::ClientIdentifierNotValid,
        reason::BAD_USERNAME_OR_PASSWORD => C::BadUserNamePassword,
        reason::NOT_AUTHORIZED => C::NotAuthorized,
        reason::SERVER_UNAVAILABLE => C::ServerUnavailable,
        reason::BAD_AUTHENTICATION_METHOD => C::BadAuthenticationMethod,
        reason::TOPIC_NAME_INVALID => C::TopicNameInvalid,
        reason::PACKET_TOO_LARGE => C::PacketTooLarge,
        reason::QUOTA_EXCEEDED => C::QuotaExceeded,
        _ => C::UnspecifiedError,
    }
}

/// A CONNACK. `reason_code` is the MQTT 5 reason; 3.1.1 clients get the closest
/// return code and no properties.
pub fn connack(
    version: Version,
    out: &mut BytesMut,
    session_present: bool,
    reason_code: u8,
    properties: Option<ConnAckProperties>,
) {
    match version {
        Version::V4 => out.put_slice(&[
            0x20,
            0x02,
            u8::from(session_present && reason_code == reason::SUCCESS),
            v4_return_code(reason_code),
        ]),
        Version::V5 => {
            let connack = ConnAck {
                session_present: session_present && reason_code == reason::SUCCESS,
                code: v5_return_code(reason_code),
            };
            write(version, Packet::ConnAck(connack, properties), out);
        }
    }
}

/// The acknowledgements of the QoS 1 and 2 flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    PubAck,
    PubRec,
    PubRel,
    PubComp,
}

/// A PUBACK, PUBREC, PUBREL or PUBCOMP with an MQTT 5 reason code (3.1.1 has none).
pub fn ack(version: Version, out: &mut BytesMut, kind: Ack, pkid: u16, reason_code: u8) {
    let packet = match kind {
        Ack::PubAck => Packet::PubAck(
            PubAck {
                pkid,
                reason: match reason_code {
                    reason::SUCCESS => PubAckReason::Success,
                    reason::NOT_AUTHORIZED => PubAckReason::NotAuthorized,
                    reason::TOPIC_NAME_INVALID => PubAckReason::TopicNameInvalid,
                    reason::QUOTA_EXCEEDED => PubAckReason::QuotaExceeded,
                    _ => PubAckReason::UnspecifiedError,
                },
            },
            None,
        ),
        Ack::PubRec => Packet::PubRec(
            PubRec {
                pkid,
                reason: match reason_code {
                    reason::SUCCESS => PubRecReason::Success,
                    reason::NOT_AUTHORIZED => PubRecReason::NotAuthorized,
                    reason::TOPIC_NAME_INVALID => PubRecReason::TopicNameInvalid,
                    reason::QUOTA_EXCEEDED => PubRecReason::QuotaExceeded,
                    _ => PubRecReason::UnspecifiedError,
                },
            },
            None,
        ),
        Ack::PubRel => Packet::PubRel(
            PubRel {
                pkid,
                reason: if reason_code == reason::SUCCESS {
                    PubRelReason::Success
                } else {
                    PubRelReason::PacketIdentifierNotFound
                },
            },
            None,
        ),
        Ack::PubComp => Packet::PubComp(
            PubComp {
                pkid,
                reason: if reason_code == reason::SUCCESS {
                    PubCompReason::Success
                } else {
                    PubCompReason::PacketIdentifierNotFound
                },
            },
            None,
        ),
    };
    write(version, packet, out);
}

fn subscribe_code(version: Version, code: u8) -> SubscribeReasonCode {
    use SubscribeReasonCode as C;
    match (version, code) {
        (Version::V4, 0) => C::Success(QoS::AtMostOnce),
        (Version::V4, 1) => C::Success(QoS::AtLeastOnce),
        (Version::V4, 2) => C::Success(QoS::ExactlyOnce),
        (Version::V4, _) => C::Failure,
        (Version::V5, 0) => C::QoS0,
        (Version::V5, 1) => C::QoS1,
        (Version::V5, 2) => C::QoS2,
        (Version::V5, reason::IMPLEMENTATION_SPECIFIC) => C::ImplementationSpecific,
        (Version::V5, reason::NOT_AUTHORIZED) => C::NotAuthorized,
        (Version::V5, reason::TOPIC_FILTER_INVALID) => C::TopicFilterInvalid,
        (Version::V5, reason::QUOTA_EXCEEDED) => C::QuotaExceeded,
        (Version::V5, reason::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED) => {
            C::SharedSubscriptionsNotSupported
        }
        (Version::V5, _) => C::Unspecified,
    }
}

/// A SUBACK: one granted QoS (0..=2) or MQTT 5 failure reason per filter; 3.1.1
/// clients see every failure as 0x80.
pub fn suback(
    version: Version,
    out: &mut BytesMut,
    pkid: u16,
    codes: &[u8],
    reason_string: Option<String>,
) {
    let return_codes = codes.iter().map(|c| subscribe_code(version, *c)).collect();
    let properties = match (version, reason_string) {
        (Version::V5, Some(reason_string)) => Some(SubAckProperties {
            reason_string: Some(reason_string),
            user_properties: Vec::new(),
        }),
        _ => None,
    };
    write(
        version,
        Packet::SubAck(SubAck { pkid, return_codes }, properties),
        out,
    );
}

/// An UNSUBACK; MQTT 5 clients get one reason per filter (0x00 or 0x11).
pub fn unsuback(version: Version, out: &mut BytesMut, pkid: u16, codes: &[u8]) {
    let reasons = codes
        .iter()
        .map(|c| match *c {
            reason::SUCCESS => UnsubAckReason::Success,
            reason::NO_SUBSCRIPTION_EXISTED => UnsubAckReason::NoSubscriptionExisted,
            reason::NOT_AUTHORIZED => UnsubAckReason::NotAuthorized,
            reason::TOPIC_FILTER_INVALID => UnsubAckReason::TopicFilterInvalid,
            _ => UnsubAckReason::UnspecifiedError,
        })
        .collect();
    write(
        version,
        Packet::UnsubAck(UnsubAck { pkid, reasons }, None),
        out,
    );
}

pub fn pingresp(version: Version, out: &mut BytesMut) {
    write(version, Packet::PingResp(PingResp), out);
}

/// An MQTT 5 DISCONNECT with a reason code and, when given, a reason string.
pub fn disconnect_v5(out: &mut BytesMut, reason_code: u8, reason_string: Option<&str>) {
    out.put_u8(0xE0);
    match reason_string {
        None => {
            out.put_slice(&[0x02, reason_code, 0x00]);
        }
        Some(text) => {
            let text = truncate_utf8(text, 1024);
            let properties_len = 1 + 2 + text.len();
            put_varint(1 + varint_len(properties_len) + properties_len, out);
            out.put_u8(reason_code);
            put_varint(properties_len, out);
            out.put_u8(0x1F);
            put_str(text, out);
        }
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An outgoing PUBLISH, borrowed from the delivery it is written for.
pub struct OutPublish<'a> {
    /// Empty when the topic alias alone names the topic.
    pub topic: &'a str,
    pub topic_alias: Option<u16>,
    pub payload: &'a [u8],
    pub qos: u8,
    pub dup: bool,
    pub retain: bool,
    pub pkid: u16,
    /// MQTT 5 only (ignored for 3.1.1).
    pub properties: Option<&'a PublishProperties>,
    /// Seconds left of the message's expiry (MQTT 5).
    pub expiry_interval: Option<u32>,
    pub subscription_ids: &'a [u32],
}

impl OutPublish<'_> {
    fn properties_len(&self) -> usize {
        let mut len = 0;
        if let Some(p) = self.properties {
            len += p.payload_format_indicator.map_or(0, |_| 2);
            len += p.content_type.as_ref().map_or(0, |t| 3 + t.len());
            len += p.response_topic.as_ref().map_or(0, |t| 3 + t.len());
            len += p.correlation_data.as_ref().map_or(0, |d| 3 + d.len());
            len += p
                .user_properties
                .iter()
                .map(|(k, v)| 5 + k.len() + v.len())
                .sum::<usize>();
        }
        len += self.expiry_interval.map_or(0, |_| 5);
        len += self.topic_alias.map_or(0, |_| 3);
        len += self
            .subscription_ids
            .iter()
            .map(|id| 1 + varint_len(*id as usize))
            .sum::<usize>();
        len
    }

    fn remaining_len(&self, version: Version) -> usize {
        let mut len = 2 + self.topic.len() + self.payload.len();
        if self.qos > 0 {
            len += 2;
        }
        if version == Version::V5 {
            let properties = self.properties_len();
            len += varint_len(properties) + properties;
        }
        len
    }

    /// The whole packet's size on the wire.
    pub fn size(&self, version: Version) -> usize {
        let remaining = self.remaining_len(version);
        1 + varint_len(remaining) + remaining
    }

    pub fn write(&self, version: Version, out: &mut BytesMut) {
        let remaining = self.remaining_len(version);
        out.reserve(1 + varint_len(remaining) + remaining);
        out.put_u8(
            0x30 | (u8::from(self.dup && self.qos > 0) << 3)
                | (self.qos << 1)
                | u8::from(self.retain),
        );
        put_varint(remaining, out);
        put_str(self.topic, out);
        if self.qos > 0 {
            out.put_u16(self.pkid);
        }
        if version == Version::V5 {
            put_varint(self.properties_len(), out);
            self.write_properties(out);
        }
        out.put_slice(self.payload);
    }

    fn write_properties(&self, out: &mut BytesMut) {
        let p = self.properties;
        if let Some(indicator) = p.and_then(|p| p.payload_format_indicator) {
            out.put_slice(&[0x01, indicator]);
        }
        if let Some(expiry) = self.expiry_interval {
            out.put_u8(0x02);
            out.put_u32(expiry);
        }
        if let Some(content_type) = p.and_then(|p| p.content_type.as_deref()) {
            out.put_u8(0x03);
            put_str(content_type, out);
        }
        if let Some(topic) = p.and_then(|p| p.response_topic.as_deref()) {
            out.put_u8(0x08);
            put_str(topic, out);
        }
        if let Some(data) = p.and_then(|p| p.correlation_data.as_ref()) {
            out.put_u8(0x09);
            out.put_u16(data.len() as u16);
            out.put_slice(data);
        }
        for id in self.subscription_ids {
            out.put_u8(0x0B);
            put_varint(*id as usize, out);
        }
        if let Some(alias) = self.topic_alias {
            out.put_u8(0x23);
            out.put_u16(alias);
        }
        for (key, value) in p.map(|p| p.user_properties.as_slice()).unwrap_or(&[]) {
            out.put_u8(0x26);
            put_str(key, out);
            put_str(value, out);
        }
    }
}

fn put_str(text: &str, out: &mut BytesMut) {
    out.put_u16(text.len() as u16);
    out.put_slice(text.as_bytes());
}

fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
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
    use crate::wire::{decode, Inbound};

    #[test]
    fn publish_round_trips_through_rumqttd() {
        let props = PublishProperties {
            payload_format_indicator: Some(1),
            content_type: Some("text/plain".into()),
            user_properties: vec![("a".into(), "2".into()), ("c".into(), "3".into())],
            ..Default::default()
        };
        for version in [Version::V4, Version::V5] {
            let publish = OutPublish {
                topic: "é/x",
                topic_alias: None,
                payload: b"hello",
                qos: 2,
                dup: true,
                retain: true,
                pkid: 513,
                properties: Some(&props),
                expiry_interval: Some(9),
                subscription_ids: &[3, 456_789],
            };
            let mut out = BytesMut::new();
            publish.write(version, &mut out);
            assert_eq!(out.len(), publish.size(version));
            let Ok(Inbound::Publish(p)) = decode::read(version, &mut out, 1 << 20) else {
                panic!("does not decode");
            };
            assert_eq!((p.qos, p.dup, p.retain, p.pkid), (2, true, true, 513));
            assert_eq!(&p.topic[..], "é/x".as_bytes());
            assert_eq!(&p.payload[..], b"hello");
            if version == Version::V5 {
                assert_eq!(p.properties.user_properties, props.user_properties);
                assert_eq!(p.properties.message_expiry_interval, Some(9));
                assert!(p.has_subscription_ids);
            }
        }
    }

    #[test]
    fn disconnect_with_reason_string_has_consistent_lengths() {
        let mut out = BytesMut::new();
        disconnect_v5(&mut out, reason::QUOTA_EXCEEDED, Some("slow"));
        // E0 len code props_len 1F 00 04 s l o w
        assert_eq!(
            &out[..],
            &[0xE0, 9, 0x97, 7, 0x1F, 0, 4, b's', b'l', b'o', b'w']
        );
    }

    #[test]
    fn v4_connack_refusals_use_311_codes() {
        let mut out = BytesMut::new();
        connack(
            Version::V4,
            &mut out,
            true,
            reason::BAD_USERNAME_OR_PASSWORD,
            None,
        );
        assert_eq!(&out[..], &[0x20, 2, 0, 4]);
    }
}
