//! Client packets: framing checks of our own, then rumqttd's decoders, then the
//! conversion into [`Inbound`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::BytesMut;
use mqgate_kit::PublishProperties;
use rumqttd::protocol::{self, v4::V4, v5::V5, Packet, Protocol};

use super::{
    CodecError, ConnectRequest, InDisconnect, InFilter, InPublish, InSubscribe, InWill, Inbound,
    Version,
};

/// What the first bytes of a connection say about its CONNECT.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectPeek {
    Incomplete,
    /// A CONNECT for protocol level 4 or 5 with the name "MQTT".
    Supported(Version),
    /// A CONNECT for another level (3 = MQTT 3.1 "MQIsdp") or with another name.
    Unsupported {
        level: u8,
    },
    /// Not a CONNECT at all.
    NotConnect,
}

/// Fixed header of the frame at the start of `buf`: (header length, remaining length).
fn fixed_header(buf: &[u8]) -> Result<Option<(usize, usize)>, CodecError> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining += (*byte as usize & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((2 + i, remaining)));
        }
    }
    Err(CodecError::Malformed(
        "remaining length over four bytes".into(),
    ))
}

/// Reads the protocol of the CONNECT at the start of `buf` without consuming it.
pub fn peek_connect(buf: &[u8]) -> ConnectPeek {
    match buf.first() {
        None => return ConnectPeek::Incomplete,
        Some(0x10) => {}
        Some(_) => return ConnectPeek::NotConnect,
    }
    let header_len = match fixed_header(buf) {
        Ok(Some((len, _))) => len,
        Ok(None) => return ConnectPeek::Incomplete,
        Err(_) => return ConnectPeek::NotConnect,
    };
    let Some(name_len) = buf.get(header_len..header_len + 2) else {
        return ConnectPeek::Incomplete;
    };
    let name_len = u16::from_be_bytes([name_len[0], name_len[1]]) as usize;
    let name_start = header_len + 2;
    let Some(level) = buf.get(name_start + name_len) else {
        return ConnectPeek::Incomplete;
    };
    let name = &buf[name_start..name_start + name_len];
    match (name, *level) {
        (b"MQTT", 4) => ConnectPeek::Supported(Version::V4),
        (b"MQTT", 5) => ConnectPeek::Supported(Version::V5),
        (_, level) => ConnectPeek::Unsupported { level },
    }
}

/// Decodes the next packet in `buf`. `max_size` bounds the whole packet (fixed
/// header included), checked before the rest of a large packet is buffered.
pub fn read(version: Version, buf: &mut BytesMut, max_size: usize) -> Result<Inbound, CodecError> {
    let Some(&first) = buf.first() else {
        return Err(CodecError::Incomplete);
    };
    let packet_type = first >> 4;
    // CONNACK, SUBACK, UNSUBACK, PINGRESP and AUTH (unsupported) never come from a client.
    if !matches!(packet_type, 1 | 3 | 4 | 5 | 6 | 7 | 8 | 10 | 12 | 14) {
        return Err(CodecError::ForbiddenPacket(packet_type));
    }
    let Some((header_len, remaining)) = fixed_header(buf)? else {
        return Err(CodecError::Incomplete);
    };
    let frame_len = header_len + remaining;
    if frame_len > max_size {
        return Err(CodecError::TooLarge(max_size));
    }
    if buf.len() < frame_len {
        return Err(CodecError::Incomplete);
    }
    // rumqttd keeps a PUBLISH's QoS, DUP and packet id to itself: read them here.
    let publish_header = (packet_type == 3)
        .then(|| publish_header(&buf[..frame_len], header_len))
        .transpose()?;
    let result = catch_unwind(AssertUnwindSafe(|| match version {
        Version::V4 => V4.read_mut(buf, usize::MAX),
        Version::V5 => V5.read_mut(buf, usize::MAX),
    }));
    let packet = match result {
        Ok(Ok(packet)) => packet,
        // the frame is complete, so "need more" means its contents lie
        Ok(Err(protocol::Error::InsufficientBytes(_))) => {
            return Err(CodecError::Malformed(
                "frame shorter than its contents".into(),
            ))
        }
        Ok(Err(e)) => return Err(CodecError::Malformed(e.to_string())),
        Err(_) => return Err(CodecError::Malformed("codec panicked".into())),
    };
    convert(version, packet, publish_header)
}

/// (QoS, DUP, packet id) of a whole PUBLISH frame.
fn publish_header(frame: &[u8], header_len: usize) -> Result<(u8, bool, u16), CodecError> {
    let flags = frame[0] & 0x0f;
    let qos = (flags >> 1) & 0b11;
    if qos == 3 {
        return Err(CodecError::Malformed("QoS 3".into()));
    }
    let dup = flags & 0b1000 != 0;
    if qos == 0 {
        return Ok((0, dup, 0));
    }
    let topic_len = frame
        .get(header_len..header_len + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        .ok_or_else(|| CodecError::Malformed("PUBLISH without topic".into()))?;
    let at = header_len + 2 + topic_len;
    let pkid = frame
        .get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| CodecError::Malformed("PUBLISH without packet id".into()))?;
    if pkid == 0 {
        return Err(CodecError::Protocol("packet id 0"));
    }
    Ok((qos, dup, pkid))
}

fn convert(
    version: Version,
    packet: Packet,
    publish_header: Option<(u8, bool, u16)>,
) -> Result<Inbound, CodecError> {
    Ok(match packet {
        Packet::Connect(connect, props, will, will_props, login) => {
            let will = will.map(|w| InWill {
                topic: w.topic,
                payload: w.message,
                qos: w.qos as u8,
                retain: w.retain,
                delay_interval: will_props.as_ref().and_then(|p| p.delay_interval),
                properties: will_props.map(will_properties).unwrap_or_default(),
            });
            Inbound::Connect(Box::new(ConnectRequest {
                version,
                client_id: connect.client_id,
                clean_start: connect.clean_session,
                keepalive: connect.keep_alive,
                username: login.as_ref().map(|l| l.username.clone()),
                password: login.map(|l| l.password),
                will,
                session_expiry: props.as_ref().and_then(|p| p.session_expiry_interval),
                receive_maximum: props.as_ref().and_then(|p| p.receive_maximum),
                max_packet_size: props.as_ref().and_then(|p| p.max_packet_size),
                topic_alias_maximum: props.as_ref().and_then(|p| p.topic_alias_max),
                request_problem_info: props.as_ref().and_then(|p| p.request_problem_info),
                authentication_method: props.and_then(|p| p.authentication_method),
            }))
        }
        Packet::Publish(publish, props) => {
            let (qos, dup, pkid) = publish_header.unwrap_or((0, false, 0));
            let props = props.unwrap_or_default();
            Inbound::Publish(Box::new(InPublish {
                topic: publish.topic,
                payload: publish.payload,
                qos,
                dup,
                retain: publish.retain,
                pkid,
                topic_alias: props.topic_alias,
                has_subscription_ids: !props.subscription_identifiers.is_empty(),
                properties: PublishProperties {
                    payload_format_indicator: props.payload_format_indicator,
                    message_expiry_interval: props.message_expiry_interval,
                    content_type: props.content_type,
                    response_topic: props.response_topic,
                    correlation_data: props.correlation_data,
                    user_properties: props.user_properties,
                },
            }))
        }
        Packet::PubAck(ack, _) => Inbound::PubAck(ack.pkid),
        Packet::PubRec(rec, _) => Inbound::PubRec(rec.pkid),
        Packet::PubRel(rel, _) => Inbound::PubRel(rel.pkid),
        Packet::PubComp(comp, _) => Inbound::PubComp(comp.pkid),
        Packet::Subscribe(subscribe, props) => {
            Inbound::Subscribe(subscribe_request(subscribe, props)?)
        }
        Packet::Unsubscribe(unsubscribe, _) => {
            if unsubscribe.pkid == 0 {
                return Err(CodecError::Protocol("packet id 0"));
            }
            if unsubscribe.filters.is_empty() {
                return Err(CodecError::Protocol("UNSUBSCRIBE without filters"));
            }
            Inbound::Unsubscribe {
                pkid: unsubscribe.pkid,
                filters: unsubscribe.filters,
            }
        }
        Packet::PingReq(_) => Inbound::PingReq,
        Packet::Disconnect(disconnect, props) => Inbound::Disconnect(InDisconnect {
            reason_code: disconnect_code(disconnect.reason_code),
            session_expiry: props.and_then(|p| p.session_expiry_interval),
        }),
        Packet::ConnAck(..) | Packet::SubAck(..) | Packet::UnsubAck(..) | Packet::PingResp(..) => {
            return Err(CodecError::Protocol("server packet from a client"))
        }
    })
}

/// A will's properties are a publish's.
fn will_properties(p: protocol::LastWillProperties) -> PublishProperties {
    PublishProperties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        content_type: p.content_type,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data,
        user_properties: p.user_properties,
    }
}

fn subscribe_request(
    subscribe: protocol::Subscribe,
    props: Option<protocol::SubscribeProperties>,
) -> Result<InSubscribe, CodecError> {
    if subscribe.pkid == 0 {
        return Err(CodecError::Protocol("packet id 0"));
    }
    if subscribe.filters.is_empty() {
        return Err(CodecError::Protocol("SUBSCRIBE without filters"));
    }
    let subscription_id = match props.and_then(|p| p.id) {
        Some(0) => return Err(CodecError::Protocol("subscription identifier 0")),
        Some(id) => Some(
            u32::try_from(id)
                .map_err(|_| CodecError::Protocol("subscription identifier out of range"))?,
        ),
        None => None,
    };
    Ok(InSubscribe {
        pkid: subscribe.pkid,
        subscription_id,
        filters: subscribe
            .filters
            .into_iter()
            .map(|f| InFilter {
                filter: f.path,
                qos: f.qos as u8,
                no_local: f.nolocal,
                retain_as_published: f.preserve_retain,
                retain_handling: match f.retain_forward_rule {
                    protocol::RetainForwardRule::OnEverySubscribe => 0,
                    protocol::RetainForwardRule::OnNewSubscribe => 1,
                    protocol::RetainForwardRule::Never => 2,
                },
            })
            .collect(),
    })
}

fn disconnect_code(code: protocol::DisconnectReasonCode) -> u8 {
    use protocol::DisconnectReasonCode as C;
    match code {
        C::NormalDisconnection => 0x00,
        C::DisconnectWithWillMessage => 0x04,
        C::UnspecifiedError => 0x80,
        C::MalformedPacket => 0x81,
        C::ProtocolError => 0x82,
        C::ImplementationSpecificError => 0x83,
        C::NotAuthorized => 0x87,
        C::ServerBusy => 0x89,
        C::ServerShuttingDown => 0x8B,
        C::KeepAliveTimeout => 0x8D,
        C::SessionTakenOver => 0x8E,
        C::TopicFilterInvalid => 0x8F,
        C::TopicNameInvalid => 0x90,
        C::ReceiveMaximumExceeded => 0x93,
        C::TopicAliasInvalid => 0x94,
        C::PacketTooLarge => 0x95,
        C::MessageRateTooHigh => 0x96,
        C::QuotaExceeded => 0x97,
        C::AdministrativeAction => 0x98,
        C::PayloadFormatInvalid => 0x99,
        _ => 0x80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_protocol() {
        let v4 = [
            0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c,
        ];
        assert_eq!(peek_connect(&v4), ConnectPeek::Supported(Version::V4));
        assert_eq!(peek_connect(&v4[..5]), ConnectPeek::Incomplete);
        assert_eq!(peek_connect(&[0x30, 0x00]), ConnectPeek::NotConnect);
        let wrong_name = [
            0x10, 0x0a, 0x00, 0x02, b'h', b'j', 0x04, 0x02, 0x00, 0x3c, 0, 0,
        ];
        assert_eq!(
            peek_connect(&wrong_name),
            ConnectPeek::Unsupported { level: 4 }
        );
    }

    #[test]
    fn refuses_server_packets_without_panicking() {
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
        assert!(read(Version::V5, &mut buf, 1024).is_err());
        let mut half = BytesMut::from(&[0x82u8, 0x05, 0x00, 0x01][..]);
        assert!(matches!(
            read(Version::V5, &mut half, 1024),
            Err(CodecError::Incomplete)
        ));
    }

    #[test]
    fn oversized_packet_is_refused_from_its_header() {
        // claims 2 MiB; only the header has arrived
        let mut buf = BytesMut::from(&[0x30u8, 0x80, 0x80, 0x80, 0x01][..]);
        assert!(matches!(
            read(Version::V4, &mut buf, 1024),
            Err(CodecError::TooLarge(1024))
        ));
    }

    #[test]
    fn publish_header_fields_reach_us() {
        // QoS 1, DUP, topic "a/b", pkid 7, payload "x"
        let mut buf = BytesMut::from(&[0x3Au8, 0x08, 0, 3, b'a', b'/', b'b', 0, 7, b'x'][..]);
        let Ok(Inbound::Publish(p)) = read(Version::V4, &mut buf, 1024) else {
            panic!("not a publish");
        };
        assert_eq!((p.qos, p.dup, p.pkid), (1, true, 7));
        assert_eq!(&p.topic[..], b"a/b");
        assert_eq!(&p.payload[..], b"x");
    }
}
